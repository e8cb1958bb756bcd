"""What the `smol` profile's two speed-ups buy, measured back to back in one run.

    python -m benchmarks.smol_threads            # the profile's backbone (converted GGUF), 16 test prompts

1. Translation: ``evaluate`` used to generate each direction's test set on its own (8 directions
   of 2 sentences: 8 batches of 2); it now sends every direction through one ``generate`` call
   (one batch of 16). Timed on the profile's own test prompts, greedy, ``eval.max_new_tokens``.
2. Threads: 1 torch thread against 2 for that generation and for a LoRA-free training step
   (forward + backward of the full model on 8 of the prompts), since nothing runs beside the
   smol chapters (no work ahead).
Prints seconds and the ratios; nothing is written.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable, Sequence


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_prompts(cfg: Any, tokenizer: Any, limit: int | None = None) -> list[str]:
    """Every direction's test prompts (the first ``limit`` of each), as ``evaluate`` builds them."""
    from radis_utils.evaluate.suite import checked_test_pairs, translation_prompts

    return [p for d in cfg.data.directions
            for p in translation_prompts(tokenizer, checked_test_pairs(cfg, d)[:limit], cfg.prompts.instructions)]


def train_step(model: Any, tokenizer: Any, prompts: Sequence[str]) -> None:
    """One forward and backward pass of the full model on ``prompts`` (gradients then dropped)."""
    model.train()
    enc = tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False)
    model(**enc, labels=enc["input_ids"]).loss.backward()
    model.zero_grad(set_to_none=True)
    model.eval()


def main(argv: Sequence[str] | None = None) -> None:
    import torch

    from radis_utils import models
    from radis_utils.config import load_profile
    from radis_utils.engines import generate

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="smol")
    ap.add_argument("--limit", type=int, default=None, help="first N test prompts per direction (default: all)")
    args = ap.parse_args(argv)
    cfg = load_profile(args.profile)
    model, tokenizer = models.load_backbone(cfg)
    prompts = test_prompts(cfg, tokenizer, args.limit)
    per_direction = len(prompts) // len(cfg.data.directions)
    n_new = cfg.eval.max_new_tokens
    print(f"{args.profile}: {len(prompts)} test prompts over {len(cfg.data.directions)} directions, "
          f"{n_new} new tokens, greedy")
    out: dict[tuple[int, str], float] = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        out[threads, "per direction"] = timed(lambda: [generate(model, tokenizer, prompts[i:i + per_direction], n_new,
                                                                cfg.eval.batch_size)
                                                       for i in range(0, len(prompts), per_direction)])
        out[threads, "all at once"] = timed(lambda: generate(model, tokenizer, prompts, n_new, cfg.eval.batch_size))
        out[threads, "train step"] = timed(lambda: train_step(model, tokenizer, prompts[:8]))
        print(f"{threads} thread(s): translation per direction {out[threads, 'per direction']:.1f} s, all at once "
              f"{out[threads, 'all at once']:.1f} s; train step {out[threads, 'train step']:.1f} s", flush=True)
    print(f"all at once vs per direction, 1 thread: {out[1, 'per direction'] / out[1, 'all at once']:.2f}x")
    for what in ("all at once", "train step"):
        print(f"2 threads vs 1, {what}: {out[1, what] / out[2, what]:.2f}x")
    print(f"both (per direction, 1 thread -> all at once, 2 threads): "
          f"{out[1, 'per direction'] / out[2, 'all at once']:.2f}x")


if __name__ == "__main__":
    main()
