"""The paper's numbers, typed in once, each with the table or figure it comes from.

Wu et al., "Boosting LLM Translation Skills without General Ability Loss via Rationale
Distillation", Findings of ACL 2025 (arXiv 2410.13944). Chapters put these beside their own
measurements; nothing here is ever computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Fact:
    """One number (or setting) reported in the paper, with where it is reported."""

    value: Any
    where: str
    note: str = ""


#: Training recipe (paper §4 and appendix B).
SETTINGS: dict[str, Fact] = {
    "backbones": Fact("LLaMA-2-7B-Chat, Mistral-7B-Instruct-v0.2", "§4"),
    "adapter": Fact("LoRA r=16 on all linear layers", "app. B"),
    "epochs": Fact(3, "app. B"),
    "learning_rate": Fact(1e-4, "app. B"),
    "lr_scheduler": Fact("cosine", "app. B"),
    "effective_batch": Fact(128, "app. B"),
    "instructions": Fact("5 templates, one drawn at random per example", "fig. 5"),
    "train_data": Fact("ALMA human-written data, cs/de/ru/zh <-> en", "§4"),
    "test_data": Fact("WMT'22 test sets", "§4"),
    "mt_metric": Fact("COMET (wmt22-comet-da)", "§4"),
    "general_benchmarks": Fact("MT-Bench, AlpacaEval, AdvBench (Llama-Guard), GSM8K", "§4"),
}

#: §3.1 / table 4: how often LLaMA-2-Chat adds a rationale after its translation.
OBSERVATION = Fact(
    {"with_rationale": 139, "replies": 200},
    "§3.1, table 4",
    "LLaMA-2-7B-Chat, 200 translation requests",
)

#: Table 4's per-category counts of rationale content (eight hand-labelled categories). Not
#: transcribed yet: the paper's text was not reachable when this was written. Fill in
#: ``{category: count}`` here and the observation chapter shows it beside its own table.
OBSERVATION_CATEGORIES = Fact(None, "§3.1, table 4", "not transcribed")

#: §5.3 / fig. 4: per-layer cosine between the MT-loss gradient and the regulariser's.
GRADIENT_SIGNS = Fact(
    {"layers": 32, "radis_positive": 25, "seqkd_negative": 24},
    "§5.3, fig. 4",
    "LLaMA-2-7B-Chat, 128 validation examples per direction",
)


#: What a table says in place of its numbers when no source for them was reachable. Only
#: numbers read in a source are typed in here, each with its table and source URL.
NOT_TRANSCRIBED = "not transcribed: source unavailable offline"

#: Tables 1-2: WMT'22 translation quality per direction, COMET and BLEU, for both backbones.
#: Searched offline (stored copies of ar5iv.labs.arxiv.org/html/2410.13944, the ACL Anthology
#: page of 2025.findings-acl.632, sciencestack.ai, GitHub): only abstracts were reachable, not
#: the tables. Check each table's columns against the paper when typing in. Shape:
#: ``{backbone: {method: {direction: {"comet": x, "bleu": y}}}}`` with methods ``"backbone"``
#: plus ``config.METHODS`` and directions as in ``config.PAPER_DIRECTIONS`` (the paper's own
#: averages under ``"avg_en_xx"`` / ``"avg_xx_en"``, as ``evaluate.per_direction_table`` names them).
TRANSLATION = Fact(None, "tables 1-2", NOT_TRANSCRIBED)

#: Table 3: general ability after fine-tuning (the benchmarks of
#: ``SETTINGS["general_benchmarks"]``) and the relative performance RP. Shape to type in: ``{backbone: {method: {benchmark: score,
#: "rp": RP}}}`` with a ``"backbone"`` row; ``tests/test_paper.py`` then re-derives each RP
#: from the other columns with ``evaluate.relative_performance``.
GENERAL_ABILITY = Fact(None, "table 3", NOT_TRANSCRIBED)

#: Table 5: ablation training on rationales written by other models instead of the backbone's own.
RATIONALE_SOURCE_ABLATION = Fact(None, "table 5", NOT_TRANSCRIBED)

#: The result tables a summary page can set beside a profile's own results.
RESULT_TABLES: dict[str, Fact] = {
    "translation": TRANSLATION,
    "general_ability": GENERAL_ABILITY,
    "rationale_content": OBSERVATION_CATEGORIES,
    "rationale_source_ablation": RATIONALE_SOURCE_ABLATION,
}


def transcribed(fact: Fact) -> bool:
    """Whether a fact holds the paper's numbers (``False`` for a table not typed in yet)."""
    return fact.value is not None


def settings_rows(profiles: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows 'setting | paper | <profile>...' comparing the paper's recipe with each profile."""
    rows = []
    recipe = {
        "adapter": lambda c: f"LoRA r={c.train.lora_r} on {c.train.target_modules}"
        + (f" ({c.model.quantization} 4-bit)" if c.model.quantization else ""),
        "epochs": lambda c: c.train.max_steps and f"{c.train.max_steps} steps" or c.train.epochs,
        "learning_rate": lambda c: c.train.learning_rate,
        "lr_scheduler": lambda c: c.train.lr_scheduler,
        "effective_batch": lambda c: c.train.effective_batch,
        "backbones": lambda c: c.model.backbone,
    }
    for key, of_profile in recipe.items():
        row = {"setting": key, "paper": SETTINGS[key].value, "where": SETTINGS[key].where}
        for name, cfg in profiles.items():
            row[name] = of_profile(cfg)
        rows.append(row)
    return rows
