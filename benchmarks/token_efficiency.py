"""Token efficiency of training batches: real tokens / processed tokens (padding is waste).

    python -m benchmarks.token_efficiency                 # all ~113k directed ALMA examples
    python -m benchmarks.token_efficiency --limit 2000    # a seeded subset (minutes -> seconds)

On ALMA's human-written training data (``--alma-dir``, default the profile's
``data.alma_dir``), a byte-level BPE tokenizer is trained locally with ``tokenizers`` (a
stand-in for the backbone's own, which would need a download) and given a reference chat
template; every directed example is tokenized with ``losses.tokenize_example`` exactly as the
trainer does (``train.tokenize_items``). The batches are then drawn by the trainer itself
(``SpanTrainer.get_train_dataloader`` built from ``train.training_arguments``), once with the
profile's ``group_by_length`` (``transformers``' ``LengthGroupedSampler``) and once with plain
random batches, at the qlora and a100 per-device batch sizes; the collator
(``train.SpanCollator``) counts real and processed (padded) tokens. Goal: >= 95 % grouped.

Then a short ``ci`` training run (``train.train`` with ``train__max_steps``, in a temporary runs
dir) gives the trainer's own ``tokens_per_s`` and ``token_efficiency`` from ``summary.json``.
Prints one line per figure and writes a record to ``benchmarks/records/``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from benchmarks.common import command_line, figure, make_record, print_figures, quiet_progress, write_record

GOAL = 0.95
PROFILES = ("qlora", "a100")


def alma_examples(alma_dir: str | Path | None, limit: int | None = None, seed: int = 0) -> tuple[list[Any], Path]:
    """The qlora/a100 profiles' directed ALMA training examples (a seeded subset of ``limit``) and their folder."""
    from radis_utils.config import load_profile, resolve_path
    from radis_utils.data import DataError, training_examples

    cfg = load_profile("qlora", **({"data__alma_dir": str(alma_dir)} if alma_dir else {}))
    folder = resolve_path(cfg.data.alma_dir)
    if not (folder / "human_written_data").is_dir():
        raise SystemExit(f"ALMA training data not found: {folder}/human_written_data does not exist. "
                         "Pass --alma-dir DIR (the folder holding human_written_data/), or fetch it "
                         "with `python -m radis_utils.data download --to data/alma`.")
    try:
        examples = training_examples(cfg)
    except DataError as err:
        raise SystemExit(f"ALMA training data in {folder} is incomplete: {err}") from err
    if limit is not None and limit < len(examples):
        examples = random.Random(seed).sample(examples, limit)
    return examples, folder


def train_tokenizer(examples: Sequence[Any], style: str = "mistral", vocab_size: int = 8000) -> Any:
    """A byte-level BPE tokenizer trained on the examples' texts, with a reference chat template."""
    from radis_utils.prompts import demo_chat_tokenizer

    corpus = [t for e in examples for t in (e.source, e.reference)]
    tok = demo_chat_tokenizer(style, corpus, vocab_size=vocab_size)
    tok.pad_token = tok.pad_token or tok.eos_token
    return tok


def tokenized_features(tokenizer: Any, examples: Sequence[Any], max_length: int) -> tuple[list[dict], dict]:
    """Span-labelled features of the vanilla conversations, as the trainer builds them."""
    from radis_utils.train import TrainItem, tokenize_items

    items = [TrainItem(e.id, e.direction, e.instruction, e.reference) for e in examples]
    return tokenize_items(tokenizer, items, max_length)


def loader_efficiency(profile: str, features: list[dict], pad_id: int, vocab: int, grouped: bool,
                      seed: int = 0) -> dict[str, Any]:
    """One epoch of the trainer's own dataloader: real/processed tokens counted by ``SpanCollator``."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    from radis_utils.config import load_profile
    from radis_utils.train import SpanCollator, SpanTrainer, training_arguments

    cfg = load_profile(profile, train__group_by_length=grouped)
    dummy = MistralForCausalLM(MistralConfig(vocab_size=vocab, hidden_size=8, intermediate_size=8,
                                             num_hidden_layers=1, num_attention_heads=1, num_key_value_heads=1))
    collator = SpanCollator(pad_id)
    with tempfile.TemporaryDirectory() as tmp:  # nothing is written there: only the dataloader is used
        args = training_arguments(cfg, Path(tmp), seed, use_cpu=True)  # one process, no DataParallel
        trainer = SpanTrainer(model=dummy, args=args, train_dataset=features, data_collator=collator)
        torch.manual_seed(seed)
        batches = sum(1 for _ in trainer.get_train_dataloader())
    return {"profile": profile, "per_device_batch": cfg.train.per_device_batch, "grouped": grouped,
            "batches": batches, "real_tokens": collator.real_tokens,
            "processed_tokens": collator.processed_tokens,
            "ratio": round(collator.real_tokens / max(collator.processed_tokens, 1), 4)}


def ci_training_run(steps: int, method: str | None = None, seed: int = 0) -> dict[str, Any]:
    """``train.train`` on the ``ci`` profile for ``steps`` steps in a temporary runs dir; its summary.

    The organism and the ci synthesis records are linked in (read only), so nothing is rebuilt;
    ``method`` defaults to radis when its rationales exist, else vanilla.
    """
    from radis_utils import models, synthesis, train
    from radis_utils.config import load_profile
    from radis_utils.runtime import apply_runtime

    base = load_profile("ci")
    apply_runtime(base)
    models.resolve_backbone(base)  # builds the organism in runs/organism/ if it is not there yet
    rationales = synthesis.records_path(base, "rationale")
    method = method or ("radis" if rationales.is_file() else "vanilla")
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        os.symlink(models.organism_cache(base), runs / "organism", target_is_directory=True)
        if (base.runs_dir / "synthesis").is_dir():
            (runs / base.profile).mkdir()
            os.symlink(base.runs_dir / "synthesis", runs / base.profile / "synthesis", target_is_directory=True)
        cfg = load_profile("ci", train__max_steps=steps, train__save_steps=10**9, runtime__runs_dir=str(runs))
        with quiet_progress():
            out = train.train(cfg, method, seed)
        summary = train.read_summary(out)
    return {"method": method, **{k: summary[k] for k in ("steps", "train_seconds", "tokens_per_s",
                                                          "token_efficiency", "features", "device")}}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alma-dir", default=None, help="folder holding human_written_data/ "
                        "(default: the profile's data.alma_dir, ../shared/data/alma)")
    parser.add_argument("--limit", type=int, default=None, help="use a seeded subset of N examples")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--chat-format", default="mistral", choices=["mistral", "llama2", "chatml"])
    parser.add_argument("--ci-steps", type=int, default=30, help="steps of the ci training run (0: skip it)")
    parser.add_argument("--ci-method", default=None, help="default: radis if its ci rationales exist, else vanilla")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--records-dir", default=None, help="default: benchmarks/records/")
    args = parser.parse_args(argv)
    command = command_line("benchmarks.token_efficiency", argv)

    from radis_utils.config import load_profile, project_root

    start = time.perf_counter()
    examples, folder = alma_examples(args.alma_dir, args.limit, args.seed)
    tok = train_tokenizer(examples, args.chat_format, args.vocab_size)
    max_length = load_profile("qlora").train.max_length
    features, counts = tokenized_features(tok, examples, max_length)
    lengths = sorted(len(f["input_ids"]) for f in features)
    prep_s = time.perf_counter() - start

    figures, runs = [], []
    for profile in PROFILES:
        for grouped in (False, True):
            run = loader_efficiency(profile, features, tok.pad_token_id, len(tok), grouped, args.seed)
            runs.append(run)
            kind = "length-grouped (trainer's group_by_length)" if grouped else "plain random batches"
            note = f"goal >= {GOAL:.0%}: {'met' if run['ratio'] >= GOAL else 'NOT met'}" if grouped else ""
            figures.append(figure(f"{profile}_{'grouped' if grouped else 'random'}",
                                  f"token efficiency, {profile} profile, per-device batch "
                                  f"{run['per_device_batch']}, {kind}", run["ratio"], "real/processed", note))
    ci = None
    if args.ci_steps > 0:
        ci = ci_training_run(args.ci_steps, args.ci_method, args.seed)
        where = f"ci profile, {ci['method']}, {ci['steps']} steps, train.train summary.json"
        figures.append(figure("ci_tokens_per_s", f"training throughput, {where}", ci["tokens_per_s"],
                              "real tokens/s"))
        figures.append(figure("ci_token_efficiency", f"token efficiency, {where}", ci["token_efficiency"],
                              "real/processed"))
    settings = {"alma_dir": os.path.relpath(folder, project_root()), "limit": args.limit, "examples": len(examples),
                "features": len(features), **counts, "tokenizer": f"byte-level BPE, vocab {len(tok)}, "
                f"{args.chat_format} chat template, trained on the examples' texts",
                "max_length": max_length, "seed": args.seed,
                "length_tokens": {"min": lengths[0], "median": lengths[len(lengths) // 2], "max": lengths[-1],
                                  "mean": round(sum(lengths) / len(lengths), 1)},
                "prepare_seconds": round(prep_s, 1)}
    record = make_record("token_efficiency", "token_efficiency", command, figures, settings,
                         loaders=runs, ci_run=ci, goal=GOAL)
    print(f"{record['device']}: {len(features):,} ALMA training conversations, "
          f"{lengths[0]}-{lengths[-1]} tokens (median {lengths[len(lengths) // 2]})")
    print_figures(record)
    print(f"wrote {write_record(record, args.records_dir)}")
    return record


if __name__ == "__main__":
    main()
