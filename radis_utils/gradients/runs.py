"""Chapter 08's runs (paper §5.3, fig. 4) at three points of each method's training, per seed.

Points (``POINTS``): ``backbone`` (the backbone with the run's fresh LoRA, seeded as ``train``
seeds it: ``B = 0``, so only ``lora_B`` gets a gradient; zero optimizer state), ``mid`` (the
checkpoint ``train`` keeps at half its steps, ``checkpoints.KeepMidpoint``, with its Adam state)
and ``end`` (the finished adapter, with the state of its last checkpoint). Results land in
``runs/<profile>/results/gradients-seed<k>.json``: ``methods[method][point]`` holds the
checkpoint, the pair counts and ``results[preconditioner][subset][granularity]`` (``measure``).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..records import read_json, write_json
from .features import PRECONDITIONERS, Moments, adam_moments
from .measure import count_signs, measure
from .similarity import PAIR_METHODS, GradientItem, GradientPair, balanced_sample, pairs_for

POINTS = ("backbone", "mid", "end")
#: The acceptance reads one declared measurement: the paper's procedure as far as its text says
#: (LESS's Adam features, every validation pair kept, a cosine per example averaged), at mid-training.
PRIMARY = {"point": "mid", "preconditioner": "less", "subset": "keep_identical", "statistic": "mean",
           "granularity": "module"}
THRESHOLD = 0.7  # pre-registered: RaDis > 0 in ≥ 70 % of units, Seq-KD < 0 in ≥ 70 %, at mid-training
#: The two checks' names (chapter 09's threshold column, the calibration record's checks).
CHECKS = {"radis": f"fig. 4: RaDis > 0 in ≥ {THRESHOLD:.0%} of units", "seqkd": f"fig. 4: Seq-KD < 0 in ≥ {THRESHOLD:.0%} of units"}


def last_checkpoint(adapter_dir: str | Path) -> Path | None:
    """The adapter's latest ``checkpoints/checkpoint-N`` with an ``optimizer.pt`` (its Adam state), or ``None``."""
    from .. import train

    return train.last_checkpoint(Path(adapter_dir) / "checkpoints", "optimizer.pt")


def validation_items(cfg: Any, per_direction: int, seed: int = 0, examples: Sequence[Any] | None = None,
                     methods: Sequence[str] = PAIR_METHODS) -> list[GradientItem]:
    """``per_direction`` training examples of each direction (``balanced_sample``) joined by id with the
    profile's synthesis records of ``methods`` (Seq-KD's ``y'`` cut by ``seqkd_rule``, as trained)."""
    from .. import data, train
    from ..replies import seqkd_rule, split_reply

    sample = balanced_sample(list(data.training_examples(cfg) if examples is None else examples), per_direction, seed)
    recs = {m: train.synthesized(cfg, m, sample) for m in methods}

    def text(method: str, ex: Any) -> str:
        return recs[method][ex.id]["text"] if method in recs else ""

    return [GradientItem(e.id, e.direction, e.instruction, e.reference, rationale=text("radis", e),
                         own=split_reply(text("seqkd", e), seqkd_rule(cfg))[0], paraphrase=text("sdft", e))
            for e in sample]


def identical_counts(items: Sequence[GradientItem]) -> dict[str, int]:
    """How many items have ``y'`` (``own``) or ``ỹ`` (``paraphrase``) equal to ``y``."""
    return {f: sum(getattr(i, f).strip() == i.reference.strip() for i in items) for f in ("own", "paraphrase")}


def iter_pairs(method: str, items: Iterable[Any], tokenizer: Any,
               max_length: int | None = None) -> Iterable[GradientPair | None]:
    """``pairs_for`` one item at a time: tokenized lazily, so memory does not grow with the sample."""
    for item in items:
        yield pairs_for(method, [item], tokenizer, max_length)[0]


def point_model(cfg: Any, method: str, seed: int, point: str) -> tuple[Any, Moments | None, dict[str, Any]] | None:
    """The model (LoRA trainable), its Adam moments (``None``: zero) and where they come from, at ``point``;
    ``None`` when the adapter has no such checkpoint (trained before midpoints were kept)."""
    import torch

    from .. import checkpoints, models, train

    if point == "backbone":
        model, _ = models.load_backbone(cfg)
        torch.manual_seed(seed)  # as train seeds the LoRA initialisation
        return models.add_lora(cfg, model).eval(), None, {"checkpoint": None, "step": 0}
    adapter = train.train(cfg, method, seed)
    ckpt = checkpoints.midpoint_checkpoint(adapter) if point == "mid" else last_checkpoint(adapter)
    if ckpt is None:
        return None
    weights = ckpt if point == "mid" else adapter
    model = models.load_adapter(cfg, weights, trainable=True)
    info = {"checkpoint": str(ckpt.relative_to(adapter.parent)), "step": checkpoints.step_of(ckpt)}
    return model, adam_moments(model, ckpt), info


def results_path(cfg: Any, seed: int) -> Path:
    """``runs/<profile>/results/gradients-seed<k>.json``."""
    return cfg.runs_dir / "results" / f"gradients-seed{seed}.json"


def read_results(path: str | Path, cfg: Any = None) -> dict[str, Any]:
    """A gradient results file, checked against ``cfg`` (same profile and config hash) when given."""
    from ..evaluate.suite import ResultsError, check_provenance

    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path}: no such file; run chapter 08 (gradients.seed_similarity) first")
    result = read_json(path)
    if cfg is not None:
        check_provenance(path, result, cfg, "delete the file to recompute")
    if "points" not in result.get("options", {}):
        raise ResultsError(f"{path}: written by an older chapter 08 (no 'options.points'); delete it to recompute")
    return result


def seed_similarity(cfg: Any, seed: int, methods: Sequence[str] = PAIR_METHODS, per_direction: int = 128,
                    sample_seed: int = 0, points: Sequence[str] = POINTS,
                    preconditioners: Sequence[str] = PRECONDITIONERS) -> dict[str, Any]:
    """Fig. 4 for one seed: per-unit similarity at each of ``points`` of each method's run (chapter 05).

    Cached in ``results_path(cfg, seed)``: reused when the options match, recomputed when only the
    options differ, refused (``ResultsError``) when written under another profile or config.
    """
    from .. import models, paper
    from ..runtime import model_device, progress, versions

    path = results_path(cfg, seed)
    options = {"methods": list(methods), "per_direction": per_direction, "sample_seed": sample_seed,
               "points": list(points), "preconditioners": list(preconditioners), "max_length": cfg.train.max_length}
    if path.is_file():
        done = read_results(path, cfg)
        if done.get("options") == options:
            return done
    start = time.time()
    items = validation_items(cfg, per_direction, sample_seed, methods=methods)
    tokenizer = models.load_tokenizer(cfg)
    out: dict[str, dict[str, Any]] = {}
    ran_on = "-"
    for method in methods:
        out[method] = {}
        for point in points:
            loaded = point_model(cfg, method, seed, point)
            if loaded is None:
                out[method][point] = None
                continue
            model, moments, info = loaded
            ran_on = model_device(model)
            pairs = progress(iter_pairs(method, items, tokenizer, cfg.train.max_length),
                             f"gradients {method} {point}", total=len(items), unit="example")
            out[method][point] = {**info, **measure(model, pairs, moments, preconditioners)}
            del model
    result = {"profile": cfg.profile, "config_hash": models.config_hash(cfg), "settings": cfg.to_dict(),
              "seed": seed, "options": options, "primary": PRIMARY, "threshold": THRESHOLD,
              "sample": {"items": len(items), "per_direction": dict(Counter(i.direction for i in items)),
                         "identical": identical_counts(items)},
              "methods": out, "paper": {"value": paper.GRADIENT_SIGNS.value, "where": paper.GRADIENT_SIGNS.where},
              "versions": versions(), "device": ran_on, "elapsed_s": round(time.time() - start, 1)}
    write_json(path, result, indent=1)
    return result


def values(result: Mapping[str, Any], method: str, point: str, preconditioner: str, subset: str,
           statistic: str = "mean", granularity: str = "module") -> tuple[list[str], list[float | None]] | None:
    """``(units, values)`` of one measurement in a results file, or ``None`` where it was not run."""
    entry = (result["methods"].get(method) or {}).get(point)
    stats = (((entry or {}).get("results") or {}).get(preconditioner) or {}).get(subset, {}).get(granularity)
    return (stats["units"], stats[statistic]) if stats else None


def share_with_sign(result: Mapping[str, Any], method: str, sign: int, **where: Any) -> tuple[int, int] | None:
    """``(units with the sign, units with a value)`` of one measurement (``where``: ``values``' keywords)."""
    got = values(result, method, **_measurement(where))
    if got is None:
        return None
    signs = count_signs(got[1])
    return signs["positive" if sign > 0 else "negative"], signs["total"]


def _measurement(where: Mapping[str, Any]) -> dict[str, Any]:
    return {k: where.get(k, PRIMARY[k]) for k in PRIMARY}


def acceptance(results: Sequence[Mapping[str, Any]], **where: Any) -> dict[str, Any]:
    """The pre-registered fig. 4 check on ``results`` (one per seed): the share of units where RaDis's cosine is
    positive and Seq-KD's negative, per seed and on average, against ``THRESHOLD`` (``where``: another
    measurement than ``PRIMARY``). ``passed`` is ``None`` when a seed lacks either method."""
    shares: dict[str, list[float | None]] = {"radis": [], "seqkd": []}
    counts: dict[str, list[str]] = {"radis": [], "seqkd": []}
    for res in results:
        for method, sign in (("radis", 1), ("seqkd", -1)):
            got = share_with_sign(res, method, sign, **where)
            shares[method].append(got[0] / got[1] if got and got[1] else None)
            counts[method].append(f"{got[0]}/{got[1]}" if got else "not run")
    complete = bool(results) and all(v is not None for vs in shares.values() for v in vs)
    mean = {m: sum(vs) / len(vs) if complete else None for m, vs in shares.items()}
    return {"measurement": _measurement(where), "threshold": THRESHOLD, "seeds": [r["seed"] for r in results],
            "radis_positive": counts["radis"], "seqkd_negative": counts["seqkd"], "shares": shares, "mean_share": mean,
            "passed": all(v >= THRESHOLD for v in mean.values()) if complete else None}


def verdict_line(check: Mapping[str, Any]) -> str:
    """One computed sentence for ``acceptance``'s result, with the paper's counts beside ours."""
    from .. import paper

    p, w = paper.GRADIENT_SIGNS.value, check["measurement"]
    where = f"{w['point']}, {w['preconditioner']}, {w['statistic']} cosine, {w['subset']}, per {w['granularity']}"
    if check["passed"] is None:
        return f"fig. 4 ({where}): RaDis and Seq-KD are both needed in every seed"
    m = check["mean_share"]
    return (f"fig. 4 ({where}): RaDis positive in {', '.join(check['radis_positive'])} units "
            f"(mean {m['radis']:.0%}), Seq-KD negative in {', '.join(check['seqkd_negative'])} (mean {m['seqkd']:.0%})"
            f" | paper: RaDis positive {p['radis_positive']}/{p['layers']} layers ({p['radis_positive'] / p['layers']:.0%}),"
            f" Seq-KD negative {p['seqkd_negative']}/{p['layers']} ({p['seqkd_negative'] / p['layers']:.0%})"
            f" | threshold {check['threshold']:.0%} for both: {'met' if check['passed'] else 'NOT met'}")
