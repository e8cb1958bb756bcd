"""The ``cpu`` loop on long replies, with and without its spare-room KV cache, as a ratio in one run.

    python -m benchmarks.kv_cache                          # SmolLM2-135M-Instruct, 2 cores: ~10 min
    python -m benchmarks.kv_cache --prompts 32 --max-new-tokens 128     # a quicker look

The study's longest generations are IFEval replies (up to 256 new tokens, 64 rows a batch, more
prompts than rows, so rows leave and join all the time). The same greedy run goes twice through
``engines.cpu_completions``: first with transformers' own cache layers (``DynamicLayer``: every
step concatenates each layer's keys and values into a new tensor, and a batch keeps the width of
its oldest row), then with ``continuous_batching.SPARE_ROOM`` (new keys written into room kept
after the last position; all-padding columns dropped when rows leave). Each row gives new tokens/s,
the ratio to the first, and the share of replies identical to the first's (text, token count,
finish). A record goes to ``benchmarks/records/kv_cache-<device>.json``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from benchmarks.common import command_line, figure, make_record, print_figures, quiet_progress, write_record
from benchmarks.hf_batching import timed

SETTINGS = (("transformers' DynamicLayer", False), ("spare room, padding dropped", True))


def ifeval_prompts(cfg: Any, tokenizer: Any, n: int) -> list[str]:
    """The chat prompts of IFEval's first ``n`` instructions (what the study generates longest)."""
    from radis_utils.benchmark_files import read_ifeval
    from radis_utils.config import resolve_path
    from radis_utils.prompts import chat_prompt

    return [chat_prompt(tokenizer, row["prompt"]) for row in read_ifeval(resolve_path(cfg.eval.benchmarks_dir))[:n]]


def rows(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int, batch_size: int) -> list[dict[str, Any]]:
    """One timed greedy run per setting: seconds, new tokens, tokens/s, ratio, identical share."""
    from radis_utils import continuous_batching
    from radis_utils.engines import cpu_completions

    before = continuous_batching.SPARE_ROOM
    out = []
    try:
        for name, spare_room in SETTINGS:
            continuous_batching.SPARE_ROOM = spare_room
            with quiet_progress():
                done, seconds = timed(lambda: cpu_completions(model, tokenizer, prompts, max_new_tokens, batch_size))
            out.append({"setting": name, "seconds": seconds, "outputs": done})
    finally:
        continuous_batching.SPARE_ROOM = before
    base = out[0]["outputs"]
    for row in out:
        tokens = sum(c.new_tokens for c in row["outputs"])
        row.update(tokens=tokens, tokens_per_s=tokens / row["seconds"], ratio=out[0]["seconds"] / row["seconds"],
                   identical=sum(a == b for a, b in zip(row.pop("outputs"), base)) / len(base))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    from radis_utils import models
    from radis_utils.config import load_profile
    from radis_utils.runtime import apply_runtime

    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="smol")
    ap.add_argument("--prompts", type=int, default=96, help="IFEval's first N instructions (default 96)")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--no-record", action="store_true", help="print only")
    args = ap.parse_args(argv)
    cfg = load_profile(args.profile)
    apply_runtime(cfg)
    model, tokenizer = models.load_backbone(cfg)
    prompts = ifeval_prompts(cfg, tokenizer, args.prompts)
    print(f"{args.profile}: {len(prompts)} IFEval prompts, {args.max_new_tokens} new tokens, greedy, batch "
          f"{args.batch_size}; {torch.get_num_threads()} torch threads", flush=True)
    got = rows(model, tokenizer, prompts, args.max_new_tokens, args.batch_size)
    figures = [figure(f"cpu_loop_{'spare_room' if i else 'dynamic_layer'}", f"cpu loop, {r['setting']}",
                      round(r["tokens_per_s"], 1), "new tokens/s",
                      f"{r['ratio']:.2f}x the first row; {r['tokens']} new tokens in {r['seconds']:.0f} s; "
                      f"{100 * r['identical']:.0f} % of replies identical to the first row's")
               for i, r in enumerate(got)]
    record = make_record("kv_cache", "kv_cache", command_line("benchmarks.kv_cache", argv), figures,
                         settings={"profile": args.profile, "prompts": len(prompts), "max_new_tokens": args.max_new_tokens,
                                   "batch_size": args.batch_size, "threads": torch.get_num_threads()})
    print_figures(record)
    print(f"spare room: {got[1]['ratio']:.2f}x transformers' layers, {100 * got[1]['identical']:.0f} % of replies identical")
    if not args.no_record:
        print(f"record: {write_record(record)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
