"""The CPU paths of the `smol` backbone, measured as ratios in one run: generation and LoRA training.

    python -m benchmarks.cpu_paths                       # SmolLM2-135M-Instruct, 2 cores: ~10 min
    python -m benchmarks.cpu_paths --per-kind 8 --train-steps 2     # a quicker look

Generation: one fixed prompt set (``prompt_set``: translation requests from the WMT'22 test
files, continuations after a reference with the assistant turn left open, general instructions
from AlpacaEval), greedy, ``--max-new-tokens`` each, through ``engines.generate_completions``
(``hf``: transformers' ``generate``, batch 16, the `smol` path before the ``cpu`` loop) and
``engines.cpu_completions`` (``cpu``) at each ``--batch-sizes``. Each row gives new tokens/s, its
ratio to the ``hf`` row, and the share of outputs identical to ``hf``'s (text, token count, finish).

Training: ``--train-steps`` LoRA steps (after one untimed) of the profile's LoRA on the same
batches of ``per_device_batch`` ALMA training conversations, from the same seeded LoRA
initialisation, in fp32 and under bf16 autocast (what ``TrainingArguments(bf16=True)`` runs on a
CPU; only where the CPU has bf16 instructions), each with the LM head on every position or only
where a token is learned (``train.logits_on_labels``). Each row gives trained tokens/s, the ratio,
the largest relative difference of a batch's loss from fp32's at the initial weights without
dropout (dropout masks differ between settings, so losses after a step cannot be compared), and
eq. 4's identity on the last batch.

The goals (issue: generation >= 2x at identical greedy text, training >= 1.5x) are printed as met
or missed, by how much. A record goes to ``benchmarks/records/cpu_paths-<device>.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Sequence

from benchmarks.common import command_line, figure, make_record, print_figures, quiet_progress, write_record
from benchmarks.hf_batching import timed

GENERATION_GOAL = 2.0
TRAINING_GOAL = 1.5
LOSS_TOLERANCE = 0.01  # a training setting is kept only if every batch's loss is within 1 % of fp32's


def prompt_set(cfg: Any, tokenizer: Any, per_kind: int) -> dict[str, list[str]]:
    """``per_kind`` prompts of each kind, fixed by the profile's files: translation requests (spread
    over the directions), continuations after a reference (no end of turn), AlpacaEval instructions."""
    from radis_utils.benchmark_files import read_alpaca_eval
    from radis_utils.config import resolve_path
    from radis_utils.data import test_pairs, training_examples
    from radis_utils.evaluate.suite import translation_prompts
    from radis_utils.prompts import chat_prompt, continuation_prompt

    directions = cfg.data.directions
    per_direction = -(-per_kind // len(directions))
    translation = [p for d in directions
                   for p in translation_prompts(tokenizer, test_pairs(cfg, d, per_direction), cfg.prompts.instructions)]
    examples = training_examples(cfg)
    continuation = [continuation_prompt(tokenizer, ex.instruction, ex.reference) for ex in examples[:per_kind]]
    general = [chat_prompt(tokenizer, row["instruction"])
               for row in read_alpaca_eval(resolve_path(cfg.eval.benchmarks_dir))[:per_kind]]
    return {"translation": translation[:per_kind], "continuation": continuation, "general": general}


def generation_rows(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int,
                    batch_sizes: Sequence[int]) -> list[dict[str, Any]]:
    """``hf`` at batch 16, then ``cpu`` at each batch size: tokens/s, ratio, identical share."""
    from radis_utils.engines import cpu_completions, generate_completions

    with quiet_progress():
        base, seconds = timed(lambda: generate_completions(model, tokenizer, prompts, max_new_tokens, 16))
        rows = [{"engine": "hf", "batch_size": 16, "seconds": seconds, "outputs": base}]
        for b in batch_sizes:
            out, seconds = timed(lambda: cpu_completions(model, tokenizer, prompts, max_new_tokens, b))
            rows.append({"engine": "cpu", "batch_size": b, "seconds": seconds, "outputs": out})
    for row in rows:
        tokens = sum(c.new_tokens for c in row["outputs"])
        row.update(tokens=tokens, tokens_per_s=tokens / row["seconds"], ratio=rows[0]["seconds"] / row["seconds"],
                   identical=sum(a == b for a, b in zip(row.pop("outputs"), base)) / len(base))
    return rows


def training_batches(cfg: Any, tokenizer: Any, count: int) -> list[dict[str, Any]]:
    """``count`` batches of ``train.per_device_batch`` ALMA training conversations, grouped by length
    as the trainer groups them (reference only: the MT term of eq. 4; a rationale costs the same per token)."""
    from radis_utils.data import training_examples
    from radis_utils.losses import collate, tokenize_example

    size = cfg.train.per_device_batch
    examples = training_examples(cfg)
    if len(examples) < size * count:
        raise SystemExit(f"{cfg.profile}: {len(examples)} training examples, {size * count} needed; "
                         f"raise data.max_train_pairs or lower --train-steps")
    tokenized = sorted((tokenize_example(tokenizer, ex.instruction, ex.reference, "", cfg.train.max_length)
                        for ex in examples[:size * count]), key=lambda t: len(t.input_ids))  # as grouped by length
    return [collate(tokenized[i:i + size], tokenizer.pad_token_id) for i in range(0, len(tokenized), size)]


TRAINING_SETTINGS = (("fp32", False, False), ("fp32, logits on labels", False, True),
                     ("bf16 autocast", True, False), ("bf16 autocast, logits on labels", True, True))


def training_row(cfg: Any, model: Any, batches: Sequence[dict[str, Any]], name: str, bf16: bool,
                 on_labels: bool) -> dict[str, Any]:
    """Seeded LoRA on ``model``: every batch's loss at the initial weights without dropout (what
    the setting changes in the loss), then one untimed step and one timed step per remaining batch."""
    import torch

    from radis_utils import models
    from radis_utils.losses import identity_check, span_losses

    torch.manual_seed(0)
    lora = models.add_lora(cfg, model)
    optimizer = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=cfg.train.learning_rate)

    def loss_of(batch: dict[str, Any]) -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return span_losses(lora, batch, logits_on_labels=on_labels)["total_mean"]

    lora.eval()
    with torch.no_grad():
        initial = [float(loss_of(b)) for b in batches]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            identity = identity_check(lora, batches[-1])
    lora.train()

    def step(batch: dict[str, Any]) -> None:
        loss_of(batch).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step(batches[0])
    start = time.perf_counter()
    for b in batches[1:]:
        step(b)
    seconds = time.perf_counter() - start
    lora.unload()  # the backbone without adapters, for the next row
    tokens = sum(int(b["attention_mask"].sum()) for b in batches[1:])
    return {"setting": name, "tokens_per_s": tokens / seconds, "initial_losses": initial,
            "sum_gap": identity["sum_gap"], "mean_gap": identity["mean_gap"]}


def goal_line(what: str, ratio: float, goal: float) -> str:
    verdict = "met" if ratio >= goal else "missed"
    return f"{what}: {ratio:.2f}x against a goal of {goal:.1f}x: {verdict} by {abs(ratio - goal):.2f}x"


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    from radis_utils import models
    from radis_utils.config import load_profile
    from radis_utils.runtime import apply_runtime
    from radis_utils.trainer import cpu_has_bf16

    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="smol")
    ap.add_argument("--per-kind", type=int, default=32, help="prompts of each kind (default 32)")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-sizes", default="16,64", help="cpu loop batch sizes (default 16,64)")
    ap.add_argument("--train-steps", type=int, default=4, help="timed LoRA steps per setting (default 4)")
    ap.add_argument("--no-record", action="store_true", help="print only")
    args = ap.parse_args(argv)
    cfg = load_profile(args.profile)
    pairs = -(-cfg.train.per_device_batch * (args.train_steps + 1) // len(cfg.data.directions))  # per direction
    if cfg.data.max_train_pairs is not None and cfg.data.max_train_pairs < pairs:
        cfg = load_profile(args.profile, data__max_train_pairs=pairs)
    apply_runtime(cfg)
    model, tokenizer = models.load_backbone(cfg)
    kinds = prompt_set(cfg, tokenizer, args.per_kind)
    prompts = [p for group in kinds.values() for p in group]
    print(f"{args.profile}: {len(prompts)} prompts ({', '.join(f'{len(v)} {k}' for k, v in kinds.items())}), "
          f"{args.max_new_tokens} new tokens, greedy; {torch.get_num_threads()} torch threads", flush=True)
    gen = generation_rows(model, tokenizer, prompts, args.max_new_tokens,
                          [int(b) for b in args.batch_sizes.split(",")])
    figures = [figure(f"generation_{r['engine']}_b{r['batch_size']}", f"generation, {r['engine']}, batch {r['batch_size']}",
                      round(r["tokens_per_s"], 1), "new tokens/s",
                      f"{r['ratio']:.2f}x hf; {100 * r['identical']:.0f} % of outputs identical to hf's")
               for r in gen]
    batches = training_batches(cfg, tokenizer, args.train_steps + 1)
    train = [training_row(cfg, model, batches, name, bf16, on_labels) for name, bf16, on_labels in TRAINING_SETTINGS
             if not bf16 or cpu_has_bf16()]
    for r in train:
        gap = max(abs(a - b) / abs(b) for a, b in zip(r["initial_losses"], train[0]["initial_losses"]))
        r.update(ratio=r["tokens_per_s"] / train[0]["tokens_per_s"], loss_gap=gap)
        figures.append(figure(f"training_{r['setting'].replace(', ', '_').replace(' ', '_')}",
                              f"LoRA training, {r['setting']}", round(r["tokens_per_s"], 1), "tokens/s",
                              f"{r['ratio']:.2f}x fp32; loss at the same weights within {100 * gap:.3f} % of fp32's; "
                              f"eq. 4 gaps {r['sum_gap']:.1e} (sum), {r['mean_gap']:.1e} (mean vs the model's loss)"))
    if not cpu_has_bf16():
        figures.append(figure("training_bf16", "LoRA training, bf16 autocast", None,
                              note="not measured: this CPU has no bf16 instructions (AVX512-BF16 or AMX)"))
    record = make_record("cpu_paths", "cpu_paths", command_line("benchmarks.cpu_paths", argv), figures,
                         settings={"profile": args.profile, "prompts": {k: len(v) for k, v in kinds.items()},
                                   "max_new_tokens": args.max_new_tokens, "train_steps": args.train_steps,
                                   "per_device_batch": cfg.train.per_device_batch,
                                   "threads": torch.get_num_threads()})
    print_figures(record)
    fastest = max((r for r in gen[1:] if r["identical"] == 1.0), key=lambda r: r["ratio"], default=None)
    if fastest is None:
        print("generation: no cpu row kept hf's greedy text on every prompt")
    else:
        print(goal_line(f"generation at identical greedy text (cpu, batch {fastest['batch_size']})",
                        fastest["ratio"], GENERATION_GOAL))
    kept = [r for r in train[1:] if r["loss_gap"] <= LOSS_TOLERANCE]
    best = max(kept, key=lambda r: r["ratio"], default=train[0])
    print(goal_line(f"training ({best['setting']}, losses within {100 * LOSS_TOLERANCE:.0f} % of fp32's)",
                    best["ratio"], TRAINING_GOAL))
    if not args.no_record:
        print(f"record: {write_record(record)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
