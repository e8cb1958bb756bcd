"""Issue 18's observation at ``smol``: do SmolLM2-135M-Instruct's replies carry rationales, and
are the rationales it synthesizes after a reference empty?

    python -m benchmarks.smol_observation                      # 16 requests, 24 pairs (~15 min, 1 core)
    python -m benchmarks.smol_observation --requests 8 --pairs 8

1. Chapter 02's analysis (``observation.observation_requests`` + ``observation.observe``: greedy
   replies, split by ``eval.extraction``): the share of replies with a rationale.
2. Rationale synthesis (``synthesis.synthesize_for_profile``, the paper's continuation prompt) on
   the first training pairs of each direction, three ways: the profile's sampled decoding and
   greedy decoding (both faithful readings: the paper does not state its decoding), and the
   labelled deviation ``synthesis.min_new_tokens=1`` (end of turn masked for the first token).
   For each: non-empty share, how many start on a new line (a note after y, not a continuation
   of the sentence) and how many have at least five words.

Everything is written under a temporary runs dir (the converted backbone is linked, not copied).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

from radis_utils import data, models, observation, records, synthesis
from radis_utils.config import load_profile, resolve_path
from radis_utils.runtime import apply_runtime

VARIANTS = {
    "faithful, sampled (profile)": {},
    "faithful, greedy": {"synthesis__do_sample": False},
    "VARIANT no immediate end (min_new_tokens=1), sampled": {"synthesis__min_new_tokens": 1},
}


def rationale_shape(texts: Sequence[str]) -> dict[str, int]:
    """Counts of non-empty rationales, those starting on a new line, and those of >= 5 words."""
    kept = [t for t in texts if t.strip()]
    return {"n": len(texts), "non_empty": len(kept), "new_line": sum(t.startswith("\n") for t in kept),
            "five_words": sum(len(t.split()) >= 5 for t in kept)}


def first_pairs(cfg: Any, per_direction: int) -> list[Any]:
    """The first ``per_direction`` training examples of every direction of the profile."""
    examples = data.training_examples(cfg)
    return [e for d in cfg.data.directions for e in [x for x in examples if x.direction == d][:per_direction]]


def main(argv: list[str] | None = None) -> int:
    """Print the reply rationale share and, per decoding, the shape of synthesized rationales."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.smol_observation")
    parser.add_argument("--profile", default="smol")
    parser.add_argument("--requests", type=int, default=16, help="translation requests (chapter 02)")
    parser.add_argument("--pairs", type=int, default=24, help="training pairs for synthesis (split over directions)")
    parser.add_argument("--alma-dir", default=None, help="ALMA folder (default: the profile's)")
    args = parser.parse_args(argv)
    base = load_profile(args.profile)
    backbones = resolve_path(base.runtime.runs_dir) / "backbones"
    with tempfile.TemporaryDirectory() as tmp:
        common = {"runtime__runs_dir": tmp, **({"data__alma_dir": args.alma_dir} if args.alma_dir else {})}
        cfg = load_profile(args.profile, **common)
        apply_runtime(cfg)
        backbones.mkdir(parents=True, exist_ok=True)
        os.symlink(backbones, Path(tmp) / "backbones")
        model, tok = models.load_backbone(cfg)
        replies = observation.observe(cfg, model, tok, observation.observation_requests(cfg, args.requests, 0),
                                     synthesis.generate)
        with_r = sum(bool(r["rationale"]) for r in replies)
        print(f"replies with a rationale ({cfg.eval.extraction}, greedy): {with_r}/{len(replies)}")
        sample = first_pairs(cfg, max(1, args.pairs // len(cfg.data.directions)))
        for i, (label, over) in enumerate(VARIANTS.items()):  # one runs dir each: the files share a name
            (Path(tmp) / f"v{i}").mkdir()
            os.symlink(backbones, Path(tmp) / f"v{i}" / "backbones")
            variant = load_profile(args.profile, **{**common, **over, "runtime__runs_dir": f"{tmp}/v{i}"})
            path, _ = synthesis.synthesize_for_profile(variant, "rationale", sample, model, tok)
            shape = rationale_shape([r["text"] for r in records.read_records(path)])
            print(f"{label}: non-empty {shape['non_empty']}/{shape['n']}, on a new line {shape['new_line']}, "
                  f">= 5 words {shape['five_words']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
