"""Tuning the study's learning rate on ALMA's validation split (WMT'21), never on a test set.

Vanilla fine-tuning, seed 0, is trained at every learning rate of ``GRID`` with the study
profile's other settings, and each adapter translates the first ``VALID_PAIRS`` validation
sentences of every study direction; the rate with the highest mean chrF over the directions is
chosen (the backbone's own validation chrF is printed beside it: the chosen rate must beat it).
Only vanilla is tuned, because the study asks whether the other methods keep vanilla's gain at
vanilla's best setting. ``python -m radis_utils.study.tune`` writes
``calibration/smol-study-tuning.json``; the profile's ``train.learning_rate`` is then set to its
choice by hand (``tests/test_study.py`` checks that the two agree). Each candidate's adapter and
scores are kept under ``runs/smol-study/``, so a stopped run continues with the next one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from .. import data, models, train
from ..calibration import Tuned
from ..config import Config, load_profile, resolve_path
from ..evaluate.suite import replies_by_direction
from ..evaluate.translation import corpus_metrics, sentence_chrf
from ..records import read_json, write_json
from ..replies import split_reply
from ..runtime import apply_runtime, cpu_name, versions

STUDY = "smol-study"
GRID: tuple[float, ...] = (2e-4, 5e-4, 1e-3, 2e-3)
VALID_PAIRS = 50
METHOD, SEED = "vanilla", 0
THREADS = 2  # one process at a time here (the study itself runs two of one thread each)

#: What the study tuned, like the organism's ``calibration.TUNED``.
TUNED: tuple[Tuned, ...] = (
    Tuned("train.learning_rate", "1e-4",
          f"vanilla seed {SEED}, grid {', '.join(f'{x:g}' for x in GRID)}: the highest mean chrF on ALMA's validation "
          f"split (WMT'21, the first {VALID_PAIRS} sentences of each study direction); python -m radis_utils.study.tune"),
)


def record_path() -> Path:
    return resolve_path("calibration/smol-study-tuning.json")


def valid_chrf(cfg: Config, model: Any, tokenizer: Any, n: int = VALID_PAIRS) -> dict[str, dict[str, Any]]:
    """Per study direction on the first ``n`` validation pairs (greedy, the profile's engine and
    extraction rule): corpus ``chrf`` and each sentence's (``sentences``, for the power calculation)."""
    sets = {d: data.valid_pairs(cfg, d, n) for d in cfg.data.directions}
    out = {}
    for d, mine in replies_by_direction(cfg, model, tokenizer, sets).items():
        hyps = [split_reply(r, cfg.eval.extraction)[0] for r in mine]
        refs = [p.reference for p in sets[d]]
        out[d] = {"chrf": corpus_metrics(hyps, refs, sets[d][0].tgt)["chrf"], "sentences": sentence_chrf(hyps, refs)}
    return out


def scored(cfg: Config, name: str, load: Any, folder: Path) -> dict[str, Any]:
    """``{"chrf": per direction, "mean": ...}`` for one candidate, kept in ``folder/<name>.json``."""
    path = folder / f"{name}.json"
    if path.is_file():
        return read_json(path)
    model, tokenizer = load()
    scores = valid_chrf(cfg, model, tokenizer)
    result = {"chrf": {d: v["chrf"] for d, v in scores.items()},
              "mean": round(statistics.fmean(v["chrf"] for v in scores.values()), 2),
              "sentence_chrf": {d: v["sentences"] for d, v in scores.items()}}
    write_json(path, result, indent=1)
    return result


def choose(candidates: Mapping[str, Mapping[str, Any]]) -> str:
    """The candidate with the highest mean validation chrF (the first listed on a tie)."""
    return max(candidates, key=lambda k: candidates[k]["mean"])


def tune(grid: Sequence[float] = GRID) -> dict[str, Any]:
    """Backbone and every grid point scored on the validation split; the choice."""
    base = load_profile(STUDY, runtime__threads=THREADS)
    apply_runtime(base)
    folder = base.runs_dir / "tuning"
    backbone = scored(base, "backbone", lambda: models.load_backbone(base), folder)
    candidates = {}
    for lr in grid:
        cfg = load_profile(STUDY, train__learning_rate=lr, runtime__threads=THREADS)
        name = f"lr{lr:g}"
        print(f"tune: {name} ({len(candidates)} of {len(grid)} done)", flush=True)
        start = time.time()
        adapter = train.train(cfg, METHOD, SEED, tag=f"tune-{name}")
        result = scored(cfg, name, lambda: (models.load_adapter(cfg, adapter, merge=True), models.load_tokenizer(cfg)),
                        folder)
        candidates[name] = {"learning_rate": lr, **result, "seconds_this_run": round(time.time() - start, 1)}
    best = choose(candidates)
    return {"backbone": backbone, "candidates": candidates, "choice": candidates[best]["learning_rate"]}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m radis_utils.study.tune", description=__doc__.split("\n\n")[0])
    ap.parse_args(argv)
    start = time.time()
    result = tune()
    command = ("python -m radis_utils.study.tune " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    write_json(record_path(), {"profile": STUDY, "method": METHOD, "seed": SEED, "valid_pairs": VALID_PAIRS,
                               "grid": list(GRID), **result, "command": command, "cpu": cpu_name(),
                               "versions": versions(), "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                               "seconds_this_run": round(time.time() - start, 1)}, indent=1)
    print(f"backbone {result['backbone']['mean']}; " + "; ".join(f"{k} {v['mean']}" for k, v in result["candidates"].items())
          + f"; chosen learning rate {result['choice']:g}; wrote {record_path()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
