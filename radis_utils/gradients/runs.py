"""Chapter 08's runs (paper §5.3, fig. 4): each method's own trained adapter (not merged, LoRA
trainable), a sample balanced across directions joined with the synthesis records, ``sgd`` and
``adam`` (the adapter's last optimizer state), kept in ``runs/<profile>/results/gradients-seed<k>.json``.
"""

from __future__ import annotations

import json
import math
from collections import Counter
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..records import write_json
from .similarity import (
    PAIR_METHODS, GradientItem, GradientPair, balanced_sample, count_signs, gradient_similarity, pairs_for,
)


def last_checkpoint(adapter_dir: str | Path) -> Path | None:
    """The adapter's latest ``checkpoints/checkpoint-N`` with an ``optimizer.pt`` (its Adam state), or ``None``."""
    from .. import train

    return train.last_checkpoint(Path(adapter_dir) / "checkpoints", "optimizer.pt")


def validation_items(cfg: Any, per_direction: int, seed: int = 0, examples: Sequence[Any] | None = None,
                     methods: Sequence[str] = PAIR_METHODS) -> list[GradientItem]:
    """``per_direction`` training examples of each direction (``balanced_sample``) joined by id with the
    profile's synthesis records of ``methods`` (Seq-KD's ``y'`` cut by ``eval.extraction``, as trained)."""
    from .. import data, train
    from ..replies import seqkd_rule, split_reply

    sample = balanced_sample(list(data.training_examples(cfg) if examples is None else examples), per_direction, seed)
    recs = {m: train.synthesized(cfg, m, sample) for m in methods}

    def text(method: str, ex: Any) -> str:
        return recs[method][ex.id]["text"] if method in recs else ""

    return [GradientItem(e.id, e.direction, e.instruction, e.reference, rationale=text("radis", e),
                         own=split_reply(text("seqkd", e), seqkd_rule(cfg))[0], paraphrase=text("sdft", e))
            for e in sample]


def without_identical(items: Sequence[GradientItem]) -> tuple[list[GradientItem], dict[str, int]]:
    """Items with ``y'`` / ``ỹ`` blanked where they equal ``y`` (then the two losses coincide and the
    cosine is 1 by construction), and how many were blanked per field."""
    from dataclasses import replace

    counts = {"own": 0, "paraphrase": 0}
    out = []
    for item in items:
        same = {f: "" for f in counts if getattr(item, f).strip() == item.reference.strip()}
        for f in same:
            counts[f] += 1
        out.append(replace(item, **same))
    return out, counts


def iter_pairs(method: str, items: Iterable[Any], tokenizer: Any,
               max_length: int | None = None) -> Iterable[GradientPair | None]:
    """``pairs_for`` one item at a time: tokenized lazily, so memory does not grow with the sample."""
    for item in items:
        yield pairs_for(method, [item], tokenizer, max_length)[0]


def results_path(cfg: Any, seed: int) -> Path:
    """``runs/<profile>/results/gradients-seed<k>.json``."""
    return cfg.runs_dir / "results" / f"gradients-seed{seed}.json"


def read_results(path: str | Path, cfg: Any = None) -> dict[str, Any]:
    """A gradient results file, checked against ``cfg`` (same profile and config hash) when given."""
    from ..evaluate.suite import ResultsError, check_provenance

    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path}: no such file; run chapter 08 (gradients.seed_similarity) first")
    result = json.loads(path.read_text(encoding="utf-8"))
    if cfg is not None:
        check_provenance(path, result, cfg, "delete the file to recompute")
    return result


def seed_similarity(cfg: Any, seed: int, methods: Sequence[str] = PAIR_METHODS, per_direction: int = 128,
                    preconditioners: Sequence[str] = ("sgd", "adam"), sample_seed: int = 0,
                    skip_identical: bool = True) -> dict[str, Any]:
    """Fig. 4 for one seed: per-layer similarity on each method's own trained adapter (chapter 05).

    Cached in ``results_path(cfg, seed)``: reused when the options match, recomputed when only the
    options differ, refused (``ResultsError``) when written under another profile or config. ``adam``
    uses the optimizer state of the adapter's last checkpoint (``None`` where there is none).
    """
    from .. import models, paper, train
    from ..config import device_name, progress, versions

    path = results_path(cfg, seed)
    options = {"methods": list(methods), "per_direction": per_direction, "preconditioners": list(preconditioners),
               "sample_seed": sample_seed, "skip_identical": skip_identical, "max_length": cfg.train.max_length}
    if path.is_file():
        done = read_results(path, cfg)
        if done.get("options") == options:
            return done
    start = time.time()
    items = validation_items(cfg, per_direction, sample_seed, methods=methods)
    items, identical = without_identical(items) if skip_identical else (items, {})
    tokenizer = models.load_tokenizer(cfg)
    out: dict[str, dict[str, Any]] = {}
    for method in methods:
        adapter = train.train(cfg, method, seed)
        model, ckpt = models.load_adapter(cfg, adapter, trainable=True), last_checkpoint(adapter)
        out[method] = {}
        for prec in preconditioners:
            if prec == "adam" and ckpt is None:
                out[method][prec] = None
                continue
            pairs = progress(iter_pairs(method, items, tokenizer, cfg.train.max_length), f"gradients {method} {prec}",
                             total=len(items), unit="example")
            res = gradient_similarity(model, pairs, prec, ckpt if prec == "adam" else None)
            res["signs"] = count_signs(res["cosine"])
            res["cosine"], res["cosine_std"] = _no_nan(res["cosine"]), _no_nan(res["cosine_std"])
            res["checkpoint"] = ckpt.name if prec == "adam" else None
            out[method][prec] = res
        del model
    directions = dict(Counter(item.direction for item in items))
    result = {"profile": cfg.profile, "config_hash": models.config_hash(cfg), "settings": cfg.to_dict(),
              "seed": seed, "options": options,
              "sample": {"items": len(items), "per_direction": directions, "identical_blanked": identical},
              "methods": out, "paper": {"value": paper.GRADIENT_SIGNS.value, "where": paper.GRADIENT_SIGNS.where},
              "versions": versions(), "device": device_name(), "elapsed_s": round(time.time() - start, 1)}
    write_json(path, result, indent=1)
    return result


def _no_nan(values: Sequence[float]) -> list[float | None]:
    return [None if v is None or math.isnan(v) else v for v in values]


def sign_verdict(result: Mapping[str, Any], preconditioner: str = "sgd") -> str:
    """One computed line: layers where RaDis's cosine is positive and Seq-KD's negative, beside the paper's
    counts, and whether the paper's pattern (RaDis mostly aligned, Seq-KD mostly opposed) holds here."""
    methods = result["methods"]
    got = {m: (methods.get(m) or {}).get(preconditioner) for m in PAIR_METHODS}
    if got["radis"] is None or got["seqkd"] is None:
        return f"seed {result['seed']} ({preconditioner}): RaDis and Seq-KD are both needed for the verdict"
    r, s = got["radis"]["signs"], got["seqkd"]["signs"]
    p = result["paper"]["value"]
    sdft = got["sdft"]["signs"] if got["sdft"] else None
    extra = f", SDFT positive in {sdft['positive']}/{sdft['total']}" if sdft else ""
    holds = r["positive"] > r["total"] / 2 and s["negative"] > s["total"] / 2
    clear = (f" ({_clear(got['radis'], 1)} and {_clear(got['seqkd'], -1)} of them beyond 2 standard errors)"
             if "count" in got["radis"] else "")
    return (f"seed {result['seed']} ({preconditioner}): RaDis positive in {r['positive']}/{r['total']} layers, "
            f"Seq-KD negative in {s['negative']}/{s['total']}{clear}{extra}"
            f" | paper: RaDis positive {p['radis_positive']}/"
            f"{p['layers']}, Seq-KD negative {p['seqkd_negative']}/{p['layers']} | paper's pattern "
            f"{'holds' if holds else 'does NOT hold'} here")


def _clear(res: Mapping[str, Any], sign: int) -> int:
    """Layers whose mean cosine has ``sign`` and lies more than 2 standard errors from 0."""
    return sum(1 for c, sd, n in zip(res["cosine"], res["cosine_std"], res["count"])
               if c is not None and n > 1 and sign * c > 2 * sd / math.sqrt(n - 1))
