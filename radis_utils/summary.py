"""Results at a glance: this profile's results files read back, and the paper's tables beside them.

Everything here is read from ``runs/<profile>/results/`` (written by chapters 06-08); nothing is
recomputed. The claims and their verdicts are ``radis_utils.claims``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from . import evaluate, gradients, paper
from .config import Config
from .evaluate import ResultsError

def load_method_results(cfg: Config, methods: Sequence[str] = ("vanilla", "seqkd", "sdft", "radis"),
                        tag: str = "") -> tuple[dict[str, Any] | None, dict[str, list[dict[str, Any]]]]:
    """``(backbone, {method: [result per seed]})`` from chapter 06's files; missing ones are left out."""
    def read(path: Any) -> dict[str, Any] | None:
        try:
            return evaluate.read_results(path, cfg)
        except ResultsError:
            return None

    backbone = read(evaluate.results_path(cfg, evaluate.BACKBONE))
    by_method = {}
    for method in methods:
        found = [read(evaluate.results_path(cfg, method, s, tag)) for s in cfg.train.seeds]
        if all(found):
            by_method[method] = found
    return backbone, by_method


def load_gradient_results(cfg: Config) -> list[dict[str, Any]]:
    """Chapter 08's results file of every seed that has one."""
    out = []
    for seed in cfg.train.seeds:
        try:
            out.append(gradients.read_results(gradients.results_path(cfg, seed), cfg))
        except (ResultsError, ValueError):
            continue
    return out


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def paper_vs_ours(backbone: Mapping[str, Any] | None, by_method: Mapping[str, Sequence[Mapping[str, Any]]],
                  directions: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One row per method: the paper's COMET averages (tables 1-2) and RP (table 3) for both backbones
    beside this run's seed-mean translation score and RP, each column naming its metric."""
    t, g = paper.TRANSLATION.value, paper.GENERAL_ABILITY.value
    pair = lambda cell: " / ".join("unreadable" if v is None else str(v) for v in cell)
    metric = "chrF" if backbone is None or "comet" not in next(iter(backbone["translation"].values())) else "COMET"
    ours_t = f"ours: {metric}, mean of {', '.join(directions) or 'all directions'}"
    ours_rp = "ours: RP % on " + (", ".join(backbone["general"]) if backbone and backbone["general"] else "general suite")
    rows = []
    for method in paper.ROWS:
        results = [backbone] if method == "backbone" and backbone else by_method.get(method, [])
        row = {"method": method,
               "paper: COMET en→X avg (LLaMA-2 / Mistral)": pair(t["en-xx"][b][method]["avg"] for b in paper.BACKBONES),
               "paper: COMET X→en avg (LLaMA-2 / Mistral)": pair(t["xx-en"][b][method]["avg"] for b in paper.BACKBONES),
               "paper: RP % on MT-Bench, AlpacaEval (2.0), AdvBench, GSM8K (LLaMA-2 / Mistral)":
                   pair(g[b][method]["rp"] for b in paper.BACKBONES),
               ours_t: round(_mean([evaluate.headline(r, metric.lower()) for r in results]), 2) if results else "not run",
               ours_rp: round(_mean([r["rp"] for r in results]), 2) if results and results[0]["rp"] is not None
               else "not run"}
        rows.append(row)
    return rows


#: The two measurements chapter 09's gradient table shows: the acceptance's (LESS's Adam features)
#: and the raw gradients, both at mid-training over every validation pair.
SIGN_TABLE_MEASUREMENTS = {"LESS": {"preconditioner": "less"}, "raw SGD": {"preconditioner": "sgd"}}


def gradient_sign_table(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per seed and method: how many units have a positive and a negative cosine at mid-training,
    for each of ``SIGN_TABLE_MEASUREMENTS`` (``"k/n"``; ``-`` where that measurement was not run)."""
    rows = []
    for res in results:
        for method in res["methods"]:
            row: dict[str, Any] = {"seed": res["seed"], "method": method}
            for label, where in SIGN_TABLE_MEASUREMENTS.items():
                for sign, name in ((1, "positive"), (-1, "negative")):
                    got = gradients.share_with_sign(res, method, sign, **where)
                    row[f"{name} ({label})"] = f"{got[0]}/{got[1]}" if got else "-"
            rows.append(row)
    return rows


def load_ablation_results(cfg: Config) -> dict[str, list[dict[str, Any]]]:
    """Chapter 07's RaDis results trained on other sources' rationales: ``{tag: [result per seed]}``
    (files ``radis-src-<source>-seed<k>.json`` present for every seed)."""
    folder = cfg.runs_dir / "results"
    tags = sorted({p.name[len("radis-"):].rsplit("-seed", 1)[0] for p in folder.glob("radis-src-*-seed*.json")})
    out = {}
    for tag in tags:
        try:
            out[tag] = [evaluate.read_results(evaluate.results_path(cfg, "radis", s, tag), cfg) for s in cfg.train.seeds]
        except ResultsError:
            continue
    return out


def translation_table(backbone: Mapping[str, Any], by_method: Mapping[str, Sequence[Mapping[str, Any]]],
                      side: str = "en-xx", metric: str = "chrf") -> list[dict[str, Any]]:
    """Paper tables 1-2 in shape: one row per model, ``metric`` per direction of ``side`` and their
    average (mean over seeds), read from the results files; ``[]`` when no direction is on that side.
    The side's directions are the ones its average covers (``evaluate.per_direction_table``)."""
    directions = backbone["translation"].get(f"avg_{side.replace('-', '_')}", {}).get("directions", [])
    if not directions:
        return []
    rows = []
    for name, results in {"backbone": [backbone], **by_method}.items():
        row: dict[str, Any] = {"model": name, "seeds": len(results) if name != "backbone" else "-"}
        for d in directions:
            row[d] = round(_mean([r["translation"][d][metric] for r in results]), 2)
        row["avg"] = round(_mean([row[d] for d in directions]), 2)
        rows.append(row)
    return rows


def general_table(backbone: Mapping[str, Any], by_method: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Paper table 3 in shape: one row per model, the seed-mean score of every general benchmark (or
    organism skill) the backbone has, ``n`` and judge in the column names when the files record them,
    and RP; a benchmark a model did not score is ``not run``."""
    details = backbone.get("general_details") or {}

    def column(b: str) -> str:
        d = details.get(b) or {}
        said = ", ".join(str(x) for x in (f"n={d['n']}" if d.get("n") is not None else None, d.get("judge")) if x)
        return f"{b} ({said})" if said else b

    rows = []
    for name, results in {"backbone": [backbone], **by_method}.items():
        row: dict[str, Any] = {"model": name}
        for b in backbone["general"]:
            scores = [r["general"].get(b) for r in results]
            row[column(b)] = round(_mean(scores), 2) if all(s is not None for s in scores) else "not run"
        rps = [r.get("rp") for r in results]
        row["RP %"] = round(_mean(rps), 2) if all(v is not None for v in rps) else "not run"
        rows.append(row)
    return rows
