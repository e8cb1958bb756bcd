"""One trainer for the four methods (paper §4.1, appendix B): vanilla, Seq-KD, SDFT and RaDis.

Every method is the same causal-LM fine-tuning with the same LoRA; only the assistant turns
differ (``training_items``):

| method  | responses trained on                                     | regulariser (``reg_loss``)   |
| ------- | -------------------------------------------------------- | ---------------------------- |
| vanilla | the reference ``y``                                      | none                         |
| seqkd   | ``y`` and, as extra examples, the backbone's own ``y'``  | the loss on ``y'`` examples  |
| sdft    | the backbone's rewrite ``ỹ`` of ``y``                    | none (``ỹ`` replaces ``y``)  |
| radis   | ``y ⊕ r``, with ``r`` the backbone's own continuation    | the loss on ``r`` (eq. 4)    |

The training loop is Hugging Face's ``Trainer`` (cosine schedule, warmup, gradient
accumulation, bf16/fp16, gradient checkpointing, checkpoints, DDP/FSDP/DeepSpeed under
``accelerate launch``); ``SpanTrainer`` only swaps in the span-labelled loss of
``radis_utils.losses`` and logs its two terms. Adapters land in
``runs/<profile>/adapters/<method>-seed<k>/``; ``summary.json`` is written last, so its
presence means "finished" and a re-run loads instead of training. Resume is exact and checked
(``radis_utils.checkpoints``: seeded length-grouped order, settings and sessions in every
checkpoint), and one process at a time trains into a folder (``records.exclusive``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from . import data as data_mod
from . import models, synthesis
from .checkpoints import last_checkpoint, merge_sessions, resume_point, step_of  # noqa: F401  (last_checkpoint: re-exported)
from .config import ENGINE_MEMORY, METHODS, Config, ConfigError, load_profile
from .losses import REFERENCE, RATIONALE, Tokenized, collate, tokenize_example
from .replies import seqkd_rule, split_reply
from .records import exclusive, read_json, read_records, settings_diff, write_json
from .runtime import apply_runtime, lazy_names, model_device, versions

#: The synthesis target each method needs (vanilla needs none).
SYNTHESIS_KIND = {"radis": "rationale", "seqkd": "seqkd", "sdft": "sdft"}


class TrainingError(ValueError):
    """A training request that cannot run as asked (the message says what to do)."""


@dataclass(frozen=True)
class TrainItem:
    """One conversation to train on: user turn, response (``reference`` ⊕ ``rationale``)."""

    id: str
    direction: str
    instruction: str
    reference: str
    rationale: str = ""
    regulariser: bool = False  # Seq-KD's own-translation examples: their loss is the reg term


# --- data per method ------------------------------------------------------------------------

def check_method(method: str) -> None:
    """Raise ``TrainingError`` unless ``method`` is one of the four."""
    if method not in METHODS:
        raise TrainingError(f"method {method!r} unknown; choose one of: {', '.join(METHODS)}")


def synthesized(cfg: Config, method: str, examples: Sequence[Any], source: str | None = None) -> dict[str, dict]:
    """The synthesis records ``method`` needs, by example id; a clear error if missing or partial."""
    path = synthesis.records_path(cfg, SYNTHESIS_KIND[method], source)
    if not path.is_file():
        raise TrainingError(
            f"{path} not found: {method} trains on synthesised {SYNTHESIS_KIND[method]} targets. "
            f"Run chapter 03 (notebooks/03_synthesis.ipynb, PROFILE={cfg.profile!r}) or "
            f"synthesis.synthesize_for_profile(cfg, {SYNTHESIS_KIND[method]!r}, examples) first.")
    by_id = {r["id"]: r for r in read_records(path)}
    missing = [e.id for e in examples if e.id not in by_id]
    if missing:
        raise TrainingError(f"{path}: {len(missing)} of {len(examples)} examples have no record "
                            f"(first: {missing[0]}); re-run the synthesis to finish the file")
    for e in examples:  # a record answers its example: edited data or instructions are refused
        fields = ("instruction", "source", "reference")
        diff = settings_diff({f: by_id[e.id][f] for f in fields}, {f: getattr(e, f) for f in fields})
        if diff:
            raise TrainingError(f"{path}: the record of {e.id} answers another example ({'; '.join(diff)}); "
                                f"the data or instructions changed since the synthesis: delete {path} and "
                                "run the synthesis again")
    return by_id


def training_items(cfg: Config, method: str, examples: Sequence[Any] | None = None,
                   source: str | None = None) -> tuple[list[TrainItem], dict[str, int]]:
    """The conversations ``method`` trains on, and counts (empty rationales, empty ``y'``).

    ``source`` picks the synthesis folder (another model's rationales, chapter 07).
    """
    check_method(method)
    examples = list(data_mod.training_examples(cfg) if examples is None else examples)
    counts = {"examples": len(examples), "empty_rationales": 0, "empty_own": 0}
    base = [TrainItem(e.id, e.direction, e.instruction, e.reference) for e in examples]
    if method == "vanilla":
        return base, counts
    recs = synthesized(cfg, method, examples, source)
    if method == "radis":
        items = [TrainItem(e.id, e.direction, e.instruction, e.reference, recs[e.id]["text"]) for e in examples]
        counts["empty_rationales"] = sum(not i.rationale.strip() for i in items)
        return items, counts
    if method == "sdft":
        return [TrainItem(e.id, e.direction, e.instruction, recs[e.id]["text"]) for e in examples], counts
    own = [(e, split_reply(recs[e.id]["text"], seqkd_rule(cfg))[0]) for e in examples]
    counts["empty_own"] = sum(not y.strip() for _, y in own)
    extra = [TrainItem(f"{e.id}#own", e.direction, e.instruction, y, regulariser=True) for e, y in own if y.strip()]
    return base + extra, counts


def effective_batch(cfg: Config, method: str) -> int:
    """Examples per optimizer step: Seq-KD's is doubled (app. B: 256 vs 128) to keep the step count."""
    double = method == "seqkd" and cfg.train.seqkd_double_batch
    return cfg.train.effective_batch * (2 if double else 1)


def tokenize_items(tokenizer: Any, items: Sequence[TrainItem], max_length: int) -> tuple[list[dict], dict[str, int]]:
    """Span-labelled features; counts examples dropped (prompt + ``y`` too long) and truncated."""
    features, dropped, truncated = [], 0, 0
    for item in items:
        try:
            tok = tokenize_example(tokenizer, item.instruction, item.reference, item.rationale, max_length)
        except ValueError as err:
            raise TrainingError(f"training example {item.id!r}: {err}") from err
        if tok is None:
            dropped += 1
            continue
        truncated += tok.truncated
        spans = [RATIONALE if item.regulariser and s == REFERENCE else s for s in tok.spans]
        features.append({"input_ids": tok.input_ids, "labels": tok.labels, "spans": spans})
    return features, {"dropped_too_long": dropped, "truncated_rationales": truncated}


class SpanCollator:
    """Batches features with ``losses.collate`` and counts real vs processed tokens."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id
        self.real_tokens = 0
        self.processed_tokens = 0

    def __call__(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        batch = collate([Tokenized(f["input_ids"], f["labels"], f["spans"]) for f in features], self.pad_id)
        self.real_tokens += int(batch["attention_mask"].sum())
        self.processed_tokens += batch["attention_mask"].numel()
        return batch


def check_one_process_per_gpu(visible_gpus: int | None = None) -> None:
    """Refuse one process that sees several GPUs: transformers' Trainer would wrap the model in
    ``nn.DataParallel`` and feed it per-device batch × GPUs rows a step (the effective batch
    silently multiplied; a 4-bit model all on GPU 0). ``accelerate launch`` runs one process per
    GPU; ``CUDA_VISIBLE_DEVICES`` pins a single one."""
    import torch

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return
    gpus = torch.cuda.device_count() if visible_gpus is None else visible_gpus
    if gpus > 1:
        raise ConfigError(
            f"this one process sees {gpus} GPUs: launch one process per GPU with `accelerate launch "
            f"--config_file configs/accelerate/ddp.yaml -m radis_utils.train ...` (or "
            f"`accelerate launch --num_processes {gpus} ...`), or pin one GPU with CUDA_VISIBLE_DEVICES=0")


def accumulation_steps(cfg: Config, method: str = "vanilla") -> int:
    """Micro-batches per optimizer step so that per-device batch × devices × steps = effective
    batch (devices: ``WORLD_SIZE``; ``check_one_process_per_gpu`` refuses one process over many GPUs)."""
    check_one_process_per_gpu()
    devices = int(os.environ.get("WORLD_SIZE", "1"))
    per_step = cfg.train.per_device_batch * devices
    batch = effective_batch(cfg, method)
    if batch % per_step:
        raise ConfigError(f"train.effective_batch ({batch} for {method}) is not a multiple of "
                          f"per_device_batch × devices ({cfg.train.per_device_batch} × {devices})")
    return batch // per_step


def training_arguments(cfg: Config, out_dir: Path, seed: int, method: str = "vanilla", **overrides: Any) -> Any:
    """The profile's ``TrainingArguments`` for ``method`` (``trainer.training_arguments`` with
    this method's ``accumulation_steps``)."""
    from .trainer import training_arguments as arguments

    return arguments(cfg, out_dir, seed, accumulation_steps(cfg, method), **overrides)


#: Names that live in ``radis_utils.trainer`` (the Trainer stack), reachable as ``train.<name>``.
_TRAINER_NAMES = ("SpanTrainer", "save_adapter")  # what callers reach through ``train``
__getattr__ = lazy_names(__name__, {name: "radis_utils.trainer" for name in _TRAINER_NAMES})


# --- one run -------------------------------------------------------------------------------

def adapter_dir(cfg: Config, method: str, seed: int, tag: str = "") -> Path:
    """``runs/<profile>/adapters/<method>[-<tag>]-seed<k>/``."""
    return cfg.runs_dir / "adapters" / f"{method}{'-' + tag if tag else ''}-seed{seed}"


def train_key(cfg: Config, method: str, seed: int, source: str | None) -> dict[str, Any]:
    """What a finished adapter depends on: compared before a cached adapter is reused."""
    d = cfg.to_dict()
    for section, name in ENGINE_MEMORY:  # they size an engine, never change its output
        d[section].pop(name, None)
    source = source or synthesis.records_path(cfg, "rationale").parent.name  # organism: with its hash
    key = {"method": method, "seed": seed, "rationale_source": source,
           **{k: d[k] for k in ("model", "data", "prompts", "synthesis", "train", "organism") if k in d}}
    return json.loads(json.dumps(key))  # as it reads back from summary.json


def read_summary(out: Path) -> dict[str, Any] | None:
    """The finished run's ``summary.json``, or ``None`` if the run has not finished."""
    path = out / "summary.json"
    return read_json(path) if path.is_file() else None


def train(cfg: Config, method: str, seed: int = 0, examples: Sequence[Any] | None = None,
          source: str | None = None, tag: str = "", callbacks: Sequence[Any] = (),
          verbose: bool = False, **overrides: Any) -> Path:
    """Train (or load, if finished with the same settings) one adapter; returns its folder.

    An interrupted run resumes from its last checkpoint. ``verbose`` prints every log line
    (the CLI does); ``overrides`` go to ``TrainingArguments``.
    """
    check_method(method)
    out = adapter_dir(cfg, method, seed, tag)
    key = train_key(cfg, method, seed, source)
    done = read_summary(out)
    if done is not None:
        diff = settings_diff(done.get("key"), key)
        if diff:
            raise TrainingError(f"{out}/summary.json was trained with other settings ({'; '.join(diff[:6])}); "
                                f"delete {out} to retrain, or pass another tag")
        name_base(out)  # an adapter saved before bases were named absolutely
        return out
    if int(os.environ.get("RANK", "0")) != 0:  # one lock per run: held by the main process
        return _train(cfg, method, seed, out, key, examples, source, callbacks, verbose, overrides)
    with exclusive(out / "training", f"the {method} seed {seed} training run"):
        return _train(cfg, method, seed, out, key, examples, source, callbacks, verbose, overrides)


def _train(cfg: Config, method: str, seed: int, out: Path, key: dict[str, Any], examples: Sequence[Any] | None,
           source: str | None, callbacks: Sequence[Any], verbose: bool,
           overrides: dict[str, Any]) -> Path:
    """``train`` past its cache check (under the folder's lock)."""
    last, sessions = resume_point(out / "checkpoints", key)
    items, counts = training_items(cfg, method, examples, source)
    # the arguments first: under `accelerate launch` they start the process group, which FSDP's
    # low-memory loading (rank 0 reads the weights, the others wait on the meta device) needs
    args = training_arguments(cfg, out, seed, method, **overrides)
    model, tokenizer = models.load_backbone(cfg)
    features, tok_counts = tokenize_items(tokenizer, items, cfg.train.max_length)
    if not features:
        raise TrainingError(f"no {method} example fits train.max_length={cfg.train.max_length}")
    torch.manual_seed(seed)  # the LoRA initialisation
    model = models.add_lora(cfg, model)
    parameters = models.trainable_parameters(model)  # before FSDP flattens and shards them per rank
    collator = SpanCollator(tokenizer.pad_token_id)
    from . import trainer as tr  # the Trainer stack (peft, bitsandbytes): only when a run trains

    ledger = tr.Ledger(key, sessions, step_of(last))
    trainer = tr.SpanTrainer(model=model, args=args, train_dataset=features, data_collator=collator,
                             callbacks=[tr.ProgressBar(f"train {method} seed {seed}"), ledger, tr.KeepMidpoint(out),
                                        *callbacks],
                             rationale_weight=cfg.train.rationale_weight, logits_on_labels=cfg.train.logits_on_labels,
                             group_seed=seed if cfg.train.group_by_length else None)
    ledger.counters = trainer.session_counters
    if not verbose:
        trainer.remove_callback(tr.PrinterCallback)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer.train(resume_from_checkpoint=str(last) if last else None)
    tr.save_adapter(trainer, tokenizer, out)  # every process: under FSDP the gather is collective
    session = ledger.session(trainer.state.global_step)  # every process: tokens and losses summed over ranks
    if trainer.is_world_process_zero():
        if cfg.train.merge:  # from the saved adapter: the trained model stays as it is
            models.load_adapter(cfg, out, merge=True).save_pretrained(out / "merged")
            tokenizer.save_pretrained(out / "merged")
        summary = {
            "key": key, "method": method, "seed": seed, "profile": cfg.profile,
            "config_hash": models.config_hash(cfg), "features": len(features), **counts, **tok_counts,
            "parameters": parameters,
            "steps": trainer.state.global_step, "resumed_from_step": step_of(last),
            "processes": args.world_size, "gradient_accumulation_steps": args.gradient_accumulation_steps,
            "effective_batch": effective_batch(cfg, method),
            **merge_sessions([*sessions, session]),
            "peak_memory_gib": round(peak_memory_bytes() / 2**30, 3), "device": model_device(trainer.model),
            "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
            "log": [e for e in trainer.state.log_history if "loss" in e or "train_loss" in e],
            "versions": versions(),
        }
        write_json(out / "summary.json", summary)
        keep_last_checkpoint(out / "checkpoints")
    return out


def keep_last_checkpoint(folder: Path) -> None:
    """A finished run needs no checkpoint to resume from: keep only its last (its Adam state is
    chapter 08's end of training; the midpoint is copied apart), about half the adapter folder."""
    import shutil

    last = last_checkpoint(folder)
    for old in folder.glob("checkpoint-*") if last is not None else ():
        if old != last:
            shutil.rmtree(old, ignore_errors=True)


def name_base(out: Path) -> None:
    """Rewrite ``<out>/adapter_config.json`` if its base is not named as ``models.base_reference`` names it."""
    config_file = out / "adapter_config.json"
    if not config_file.is_file():
        return
    config = read_json(config_file)
    named = models.base_reference(config.get("base_model_name_or_path"))
    if named != config.get("base_model_name_or_path"):
        write_json(config_file, {**config, "base_model_name_or_path": named})


def peak_memory_bytes() -> int:
    """Peak GPU memory allocated (CUDA), else the process's peak resident memory."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated()
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def train_log(out: Path) -> list[dict[str, Any]]:
    """Per-logging-step ``loss``, ``mt_loss``, ``reg_loss``, ``learning_rate`` of a finished run."""
    summary = read_summary(out)
    if summary is None:
        raise TrainingError(f"{out}: no summary.json; the run has not finished")
    return [e for e in summary["log"] if "loss" in e]


# --- CLI (works under `accelerate launch`) ----------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """``python -m radis_utils.train --profile a100 --method radis --seed 0`` (or ``accelerate launch -m ...``)."""
    ap = argparse.ArgumentParser(prog="python -m radis_utils.train", description=main.__doc__)
    ap.add_argument("--profile", default="ci")
    ap.add_argument("--method", action="append", choices=METHODS,
                    help="repeat for several; default: the profile's train.methods")
    ap.add_argument("--seed", type=int, action="append", help="default: the profile's train.seeds")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION__KEY=VALUE",
                    help="override a profile value, e.g. --set train__max_steps=100")
    args = ap.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--set {item!r}: expected SECTION__KEY=VALUE")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value  # a plain string, e.g. --set model__backbone=/path/to/model
    cfg = load_profile(args.profile, **overrides)
    apply_runtime(cfg)
    for seed in args.seed or list(cfg.train.seeds):
        for method in args.method or list(cfg.train.methods):
            print(f"{method} seed {seed} -> {train(cfg, method, seed, verbose=True)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
