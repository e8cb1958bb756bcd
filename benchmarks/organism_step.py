"""The organism's training step under other settings, timed back to back in one run (ratios).

``python -m benchmarks.organism_step [--steps 12] [--compile]`` builds the ``ci`` organism's
model and its first batches (``radis_utils.organism.build``), then times ``--steps`` AdamW steps
with PyTorch SDPA attention (what the build uses), with eager attention, and with
``--compile`` also under ``torch.compile(dynamic=True)`` (its compile time apart), 1 torch
thread. It prints ms/step, each setting's ratio to SDPA and the last loss (the same batches and
initialisation, so the losses should agree). Nothing is written; ``RESULTS.md`` has the figures.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
import torch.nn.functional as F

from radis_utils.organism.build import OrganismConfig, mixture_batches, new_model
from radis_utils.organism.tokenizer import build_tokenizer
from radis_utils.organism.training import IGNORE


def time_steps(cfg: OrganismConfig, tokenizer: Any, batches: list, attention: str = "sdpa",
               compiled: bool = False) -> dict[str, float]:
    """Seconds for the first (warm-up/compile) step and per later step, and the last loss."""
    model = new_model(cfg, tokenizer)
    model.config._attn_implementation = attention
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95))
    model.train()
    forward = torch.compile(model, dynamic=True) if compiled else model

    def step(batch: Any) -> float:
        logits = forward(input_ids=batch.input_ids).logits[:, :-1]
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch.labels[:, 1:].reshape(-1),
                               ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    start = time.perf_counter()
    step(batches[0])
    first = time.perf_counter() - start
    start = time.perf_counter()
    losses = [step(b) for b in batches[1:]]
    return {"first_s": first, "step_ms": 1000 * (time.perf_counter() - start) / len(losses), "loss": losses[-1]}


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12, help="timed steps per setting (after one warm-up)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    torch.set_num_threads(1)
    cfg = OrganismConfig()
    world = cfg.world()
    tokenizer = build_tokenizer(world)
    make_batch = mixture_batches(world, tokenizer, cfg)
    batches = [make_batch(i) for i in range(args.steps + 1)]
    settings = [("sdpa", False), ("eager", False)] + ([("sdpa", True)] if args.compile else [])
    base = None
    for attention, compiled in settings:
        r = time_steps(cfg, tokenizer, batches, attention, compiled)
        base = base or r["step_ms"]
        name = f"{attention}{' + torch.compile' if compiled else ''}"
        print(f"{name:<22} {r['step_ms']:7.1f} ms/step  {base / r['step_ms']:.2f}x sdpa's speed  "
              f"first step {r['first_s']:.1f} s  last loss {r['loss']:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
