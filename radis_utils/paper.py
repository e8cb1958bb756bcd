"""The paper's numbers, typed in once, each with the table, figure or section it comes from.

Wu et al., "Boosting LLM Translation Skills without General Ability Loss via Rationale
Distillation", Findings of ACL 2025 (arXiv 2410.13944), typed from the text extraction of the
paper (``../shared/paper/radis-paper.txt``). Chapters put these beside their own measurements.

Cells: a number; ``NOT_REPORTED`` where the paper prints "-"; ``None`` where the extraction
lost the cell and nothing fixes it exactly. A cell the extraction lost but the table's own
deltas fix exactly is typed in and listed in ``CELL_NOTES`` with its derivation
(``derived_cells()``); every ``None`` is listed there too. Nothing else here is computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The two backbones (§4.3) and the paper's prior LLM-based MT models (§4.2), as row groups.
LLAMA2, MISTRAL, PRIOR = "LLaMA-2-7B-Chat", "Mistral-7B-Instruct-v0.2", "prior LLM-based MT models"
BACKBONES = (LLAMA2, MISTRAL)
PRIOR_MODELS = ("ParroT", "BigTrans", "BayLing-7B", "ALMA-7B")
#: Row names of one backbone group: the backbone itself and ``config.METHODS``.
ROWS = ("backbone", "vanilla", "seqkd", "sdft", "radis")
LANGUAGES = ("cs", "de", "ru", "zh")
NOT_REPORTED = "-"
UNREADABLE = "unreadable in source"
NOT_STATED = "not stated"


@dataclass(frozen=True)
class Fact:
    """One number, table or setting reported in the paper, with where it is reported."""

    value: Any
    where: str
    note: str = ""


#: Training recipe (§4.3 and appendix B).
SETTINGS: dict[str, Fact] = {
    "backbones": Fact("LLaMA-2-7B-Chat, Mistral-7B-Instruct-v0.2", "§4.3"),
    "adapter": Fact("LoRA r=16 on all linear layers", "§4.3, app. B.2"),
    "epochs": Fact(3, "§4.3, app. B.2"),
    "steps": Fact("~2,500 (three epochs)", "app. B.2"),
    "learning_rate": Fact(1e-4, "§4.3, app. B.2"),
    "lr_scheduler": Fact("cosine", "§4.3"),
    "effective_batch": Fact(128, "§4.3, app. B.2"),
    "seqkd_batch": Fact(256, "app. B.2", "Seq-KD's batch is doubled to keep the same number of training steps"),
    "instructions": Fact("5 templates (fig. 5), one drawn at random per example", "app. B.1, fig. 5"),
    "chat_format": Fact("the backbone's own instruction format, for rationale generation and fine-tuning",
                        "app. B.1"),
    "synthesis_engine": Fact("vLLM", "app. B.2"),
    "eval_decoding": Fact("greedy (except where a benchmark tool mandates its own)", "app. B.2"),
    "merge": Fact("LoRA merged into the backbone before testing", "§4.3"),
    "hardware": Fact("4 x NVIDIA A100 80GB", "app. B.2"),
    "framework": Fact("LLaMA-Factory", "§4.3"),
    "train_data": Fact("ALMA human-written data (WMT'17-'20 test + Flores-200 dev/test), cs/de/ru/zh <-> en",
                       "§4.1"),
    "test_data": Fact("WMT'22 test sets, 8 directions", "§4.1"),
    "mt_metric": Fact("COMET (Unbabel/wmt22-comet-da)", "§4.1"),
    "general_benchmarks": Fact("MT-Bench, AlpacaEval, AlpacaEval 2.0, AdvBench (LLaMA-3-Guard-8B safe rate), "
                               "GSM8K (exact match)", "§4.1"),
}

#: Fig. 5: the five translation instructions, as the figure prints them (placeholders included).
INSTRUCTIONS_FIG5 = Fact(5, "fig. 5, app. B.1", "the literal templates live in prompts.INSTRUCTIONS")

#: §3.1: how often LLaMA-2-7B-Chat adds a rationale after its translation.
OBSERVATION = Fact({"with_rationale": 139, "replies": 200}, "§3.1",
                   "LLaMA-2-7B-Chat, 200 randomly sampled translation instructions")

#: Table 4 (§5.1): what 200 rationales (25 per direction) contain: category -> (contents, occurrence %).
#: A rationale may hold several categories, so the shares do not sum to 100.
OBSERVATION_CATEGORIES = Fact({
    "Word/phrase translation": ("Translations of individual words and phrases in the sentence.", 29.5),
    "Alternative translation": ("Multiple translation options provided for selection.", 19.5),
    "Helpful&Safety": ("Guidance on helpful and safe practices when translating sensitive sentences.", 17.5),
    "Semantic explanation": ("Clarification of the sentence's meaning.", 15.5),
    "Back-translation": ("Back-translations of non-English results to verify their accuracy.", 12.5),
    "Factual supplement": ("Additional factual information regarding entities or events in the sentence.", 9.0),
    "Word/phrase explanation": ("Explanations for special words, idioms, or expressions.", 7.5),
    "Grammar": ("Information on grammar, such as part-of-speech or sentence structure.", 5.5),
}, "table 4, §5.1", f"200 rationales, 25 per direction; backbone {NOT_STATED} (app. C's examples are Mistral's)")

#: §5.3 / fig. 4: per-layer cosine between the MT-loss gradient and the regulariser's.
GRADIENT_SIGNS = Fact(
    {"layers": 32, "radis_positive": 25, "seqkd_negative": 24},
    "§5.3, fig. 4",
    f"backbone {NOT_STATED}; 1,024 validation examples (128 per direction), LESS gradient features",
)


def _cells(*values: Any, columns: tuple[str, ...] = (*LANGUAGES, "avg")) -> dict[str, Any]:
    return dict(zip(columns, values, strict=True))


_ = NOT_REPORTED
#: Tables 1 (en->X) and 2 (X->en): COMET on WMT'22, ``{"en-xx"|"xx-en": {group: {row: {cs, de, ru, zh, avg}}}}``.
TRANSLATION = Fact({
    "en-xx": {
        LLAMA2: {"backbone": _cells(70.14, 75.10, 75.76, 72.57, 73.39),
                 "vanilla": _cells(81.80, 82.81, 84.67, 81.96, 82.81),
                 "seqkd": _cells(70.17, 74.40, 75.62, 72.93, 73.28),
                 "sdft": _cells(68.59, 75.21, 79.67, 78.45, 75.48),
                 "radis": _cells(81.77, 82.39, 84.31, 81.98, 82.61)},
        MISTRAL: {"backbone": _cells(67.39, 67.87, 64.56, 71.32, 67.79),
                  "vanilla": _cells(84.33, None, 86.23, 83.63, 84.31),
                  "seqkd": _cells(74.30, None, 73.10, 78.28, 74.84),
                  "sdft": _cells(51.90, None, 47.07, 56.38, 52.17),
                  "radis": _cells(84.32, 82.95, 86.55, 83.75, 84.39)},
        PRIOR: {"ParroT": _cells(_, 81.20, _, 79.30, _),
                "BigTrans": _cells(80.65, 78.81, 78.21, 81.31, 79.75),
                "BayLing-7B": _cells(76.85, 82.18, 74.72, 84.43, 79.55),
                "ALMA-7B": _cells(89.05, 85.45, 87.05, 84.87, 86.61)},
    },
    "xx-en": {
        LLAMA2: {"backbone": _cells(79.53, 81.20, 80.36, 74.95, 79.01),
                 "vanilla": _cells(82.74, 83.31, 82.70, 78.08, 81.71),
                 "seqkd": _cells(78.50, 80.61, 79.88, 74.48, 78.37),
                 "sdft": _cells(81.93, 82.60, 81.87, 76.77, 80.79),
                 "radis": _cells(81.75, 83.07, 82.22, 77.83, 81.22)},
        MISTRAL: {"backbone": _cells(81.88, 81.73, 81.97, 77.76, 80.84),
                  "vanilla": _cells(83.51, None, 83.23, 79.21, 82.33),
                  "seqkd": _cells(81.66, None, 82.50, 77.49, 80.91),
                  "sdft": _cells(80.38, None, 80.21, 77.39, None),
                  "radis": _cells(82.41, 82.86, 83.32, 79.17, 81.94)},
        PRIOR: {"ParroT": _cells(_, None, _, 75.20, _),
                "BigTrans": _cells(81.19, 80.68, 77.80, 74.26, 78.48),
                "BayLing-7B": _cells(82.03, 83.19, 82.48, 77.48, 81.30),
                "ALMA-7B": _cells(85.93, 83.95, 84.84, 79.78, 83.63)},
    },
}, "tables 1-2, §4.4", "COMET (wmt22-comet-da), WMT'22 test sets")

#: The deltas tables 1-2 print beside each method's cell (method minus backbone); ``None`` where lost.
TRANSLATION_DELTAS = Fact({
    "en-xx": {
        LLAMA2: {"vanilla": _cells(11.66, 7.71, 8.91, 9.39, 9.42),
                 "seqkd": _cells(0.03, -0.7, -0.14, 0.36, -0.11),
                 "sdft": _cells(-1.55, 0.11, 3.91, 5.88, 2.09),
                 "radis": _cells(11.63, 7.29, 8.55, 9.41, 9.22)},
        MISTRAL: {"vanilla": _cells(16.94, None, 21.67, 12.31, 16.52),
                  "seqkd": _cells(6.91, None, 8.54, 6.96, 7.06),
                  "sdft": _cells(-15.49, None, -17.49, -14.94, -15.62),
                  "radis": _cells(16.93, 15.08, 21.99, 12.43, 16.61)},
    },
    "xx-en": {
        LLAMA2: {"vanilla": _cells(3.21, 2.11, 2.34, 3.13, 2.7),
                 "seqkd": _cells(-1.03, -0.59, -0.48, -0.47, -0.64),
                 "sdft": _cells(2.4, 1.4, 1.51, 1.82, 1.78),
                 "radis": _cells(2.22, 1.87, 1.86, 2.88, 2.21)},
        MISTRAL: {"vanilla": _cells(1.63, None, 1.26, 1.45, 1.49),
                  "seqkd": _cells(-0.22, None, 0.53, -0.27, 0.07),
                  "sdft": _cells(-1.5, None, -1.76, -0.37, None),
                  "radis": _cells(0.53, 1.13, 1.35, 1.41, 1.1)},
    },
}, "tables 1-2", "COMET points over the backbone")

GENERAL_COLUMNS = ("mt_bench", "alpaca_eval", "alpaca_eval_2", "advbench", "gsm8k", "rp")
#: Table 3: MT-Bench (1-10), AlpacaEval / AlpacaEval 2.0 win rate %, AdvBench safe rate %, GSM8K
#: exact match %, and RP (relative performance, %; only for the CIT methods).
GENERAL_ABILITY = Fact({
    LLAMA2: {"backbone": _cells(6.51, 71.40, 9.66, 100.00, 21.83, _, columns=GENERAL_COLUMNS),
             "vanilla": _cells(1.5, 2.18, 0.71, 37.88, 4.32, 18.22, columns=GENERAL_COLUMNS),
             "seqkd": _cells(6.59, 67.48, 8.33, 100.00, 19.48, 94.24, columns=GENERAL_COLUMNS),
             "sdft": _cells(5.66, 67.55, 7.09, 98.08, 20.02, 88.95, columns=GENERAL_COLUMNS),
             "radis": _cells(6.56, 67.94, 7.47, 100.00, 19.48, 92.50, columns=GENERAL_COLUMNS)},
    MISTRAL: {"backbone": _cells(7.67, 84.91, 15.09, 68.46, 41.62, _, columns=GENERAL_COLUMNS),
              "vanilla": _cells(1.94, 6.07, 1.02, 4.23, 0.23, 9.19, columns=GENERAL_COLUMNS),
              "seqkd": _cells(6.99, 82.06, 12.7, 60.58, 41.77, 92.16, columns=GENERAL_COLUMNS),
              "sdft": _cells(7.00, 78.32, 10.02, 48.27, 41.09, 83.83, columns=GENERAL_COLUMNS),
              "radis": _cells(7.57, 80.34, 11.05, 62.12, 41.70, 91.49, columns=GENERAL_COLUMNS)},
    PRIOR: {"ParroT": _cells(4.58, 28.06, 2.82, 26.35, 4.09, _, columns=GENERAL_COLUMNS),
            "BigTrans": _cells(1.73, 0.42, 0.22, _, 0, _, columns=GENERAL_COLUMNS),
            "BayLing-7B": _cells(4.51, 51.29, 4.43, 84.62, 5.38, _, columns=GENERAL_COLUMNS),
            "ALMA-7B": _cells(2.80, 1.08, 0.17, _, 0, _, columns=GENERAL_COLUMNS)},
}, "table 3, §4.4", "RP = 100 x mean over the five benchmarks of model / backbone; "
   "AdvBench omitted for BigTrans and ALMA (no reasonable responses)")

ABLATION_COLUMNS = ("xx_en", "en_xx", "mt_bench", "alpaca_eval", "alpaca_eval_2", "advbench", "gsm8k")
#: Table 5 (§5.2): Mistral-7B-Instruct-v0.2 trained on rationales written by other models.
#: COMET averages (X->en, en->X) and table 3's five benchmarks; no RP column in the paper.
RATIONALE_SOURCE_ABLATION = Fact({
    "backbone": _cells(80.84, 67.79, 7.67, 84.91, 15.09, 68.46, 41.62, columns=ABLATION_COLUMNS),
    "vanilla": _cells(82.33, 84.31, 1.94, 6.07, 1.02, 4.23, 0.23, columns=ABLATION_COLUMNS),
    "radis (self-generated)": _cells(81.94, 84.39, 7.57, 80.34, 11.05, 62.12, 41.70, columns=ABLATION_COLUMNS),
    "radis (LLaMA-2-Chat-7B)": _cells(82.33, 84.51, 6.89, 63.85, 6.28, 98.46, 35.03, columns=ABLATION_COLUMNS),
    "radis (LLaMA-3-70B-Instruct)": _cells(82.84, 84.71, 7.00, 77.41, 10.27, 58.27, 39.42,
                                           columns=ABLATION_COLUMNS),
}, "table 5, §5.2", "Mistral-7B-Instruct-v0.2; self-generated rationales keep the most general ability "
   "(best MT-Bench, AlpacaEval, AlpacaEval 2.0, GSM8K among the variants) but give the lowest MT scores")

#: §4.4's text: RaDis's COMET "comparable to Vanilla-FT (81.58 vs. 82.02, 83.17 vs. 83.56)".
COMPARABLE_TO_VANILLA = Fact({"radis": (81.58, 83.17), "vanilla": (82.02, 83.56)}, "§4.4",
                             "the text's figures (LLaMA-2, Mistral); only Mistral's RaDis 83.17 is the mean "
                             "of its table 1-2 averages, the other three do not follow from tables 1-2")

#: The introduction's headline: RaDis's COMET gain over the backbone (LLaMA-2, Mistral), "5.6 and
#: 8.9 points"; ``headline_gains`` computes the same from tables 1-2's deltas.
HEADLINE_GAINS = Fact({"radis": (5.6, 8.9)}, "§1, fig. 1",
                      "COMET points; the figure itself is an image the text extraction lost")


def headline_gains(method: str = "radis") -> tuple[float | None, ...]:
    """``method``'s COMET gain per backbone as the mean of tables 1-2's en→X and X→en average
    deltas (what the introduction's 5.6 / 8.9 summarise; ``None`` where a cell was lost)."""
    out = []
    for b in BACKBONES:
        sides = [TRANSLATION_DELTAS.value[d][b][method]["avg"] for d in ("en-xx", "xx-en")]
        out.append(None if None in sides else round(sum(sides) / 2, 2))
    return tuple(out)


def figure1_points() -> list[dict[str, Any]]:
    """Fig. 1's axes from the tables: per backbone and method, COMET (mean of tables 1-2's two
    averages) and MT-Bench (table 3). Derived, since the figure's image is not in the text."""
    rows = []
    for b in BACKBONES:
        for m in ROWS:
            sides = [TRANSLATION.value[d][b][m]["avg"] for d in ("en-xx", "xx-en")]
            rows.append({"backbone": b, "method": m, "COMET (mean of en→X, X→en)":
                         None if None in sides else round(sum(sides) / 2, 2),
                         "MT-Bench": GENERAL_ABILITY.value[b][m]["mt_bench"]})
    return rows


#: Every lost, derived or re-placed cell: ``(fact, direction or "", group, row, column) -> note``.
CELL_NOTES: dict[tuple[str, str, str, str, str], str] = {
    ("TRANSLATION", "en-xx", MISTRAL, "backbone", "zh"): "derived: 83.63 − 12.31 (Vanilla-FT's zh and its delta; "
        "RaDis 83.75 − 12.43, Seq-KD 78.28 − 6.96 and SDFT 56.38 + 14.94 agree)",
    ("TRANSLATION", "en-xx", MISTRAL, "vanilla", "de"): f"{UNREADABLE} (value and delta lost; the row average "
        "fixes it only to within ±0.04 of 83.05)",
    ("TRANSLATION", "en-xx", MISTRAL, "seqkd", "de"): f"{UNREADABLE} (value and delta lost; the row average "
        "fixes it only to within ±0.04 of 73.68)",
    ("TRANSLATION", "en-xx", MISTRAL, "sdft", "de"): f"{UNREADABLE} (value and delta lost; the row average "
        "fixes it only to within ±0.04 of 53.33)",
    ("TRANSLATION", "xx-en", LLAMA2, "backbone", "zh"): "derived: 78.08 − 3.13 (Vanilla-FT's zh and its delta; "
        "Seq-KD 74.48 + 0.47, SDFT 76.77 − 1.82 and RaDis 77.83 − 2.88 agree)",
    ("TRANSLATION", "xx-en", LLAMA2, "backbone", "de"): "read from a merged cell '81.20 80.36' (de, ru); "
        "placement confirmed by Vanilla-FT 83.31 − 2.11",
    ("TRANSLATION", "xx-en", MISTRAL, "backbone", "zh"): "derived: 79.21 − 1.45 (the extraction shows only "
        "'77'; Seq-KD 77.49 + 0.27, SDFT 77.39 + 0.37 and RaDis 79.17 − 1.41 agree)",
    ("TRANSLATION", "xx-en", MISTRAL, "backbone", "de"): "read from a garbled cell; confirmed by RaDis 82.86 − 1.13",
    ("TRANSLATION", "xx-en", MISTRAL, "backbone", "ru"): "read from a garbled cell '81.73 81.97 77'; confirmed by "
        "Vanilla-FT 83.23 − 1.26",
    ("TRANSLATION", "xx-en", LLAMA2, "backbone", "ru"): "read from a merged cell '81.20 80.36' (de, ru); "
        "placement confirmed by Vanilla-FT 82.70 − 2.34",
    ("TRANSLATION", "en-xx", LLAMA2, "backbone", "ru"): "read from a merged cell '75.10 75.76' (de, ru); "
        "placement confirmed by Vanilla-FT 84.67 − 8.91",
    ("TRANSLATION", "en-xx", LLAMA2, "seqkd", "zh"): "read from a merged cell (ru, zh); placement confirmed by "
        "its delta: 72.57 + 0.36",
    ("TRANSLATION", "en-xx", LLAMA2, "sdft", "zh"): "read from a merged cell (ru, zh); placement confirmed by "
        "its delta: 72.57 + 5.88",
    ("TRANSLATION", "xx-en", MISTRAL, "vanilla", "de"): f"{UNREADABLE} (value and delta lost; the row average "
        "fixes it only to within ±0.04 of 83.37)",
    ("TRANSLATION", "xx-en", MISTRAL, "seqkd", "de"): f"{UNREADABLE} (shows '81.9', digits and delta lost)",
    ("TRANSLATION", "xx-en", MISTRAL, "sdft", "de"): f"{UNREADABLE} (the extraction prints '80.21 ↓ 1.76' in "
        "both the de and the ru cell; it is ru's (81.97 − 1.76), not de's (81.73 − 1.76 would be 79.97))",
    ("TRANSLATION", "xx-en", MISTRAL, "sdft", "avg"): f"{UNREADABLE} (value and delta lost; with de also lost "
        "neither follows from the other)",
    ("TRANSLATION", "xx-en", PRIOR, "ParroT", "de"): f"{UNREADABLE} (cell empty in the extraction)",
    ("TRANSLATION", "xx-en", PRIOR, "ParroT", "zh"): "read from a merged cell '- 75.20' (ru, zh); placed under "
        "zh: the only directions ParroT reports in table 1 are de and zh",
}


def derived_cells() -> list[tuple[tuple[str, ...], str]]:
    """``(key, note)`` of every cell typed in by derivation or placement (not plainly read)."""
    return [(k, n) for k, n in CELL_NOTES.items() if not n.startswith(UNREADABLE)]


def cell_note(fact: str, direction: str, group: str, row: str, column: str) -> str:
    """The note of one cell (``""`` when it was read plainly)."""
    return CELL_NOTES.get((fact, direction, group, row, column), "")


#: The result tables a chapter or the summary page sets beside a profile's own results.
RESULT_TABLES: dict[str, Fact] = {
    "translation": TRANSLATION,
    "general_ability": GENERAL_ABILITY,
    "rationale_content": OBSERVATION_CATEGORIES,
    "rationale_source_ablation": RATIONALE_SOURCE_ABLATION,
    "gradient_signs": GRADIENT_SIGNS,
}


def _row_notes(fact: str, direction: str, group: str, row: str) -> str:
    return "; ".join(f"{c}: {n}" for (f, d, g, r, c), n in CELL_NOTES.items()
                     if (f, d, g, r) == (fact, direction, group, row))


def translation_rows(direction: str) -> list[dict[str, Any]]:
    """Table 1 (``"en-xx"``) or 2 (``"xx-en"``) as flat rows for display: group, model, cs, de, ru, zh,
    avg (a lost cell reads "unreadable") and the notes of its derived or unreadable cells."""
    table = TRANSLATION.value[direction]
    return [{"group": g, "model": m, **{c: "unreadable" if v is None else v for c, v in cells.items()},
             "notes": _row_notes("TRANSLATION", direction, g, m)}
            for g, rows in table.items() for m, cells in rows.items()]


def general_rows() -> list[dict[str, Any]]:
    """Table 3 as flat rows: group, model, the five benchmarks and RP."""
    return [{"group": g, "model": m, **cells} for g, rows in GENERAL_ABILITY.value.items()
            for m, cells in rows.items()]


#: Ours, not the paper's: the book's rationale kinds (the organism's exact classifier and the
#: keyword heuristic for real backbones) mapped onto table 4's categories; ``None``: no category
#: of table 4 fits. Table 4's "Semantic explanation" and "Word/phrase explanation" have no kind.
TABLE4_CATEGORY_OF_KIND: dict[str, str | None] = {
    "gloss": "Word/phrase translation",
    "alternative": "Alternative translation",
    "safety": "Helpful&Safety",
    "back_translation": "Back-translation",
    "fact": "Factual supplement",
    "word_order": "Grammar",
    "arithmetic": None,
    "note": None,
    "other": None,
}


def table4_rows(kind_shares: dict[str, float]) -> list[dict[str, Any]]:
    """Table 4's eight categories beside ``{kind: % of our rationales}``, through
    ``TABLE4_CATEGORY_OF_KIND``; kinds with no category follow as rows of their own."""
    rows = []
    for category, (contents, share) in OBSERVATION_CATEGORIES.value.items():
        kinds = [k for k, c in TABLE4_CATEGORY_OF_KIND.items() if c == category]
        ours = [kind_shares[k] for k in kinds if k in kind_shares]
        rows.append({"category (table 4)": category, "contents": contents, "paper %": share,
                     "our kind": ", ".join(kinds) or "(none)", "ours %": ours[0] if ours else (0.0 if kinds else None)})
    for kind, share in kind_shares.items():
        if TABLE4_CATEGORY_OF_KIND.get(kind) is None:
            rows.append({"category (table 4)": "(no table-4 category)", "contents": "", "paper %": None,
                         "our kind": kind, "ours %": share})
    return rows


def _steps(c: Any) -> Any:
    if c.train.max_steps:
        return f"{c.train.max_steps} (max_steps)"
    pairs = c.data.max_train_pairs
    if pairs is None:
        return f"{c.train.epochs:g} epochs over all pairs (count follows from the data)"
    per_epoch = -(-pairs * len(c.data.directions) // c.train.effective_batch)
    return f"~{round(per_epoch * c.train.epochs)} ({c.train.epochs:g} epochs x {per_epoch})"


def settings_rows(profiles: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows 'setting | paper | where | <profile>...' comparing the paper's recipe with each profile."""
    recipe = {
        "adapter": lambda c: f"LoRA r={c.train.lora_r} on {c.train.target_modules}"
        + (f" ({c.model.quantization} 4-bit)" if c.model.quantization else ""),
        "epochs": lambda c: c.train.max_steps and f"{c.train.max_steps} steps" or c.train.epochs,
        "steps": _steps,
        "learning_rate": lambda c: c.train.learning_rate,
        "lr_scheduler": lambda c: c.train.lr_scheduler,
        "effective_batch": lambda c: c.train.effective_batch,
        "seqkd_batch": lambda c: (f"{2 * c.train.effective_batch} (doubled: the same number of steps as the others)"
                                  if c.train.seqkd_double_batch else
                                  f"{c.train.effective_batch} (not doubled: Seq-KD's twice-as-large data takes twice the steps)"),
        "backbones": lambda c: c.model.backbone,
        "instructions": lambda c: f"{len(c.prompts.instructions)} templates, seeded draw per example",
        "synthesis_engine": lambda c: c.synthesis.engine,
        "eval_decoding": lambda c: "greedy",
        "merge": lambda c: "LoRA merged before testing" if c.model.quantization is None
        else "adapter on the 4-bit base (not merged)",
    }
    rows = []
    for key, of_profile in recipe.items():
        row = {"setting": key, "paper": SETTINGS[key].value, "where": SETTINGS[key].where}
        for name, cfg in profiles.items():
            row[name] = of_profile(cfg)
        rows.append(row)
    return rows
