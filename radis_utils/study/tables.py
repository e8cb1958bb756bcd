"""The study's record as the book shows it: tables shaped like the paper's tables 1-3, each of our
values with its 95 % interval beside the paper's numbers, and figure 1 with error bars.

Everything here reads the committed record (``calibration/smol-study.json``, written by
``study.analysis``); nothing loads a model or a results file. Our translation metric is chrF, the
paper's COMET: the columns name their metric, and the two are compared only through the claims'
ratios (``claims.METHOD_CLAIMS``), never number to number.
"""

from __future__ import annotations

import statistics
from typing import Any, Mapping

from .. import paper
from .analysis import VARIANT
ORDER = ("backbone", "vanilla", "seqkd", "sdft", "radis", VARIANT)
LABELS = {VARIANT: "radis, end of turn forbidden at first (labelled variant)"}
IFEVAL_SCORES = ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc")


def cell(record: Mapping[str, Any], key: str, digits: int = 2) -> str:
    """``"mean [lo, hi]"`` of one interval of the record, or ``"—"`` where it has none."""
    found = record["intervals"].get(key)
    if found is None:
        return "—"
    return f"{found['mean']:.{digits}f} [{found['lo']:.{digits}f}, {found['hi']:.{digits}f}]"


def methods(record: Mapping[str, Any]) -> list[str]:
    """The record's models in the book's order (the backbone first, the labelled variant last)."""
    present = {r["method"] for r in record["runs"]}
    return [m for m in ORDER if m in present]


def _paper_pair(side: str, method: str, column: str) -> str:
    values = [paper.TRANSLATION.value[side][b].get(method, {}).get(column) for b in paper.BACKBONES]
    return " / ".join("—" if v is None else f"{v:g}" for v in values)


def translation_rows(record: Mapping[str, Any]) -> list[dict[str, str]]:
    """Tables 1-2: per model, chrF per study direction and their mean (seed mean, 95 % interval over
    test sentences and seeds), beside the paper's COMET for the same direction (LLaMA-2 / Mistral)."""
    directions = [k for k in record["sizes"] if "-" in k]
    rows = []
    for m in methods(record):
        row = {"model": LABELS.get(m, m)}
        for d in directions:
            src, tgt = d.split("-")
            side, lang = ("en-xx", tgt) if src == "en" else ("xx-en", src)
            row[f"{d}: ours, chrF"] = cell(record, f"{m} chrf {d}")
            row[f"{d}: paper, COMET (LLaMA-2 / Mistral)"] = "—" if m == VARIANT else _paper_pair(side, m, lang)
        row["mean: ours, chrF"] = cell(record, f"{m} chrf")
        rows.append(row)
    return rows


def ifeval_means(record: Mapping[str, Any], method: str) -> dict[str, float]:
    """IFEval's four scores for one model, averaged over its seeds (the record's per-run scores)."""
    runs = [r["ifeval"] for r in record["runs"] if r["method"] == method]
    return {k: round(statistics.fmean(r[k] for r in runs), 2) for k in IFEVAL_SCORES}


def general_rows(record: Mapping[str, Any]) -> list[dict[str, str]]:
    """Table 3: per model, IFEval prompt-level strict with its interval, IFEval's other three scores
    (seed means), the drift NLL with its interval, and RP over the general measures above the floor,
    beside the paper's RP (its four benchmarks; LLaMA-2 / Mistral)."""
    rows = []
    for m in methods(record):
        means = ifeval_means(record, m)
        rp = paper.GENERAL_ABILITY.value
        paper_rp = "—" if m == VARIANT else " / ".join(
            "100" if m == "backbone" else "—" if rp[b][m]["rp"] is None else f"{rp[b][m]['rp']:g}" for b in paper.BACKBONES)
        rows.append({"model": LABELS.get(m, m),
                     "IFEval prompt strict %": cell(record, f"{m} ifeval", 1),
                     "IFEval inst. strict / prompt loose / inst. loose %":
                         " / ".join(f"{means[k]:.1f}" for k in IFEVAL_SCORES[1:]),
                     "drift: NLL of the backbone's replies (ours)": cell(record, f"{m} drift", 3),
                     "RP % (ours: IFEval)": "100 (by definition)" if m == "backbone" else cell(record, f"{m} rp", 1),
                     "RP % (paper, LLaMA-2 / Mistral)": paper_rp})
    return rows


def figure1_points(record: Mapping[str, Any]) -> dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]]:
    """Per model ``((chrF, lo, hi), (RP, lo, hi))`` from the record's intervals (the backbone's RP is
    100 with no interval); a model without an RP interval is left out."""
    points = {}
    for m in methods(record):
        x = record["intervals"][f"{m} chrf"]
        y = {"mean": 100.0, "lo": 100.0, "hi": 100.0} if m == "backbone" else record["intervals"].get(f"{m} rp")
        if y is not None:
            points[m] = ((x["mean"], x["lo"], x["hi"]), (y["mean"], y["lo"], y["hi"]))
    return points


#: A pass/fail measure the backbone passes on fewer than this share of items (%) is at its floor:
#: a drop cannot be seen and RP, a ratio to it, is noise. ``study.analysis.RP_MEASURES`` keeps the rest.
FLOOR_PERCENT = 5.0
PILOT_SHARES = {"ifeval": ("prompt_level_strict_acc", "IFEval, prompt-level strict %"),
                "advbench": ("safe_rate", "AdvBench, refusals % (keyword judge)"),
                "gsm8k": ("exact_match", "GSM8K, exact match %")}


def above_floor(pilot: Mapping[str, Any]) -> list[str]:
    """The pilot's general measures the backbone passes on at least ``FLOOR_PERCENT`` of items."""
    return [m for m, (key, _) in PILOT_SHARES.items() if pilot["measures"][m][key] >= FLOOR_PERCENT]


def pilot_rows(pilot: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The backbone before training (``study.pilot``'s record): each general measure, its items,
    its score, and whether it enters RP (and why not)."""
    keep = above_floor(pilot)
    rows = []
    for m, (key, label) in PILOT_SHARES.items():
        got = pilot["measures"][m]
        rows.append({"measure": label, "items": got["n"], "backbone": got[key],
                     "in RP": "yes" if m in keep else f"no: at the floor (< {FLOOR_PERCENT:g} % of items)"})
    drift = pilot["measures"]["drift"]
    rows.append({"measure": "drift: NLL per token of its own greedy replies (this book's measure)", "items": drift["n"],
                 "backbone": drift["mean_nll"], "in RP": "no: not the paper's, and it favours self-distillation"})
    return rows


def tuning_rows(tuning: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``study.tune``'s record: validation chrF per direction and mean, backbone first, the choice marked."""
    rows = [{"model": "backbone", **tuning["backbone"]["chrf"], "mean": tuning["backbone"]["mean"], "chosen": ""}]
    for c in tuning["candidates"].values():
        rows.append({"model": f"vanilla, lr {c['learning_rate']:g}", **c["chrf"], "mean": c["mean"],
                     "chosen": "yes" if c["learning_rate"] == tuning["choice"] else ""})
    return rows


def committed() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None, str]:
    """The committed records the chapter reads: the pilot's, the tuning's, the study's (``None``
    until it has run, or if it describes other settings) and a line saying which."""
    from ..records import read_json
    from . import analysis, pilot, tune
    from .run import study_config

    path = analysis.record_path()
    study = read_json(path) if path.is_file() else None
    if study is None:
        note = (f"not run yet: {path.name} is written by `python -m radis_utils.study.run --parallel 2 --hours 2.5` "
                "(repeated until every job is done) and then `python -m radis_utils.study.analysis`")
    elif problems := analysis.record_problems(study, study_config()):
        study, note = None, f"{path.name} is out of date: " + "; ".join(problems)
    else:
        note = f"{path.name}: {study['command']}, {study['created']}, {study['cpu']}"
    return read_json(pilot.record_path()), read_json(tune.record_path()), study, note


def tuning_series(tuning: Mapping[str, Any]) -> dict[str, tuple[list[float], list[float]]]:
    """Validation chrF against the learning rate, per direction and their mean, and the backbone's
    mean as a flat line (``plots.curves``' series)."""
    cands = sorted(tuning["candidates"].values(), key=lambda c: c["learning_rate"])
    rates = [c["learning_rate"] for c in cands]
    series = {d: (rates, [c["chrf"][d] for c in cands]) for d in tuning["backbone"]["chrf"]}
    series["mean"] = (rates, [c["mean"] for c in cands])
    series["backbone (mean)"] = (rates, [tuning["backbone"]["mean"]] * len(rates))
    return series
