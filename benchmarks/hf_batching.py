"""Batched HF engine vs naive one-prompt-at-a-time ``generate`` on the same continuation prompts.

    python -m benchmarks.hf_batching                    # ci organism, 256 prompts
    python -m benchmarks.hf_batching --profile qlora -n 64 --out runs/qlora/bench/hf.json

Both sides use greedy decoding with the profile's ``synthesis.max_new_tokens``; the batched
side uses ``synthesis.batch_size``. Prints both throughputs and their ratio (goal: >= 5x) and
writes a JSON record (device, versions, command, numbers) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

GOAL = 5.0


def continuation_prompts(cfg: Any, tokenizer: Any, n: int, seed: int = 0) -> list[str]:
    """``n`` RaDis continuation prompts over the profile's test pairs, one random instruction each."""
    from radis_utils.observation import observation_requests
    from radis_utils.prompts import continuation_prompt

    return [continuation_prompt(tokenizer, r["user"], r["reference"])
            for r in observation_requests(cfg, n, seed)]


def timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def side(done: Sequence[Any], seconds: float) -> dict[str, float]:
    tokens = sum(c.new_tokens for c in done)
    return {"seconds": round(seconds, 3), "examples_per_s": round(len(done) / seconds, 2),
            "new_tokens": tokens, "new_tokens_per_s": round(tokens / seconds, 1)}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="ci")
    parser.add_argument("-n", type=int, default=256, help="number of prompts (default 256)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: synthesis.batch_size")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: synthesis.max_new_tokens")
    parser.add_argument("--out", default=None, help="default: runs/<profile>/bench/hf_batching.json")
    args = parser.parse_args(argv)

    from radis_utils import models
    from radis_utils.config import load_profile
    from radis_utils.engines import Decoding, HFEngine, generate_completions
    from radis_utils.runtime import apply_runtime, device_name, versions

    cfg = load_profile(args.profile)
    apply_runtime(cfg)
    model, tok = models.load_backbone(cfg)
    batch_size = args.batch_size or cfg.synthesis.batch_size
    decoding = Decoding(max_new_tokens=args.max_new_tokens or cfg.synthesis.max_new_tokens)
    prompts = continuation_prompts(cfg, tok, args.n)
    engine = HFEngine(model, tok, batch_size)
    engine.generate(prompts[:2], decoding)  # warm-up: first-call overheads out of both timings

    batched, t_batched = timed(lambda: engine.generate(prompts, decoding))
    naive, t_naive = timed(lambda: [generate_completions(model, tok, [p], decoding.max_new_tokens, 1)[0]
                                    for p in prompts])
    result = {
        "benchmark": "hf_batching", "profile": cfg.profile, "config_hash": models.config_hash(cfg),
        "backbone": cfg.model.backbone, "device": device_name(), "versions": versions(),
        "command": " ".join(["python", "-m", "benchmarks.hf_batching", *(argv or sys.argv[1:])]),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "n_prompts": len(prompts), "batch_size": batch_size, "decoding": decoding.to_dict(),
        "batched": side(batched, t_batched), "naive": side(naive, t_naive),
        "identical_outputs": [c.text for c in batched] == [c.text for c in naive],
    }
    result["ratio"] = round(result["batched"]["examples_per_s"] / result["naive"]["examples_per_s"], 2)
    result["goal"] = GOAL
    result["meets_goal"] = result["ratio"] >= GOAL
    out = Path(args.out) if args.out else cfg.runs_dir / "bench" / "hf_batching.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    b, nv = result["batched"], result["naive"]
    print(f"{result['device']}, {cfg.model.backbone}, {len(prompts)} prompts, max_new_tokens "
          f"{decoding.max_new_tokens}, batch {batch_size}")
    for label, s in (("batched", b), ("naive", nv)):
        print(f"{label:<8}: {s['examples_per_s']:8.2f} examples/s {s['new_tokens_per_s']:9.1f} new tokens/s "
              f"({s['seconds']} s)")
    verdict = "met" if result["meets_goal"] else "NOT met"
    print(f"ratio   : {result['ratio']:.1f}x (goal >= {GOAL:.0f}x: {verdict}); "
          f"identical greedy outputs: {result['identical_outputs']}")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
