"""Three ways to batch ALMA-length conversations for a LoRA step: random padded, length-grouped
padded (the trainer's ``group_by_length``) and padding-free (transformers'
``DataCollatorWithFlattening``: a batch is one row of concatenated conversations whose
``position_ids`` restart at every conversation, so attention never crosses a boundary).

    python -m benchmarks.batching --write-lengths     # once, where ALMA's data is

The lengths come from ``benchmarks/alma_lengths.json``: the token count of every directed ALMA
training conversation, tokenized as the trainer does (``benchmarks.token_efficiency``'s
stand-in byte-level BPE, vocab 8000, Mistral chat template). That file travels with the repo,
so a GPU machine without ALMA's data draws the same lengths. ``benchmarks.gpu`` runs the
comparison (``compare``) on the 7B shape; its ``--dry-run`` does it on ``tiny``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from benchmarks.common import HERE, command_line
from radis_utils.records import write_json

LENGTHS_FILE = HERE / "alma_lengths.json"
MODES = ("random", "grouped", "padding_free")


# --- the length distribution --------------------------------------------------------------------

def write_length_table(alma_dir: str | None = None, path: Path = LENGTHS_FILE, vocab_size: int = 8000,
                       argv: Sequence[str] = ()) -> dict[str, Any]:
    """Count the token length of every directed ALMA training conversation and write the table."""
    from benchmarks import token_efficiency
    from radis_utils.config import load_profile

    examples, folder = token_efficiency.alma_examples(alma_dir)
    tok = token_efficiency.train_tokenizer(examples, "mistral", vocab_size)
    max_length = load_profile("a100").train.max_length
    features, counts = token_efficiency.tokenized_features(tok, examples, max_length)
    hist = Counter(len(f["input_ids"]) for f in features)
    table = {"what": "token length of each directed ALMA training conversation (prompt + reference + "
                     "end of turn), as train.tokenize_items makes it",
             "command": command_line("benchmarks.batching", list(argv)), "alma_dir": folder.name,
             "tokenizer": f"byte-level BPE trained on the examples' texts, vocab {len(tok)}, mistral chat template",
             "max_length": max_length, "conversations": len(features), **counts,
             "counts": {str(n): hist[n] for n in sorted(hist)}}
    write_json(path, table)
    return table


def length_table(path: Path = LENGTHS_FILE) -> dict[str, Any]:
    """The shipped length table (``write_length_table`` makes it); a clear error when it is missing."""
    import json

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no ALMA length table; make it with `python -m benchmarks.batching "
                                "--write-lengths` where ALMA's data is (../shared/data/alma)")
    table = json.loads(path.read_text(encoding="utf-8"))
    if not table.get("counts"):
        raise ValueError(f"{path}: field 'counts' is empty")
    return table


def sample_lengths(table: dict[str, Any], n: int, seed: int = 0, max_length: int | None = None) -> list[int]:
    """``n`` lengths drawn (seeded, with replacement) from the table, capped at ``max_length``."""
    lengths = [int(k) for k in table["counts"]]
    weights = list(table["counts"].values())
    drawn = random.Random(seed).choices(lengths, weights=weights, k=n)
    return [min(x, max_length) if max_length else x for x in drawn]


# --- padding-free batches -----------------------------------------------------------------------

class FlatSpanCollator:
    """``DataCollatorWithFlattening`` (input ids, labels, restarting position ids) plus the spans
    ``losses.span_losses`` needs; counts tokens like ``train.SpanCollator`` (none is padding)."""

    def __init__(self) -> None:
        from transformers import DataCollatorWithFlattening

        self.flatten = DataCollatorWithFlattening(return_tensors="pt")
        self.real_tokens = self.processed_tokens = 0
        self.per_batch: list[int] = []

    def __call__(self, features: Sequence[dict]) -> dict[str, Any]:
        import torch

        batch = self.flatten([{"input_ids": f["input_ids"], "labels": f["labels"]} for f in features])
        batch["spans"] = torch.tensor([[s for f in features for s in f["spans"]]], dtype=torch.long)
        n = int(batch["input_ids"].numel())
        self.real_tokens += n
        self.processed_tokens += n
        self.per_batch.append(n)
        return batch


class CountingCollator:
    """``train.SpanCollator`` that also keeps the real tokens of every batch, in order."""

    def __init__(self, pad_id: int) -> None:
        from radis_utils.train import SpanCollator

        self.inner = SpanCollator(pad_id)
        self.per_batch: list[int] = []

    def __call__(self, features: Sequence[dict]) -> dict[str, Any]:
        before = self.inner.real_tokens
        batch = self.inner(features)
        self.per_batch.append(self.inner.real_tokens - before)
        return batch

    @property
    def real_tokens(self) -> int:
        return self.inner.real_tokens

    @property
    def processed_tokens(self) -> int:
        return self.inner.processed_tokens


def padding_free_attention(cuda: bool) -> tuple[str | None, str]:
    """The attention kernel for padding-free batches and why: flash-attention 2 (varlen) on a GPU
    when importable, else sdpa where transformers builds the block-diagonal mask from restarting
    position ids, else ``None`` (the row is skipped)."""
    import importlib.util

    if cuda and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2", "flash-attention 2 varlen kernels"
    try:
        from transformers.masking_utils import find_packed_sequence_indices  # noqa: F401
    except ImportError:
        return None, "no flash-attn, and this transformers cannot mask packed sequences for sdpa"
    why = "flash-attn is not installed: " if cuda else ""
    return "sdpa", why + "sdpa with the block-diagonal mask transformers builds from the position ids"


def compare(model: Any, cfg: Any, lengths: Sequence[int], vocab: int, pad_id: int, workdir: Path, device: str,
            warmup: int = 2, modes: Sequence[str] = MODES) -> dict[str, dict[str, Any]]:
    """Real tokens/s of one epoch over conversations of ``lengths`` in each of ``modes`` (same model).

    One untimed warm-up of ``warmup`` steps first; then every step of each epoch is timed. The
    padded modes batch through ``SpanTrainer``'s own sampler (random or ``group_by_length``).
    """
    from benchmarks.lora_step import run_steps, varied_features
    features = varied_features(lengths, vocab, seed=1)
    batch = cfg.train.per_device_batch
    steps = math.ceil(len(features) / batch)
    out: dict[str, dict[str, Any]] = {}
    grouped_cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, group_by_length=True))
    random_cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, group_by_length=False))
    if warmup:
        run_steps(model, random_cfg, features[: batch * warmup], CountingCollator(pad_id), warmup, 0, workdir, device)
    for mode in modes:
        collator = FlatSpanCollator() if mode == "padding_free" else CountingCollator(pad_id)
        run_cfg = grouped_cfg if mode == "grouped" else random_cfg
        measured = run_steps(model, run_cfg, features, collator, steps, 0, workdir, device)
        for key in ("tokens_per_s", "tokens_per_step"):  # rows of one length only; here real tokens count
            measured.pop(key)
        real = sum(collator.per_batch[:steps])
        measured.update(real_tokens=real, processed_tokens=collator.processed_tokens,
                        token_efficiency=round(collator.real_tokens / max(collator.processed_tokens, 1), 4),
                        real_tokens_per_s=round(real / measured["seconds"], 1))
        out[mode] = measured
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-lengths", action="store_true", help=f"count ALMA's lengths into {LENGTHS_FILE.name}")
    parser.add_argument("--alma-dir", default=None, help="default: the profile's data.alma_dir")
    parser.add_argument("--out", default=str(LENGTHS_FILE))
    args = parser.parse_args(argv)
    if not args.write_lengths:
        parser.error("the comparison runs inside `python -m benchmarks.gpu`; this command only has --write-lengths")
    table = write_length_table(args.alma_dir, Path(args.out), argv=argv)
    print(f"wrote {args.out}: {table['conversations']:,} conversations, "
          f"{min(map(int, table['counts']))}-{max(map(int, table['counts']))} tokens")
    return table


if __name__ == "__main__":
    main()
