"""Results at a glance: the paper's claims beside this profile's results files, with a verdict.

Everything here is read from ``runs/<profile>/results/`` (written by chapters 05-07); nothing is
recomputed. Each claim gets a verdict by a stated rule: ``reproduced`` (the organism meets the
claim's threshold on the mean over seeds), ``partly`` (the direction holds but not the
threshold, or not on every seed), ``not`` (the direction does not hold), or ``not run``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from . import evaluate, gradients
from .config import Config
from .evaluate import ResultsError

VERDICTS = ("reproduced", "partly", "not", "not run")


def load_method_results(cfg: Config, methods: Sequence[str] = ("vanilla", "seqkd", "sdft", "radis"),
                        tag: str = "") -> tuple[dict[str, Any] | None, dict[str, list[dict[str, Any]]]]:
    """``(backbone, {method: [result per seed]})`` from chapter 05's files; missing ones are left out."""
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
    """Chapter 07's results file of every seed that has one."""
    out = []
    for seed in cfg.train.seeds:
        try:
            out.append(gradients.read_results(gradients.results_path(cfg, seed), cfg))
        except (ResultsError, ValueError):
            continue
    return out


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _grade(value: float, holds: Callable[[float], bool], direction: Callable[[float], bool]) -> str:
    return "reproduced" if holds(value) else "partly" if direction(value) else "not"


def method_claims(backbone: Mapping[str, Any] | None, by_method: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Claims of tables 1-3 / figure 1, graded on the thresholds of ``evaluate.ACCEPTANCE``."""
    needed = {"vanilla", "radis", "seqkd"}
    rows = [
        ("Vanilla-FT loses general ability", "table 3: vanilla's RP far below the backbone's", "vanilla RP ≤ 60",
         lambda v: v < 90, "RP {:.1f} %"),
        ("RaDis keeps general ability", "table 3: RaDis's RP close to 100", "RaDis RP ≥ 85",
         lambda v: v > 60, "RP {:.1f} %"),
        ("RaDis translates almost as well as Vanilla-FT", "tables 1-2: COMET close to vanilla's",
         "RaDis gain ≥ 0.8 × vanilla gain", lambda v: v >= 0.5, "gain ratio {:.2f}"),
        ("Seq-KD gains little translation", "tables 1-2: Seq-KD below RaDis",
         "Seq-KD gain ≤ 0.5 × RaDis gain", lambda v: v < 1.0, "gain ratio {:.2f}"),
    ]
    if backbone is None or not needed <= set(by_method):
        return [{"claim": c, "paper": p, "ours": "not run (chapters 04-05)", "threshold": key, "verdict": "not run"}
                for c, p, key, _, _ in rows]
    checks = evaluate.acceptance(backbone, by_method)
    seeds = len(next(iter(by_method.values())))
    out = []
    for claim, said, key, direction, fmt in rows:
        check = checks[key]
        verdict = "reproduced" if check["holds"] else ("partly" if direction(check["value"]) else "not")
        out.append({"claim": claim, "paper": said, "ours": f"{fmt.format(check['value'])} (mean of {seeds} seeds)",
                    "threshold": key, "verdict": verdict})
    return out


def gradient_claims(results: Sequence[Mapping[str, Any]], preconditioner: str = "sgd") -> list[dict[str, Any]]:
    """Figure 4's claims: RaDis's per-layer cosine mostly positive, Seq-KD's mostly negative."""
    rows = []
    for method, sign, said in (("radis", "positive", "fig. 4: positive in 25 of 32 layers"),
                               ("seqkd", "negative", "fig. 4: negative in 24 of 32 layers")):
        claim = f"{'RaDis' if method == 'radis' else 'Seq-KD'}'s regulariser {'agrees' if sign == 'positive' else 'conflicts'} with the MT gradient"
        counts = [((r["methods"].get(method) or {}).get(preconditioner) or {}).get("signs") for r in results]
        counts = [c for c in counts if c]
        if not counts:
            rows.append({"claim": claim, "paper": said, "ours": "not run (chapter 07)", "threshold": "", "verdict": "not run"})
            continue
        shares = [c[sign] / c["total"] for c in counts if c["total"]]
        majority = [s > 0.5 for s in shares]
        verdict = "reproduced" if all(majority) else "partly" if any(majority) else "not"
        ours = ", ".join(f"{c[sign]}/{c['total']}" for c in counts) + f" layers {sign} ({len(counts)} seeds)"
        rows.append({"claim": claim, "paper": said, "ours": ours, "threshold": f"most layers {sign} in every seed",
                     "verdict": verdict})
    return rows


def ablation_claim(self_results: Sequence[Mapping[str, Any]],
                   others: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    """Table 5's claim: self-generated rationales beat other models' (chrF and RP, seed means)."""
    claim, said = "Self-generated rationales work best", "table 5: other models' rationales help less"
    if not self_results or not others:
        return {"claim": claim, "paper": said, "ours": "not run (chapter 06)", "threshold": "", "verdict": "not run"}
    mine = {"chrF": _mean([evaluate.headline(r) for r in self_results]), "RP": _mean([r["rp"] for r in self_results])}
    wins = {m: all(mine[m] > _mean([evaluate.headline(r) if m == "chrF" else r["rp"] for r in rs])
                   for rs in others.values()) for m in mine}
    verdict = "reproduced" if all(wins.values()) else "partly" if any(wins.values()) else "not"
    ours = f"self: chrF {mine['chrF']:.1f}, RP {mine['RP']:.1f}; beats every other source on " + (
        ", ".join(m for m, w in wins.items() if w) or "neither")
    return {"claim": claim, "paper": said, "ours": ours, "threshold": "higher chrF and RP than every other source",
            "verdict": verdict}


def load_ablation_results(cfg: Config) -> dict[str, list[dict[str, Any]]]:
    """Chapter 06's RaDis results trained on other sources' rationales: ``{tag: [result per seed]}``
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


def claims(cfg: Config) -> list[dict[str, Any]]:
    """Every claim row: methods (chapter 05), rationale sources (06), gradients (07)."""
    backbone, by_method = load_method_results(cfg)
    return (method_claims(backbone, by_method)
            + [ablation_claim(by_method.get("radis", []), load_ablation_results(cfg))]
            + gradient_claims(load_gradient_results(cfg)))
