"""The Hugging Face trainer stack behind ``train``: imported only when a run trains.

Importing Transformers' ``Trainer`` loads peft and bitsandbytes (~5 s on these CPUs), so
everything that subclasses its classes lives here and ``radis_utils.train`` imports this module
inside the functions that train. Every chapter can import ``train`` and ``checkpoints`` to read
adapters, summaries and checkpoints without paying for it.

- ``SpanTrainer``: ``Trainer`` with the span-labelled loss of ``radis_utils.losses`` and its two
  logged terms; ``training_arguments`` builds its arguments from the profile;
- ``SeededLengthGroupedSampler``, ``Ledger``, ``KeepMidpoint``: exact resume and the midpoint copy
  (``radis_utils.checkpoints`` explains them);
- ``ProgressBar``, ``save_adapter``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import torch
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments  # noqa: F401  (PrinterCallback: for train)
from transformers.trainer_pt_utils import LengthGroupedSampler, get_length_grouped_indices

from . import models
from .checkpoints import LEDGER, MIDPOINT, session_entry
from .config import Config
from .losses import span_losses
from .records import read_json, write_json
from .runtime import progress


# --- exact resume (radis_utils.checkpoints) ---------------------------------------------------

class SeededLengthGroupedSampler(LengthGroupedSampler):
    """Length-grouped indices (mega-batches sorted by length) from a generator seeded per epoch."""

    def __init__(self, batch_size: int, lengths: Sequence[int], seed: int) -> None:
        super().__init__(batch_size, lengths=list(lengths))
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Called by the Trainer (through accelerate) before each epoch, also a resumed one."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator()
        generator.manual_seed((self.seed * 1_000_003 + self.epoch) % 2**63)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=generator))



class Ledger(TrainerCallback):
    """Writes ``radis_run.json`` (key, earlier sessions, this session so far) into each checkpoint.

    ``counters()`` (set once the trainer exists) returns this session's running totals, summed over
    processes; ``session`` calls it, so every rank calls ``session`` (a collective).
    """

    def __init__(self, key: Mapping[str, Any], earlier: Sequence[dict], first_step: int) -> None:
        self.key, self.earlier, self.first_step = dict(key), list(earlier), first_step
        self.counters: Any = dict
        self.start = time.time()

    def session(self, last_step: int) -> dict[str, Any]:
        """This session up to ``last_step``."""
        return session_entry(self.first_step, last_step, time.time() - self.start, self.counters())

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        entry = self.session(state.global_step)  # every rank: the counters are summed over processes
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            write_json(folder / LEDGER, {"key": self.key, "sessions": [*self.earlier, entry]})


class KeepMidpoint(TrainerCallback):
    """Saves a checkpoint at step ``max_steps // 2`` and copies it to ``<out>/midpoint/checkpoint-N``.

    Saving reads the state and draws no random number, so the run's trajectory is unchanged. Add it
    after ``Ledger`` so the copy holds the ledger; the copy is atomic (a temporary folder renamed).
    """

    def __init__(self, out: Path) -> None:
        self.out = Path(out)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if state.global_step == state.max_steps // 2:
            control.should_save = True
        if control.should_save:  # a log entry at every checkpoint: a run resumed there averages its
            control.should_log = True  # next entry over the same steps as one never stopped
        return control

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero and state.global_step == state.max_steps // 2:
            self.keep(Path(args.output_dir) / f"checkpoint-{state.global_step}")

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """A run killed while its midpoint was being copied resumes from that very checkpoint and
        never saves it again: copy it now (a stale temporary copy is replaced)."""
        source = Path(args.output_dir) / f"checkpoint-{state.max_steps // 2}"
        if state.is_world_process_zero and state.max_steps and (source / LEDGER).is_file():
            self.keep(source)

    def keep(self, source: Path) -> None:
        """Copy ``source`` to ``<out>/midpoint/`` unless it is there (a temporary folder, renamed)."""
        target = self.out / MIDPOINT / source.name
        if target.is_dir():
            return
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(source, tmp)
        tmp.rename(target)



# --- the trainer ---------------------------------------------------------------------------

class SpanTrainer(Trainer):
    """``Trainer`` whose loss is ``losses.span_losses`` and whose logs add ``mt_loss``/``reg_loss``.

    The loss of a micro-batch is the mean over its learned tokens (the ordinary CLM loss);
    the Trainer divides it by the accumulation steps.
    """

    def __init__(self, *args: Any, rationale_weight: float = 1.0, group_seed: int | None = None,
                 logits_on_labels: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rationale_weight, self.logits_on_labels = rationale_weight, logits_on_labels
        self.group_seed = group_seed  # not None: length-grouped batches in a seeded order
        self.model_accepts_loss_kwargs = False  # our loss is a per-micro-batch mean
        self._span_sums = torch.zeros(4, dtype=torch.float64)
        self._session = torch.zeros(3, dtype=torch.float64)  # this session: loss sum, real/processed tokens
        self._micro_batches = 0

    def _get_train_sampler(self, *args: Any, **kwargs: Any) -> Any:
        """The seeded length-grouped sampler (both transformers lines call this with or without the dataset)."""
        if self.group_seed is None:
            return super()._get_train_sampler(*args, **kwargs)
        dataset = args[0] if args else kwargs.get("train_dataset") or self.train_dataset
        return SeededLengthGroupedSampler(self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                          [len(f["input_ids"]) for f in dataset], self.group_seed)

    def compute_loss(self, model: Any, inputs: dict[str, torch.Tensor], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        out = span_losses(model, inputs, self.rationale_weight, self.logits_on_labels)
        self._span_sums += torch.stack([out["mt_sum"], out["mt_tokens"], out["rationale_sum"],
                                        out["rationale_tokens"]]).detach().double().cpu()
        ids = inputs["input_ids"]  # a padding-free (flattened) batch has no attention mask: every token is real
        real = inputs["attention_mask"].sum() if "attention_mask" in inputs else torch.tensor(ids.numel())
        self._session += torch.stack([out["total_mean"].detach().float().cpu(), real.float().cpu(),
                                      torch.tensor(float(ids.numel()))]).double()
        self._micro_batches += 1
        return (out["total_mean"], out) if return_outputs else out["total_mean"]

    def session_counters(self) -> dict[str, float]:
        """This session's loss sum, micro-batches and tokens (those trained on, not prefetched),
        summed over every process: a collective, so every rank must call it (``Ledger`` does)."""
        local = torch.cat([self._session, torch.tensor([float(self._micro_batches)], dtype=self._session.dtype)])
        summed = self.accelerator.reduce(local.to(self.accelerator.device), reduction="sum")
        loss_sum, real, processed, batches = summed.cpu().tolist()
        return {"loss_sum": loss_sum, "micro_batches": batches, "real_tokens": real, "processed_tokens": processed}

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if "loss" in logs:
            mt, mt_n, reg, reg_n = self._span_sums.tolist()
            logs["mt_loss"] = round(mt / mt_n, 4) if mt_n else None
            logs["reg_loss"] = round(reg / reg_n, 4) if reg_n else None
            self._span_sums.zero_()
        super().log(logs, *args, **kwargs)


class ProgressBar(TrainerCallback):
    """One ``runtime.progress`` bar over optimizer steps (quiet under ``RADIS_QUIET=1``)."""

    def __init__(self, desc: str) -> None:
        self.desc, self.bar = desc, None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.bar = progress(desc=self.desc, total=state.max_steps, initial=state.global_step, unit="step")

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.close()


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX): only there does bf16 autocast pay."""
    return any(getattr(torch.cpu, check, lambda: False)() for check in ("_is_avx512_bf16_supported",
                                                                        "_is_amx_tile_supported"))


def precision_flags(requested: str) -> dict[str, bool]:
    """``bf16``/``fp16`` flags for ``TrainingArguments`` where the device supports them, else fp32.
    On a CPU, ``bf16`` is autocast when the CPU has bf16 instructions (``cpu_has_bf16``); fp16 never."""
    cuda = torch.cuda.is_available()
    if requested == "bf16" and (torch.cuda.is_bf16_supported() if cuda else cpu_has_bf16()):
        return {"bf16": True}
    if requested in ("bf16", "fp16") and cuda:
        return {"fp16": True}
    return {}


def training_arguments(cfg: Config, out_dir: Path, seed: int, accumulation: int, **overrides: Any) -> TrainingArguments:
    """The profile's ``TrainingArguments`` with ``accumulation`` micro-batches per optimizer step
    (``train.accumulation_steps``); works on the transformers 4.x and 5.x lines."""
    t = cfg.train
    kwargs: dict[str, Any] = dict(
        output_dir=str(out_dir / "checkpoints"), seed=seed, data_seed=seed,
        num_train_epochs=t.epochs, max_steps=t.max_steps or -1, learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler, warmup_ratio=t.warmup_ratio,
        per_device_train_batch_size=t.per_device_batch, gradient_accumulation_steps=accumulation,
        logging_steps=t.logging_steps, save_strategy="steps", save_steps=t.save_steps, save_total_limit=2,
        report_to=[], remove_unused_columns=False, ddp_find_unused_parameters=False,
        disable_tqdm=True, dataloader_num_workers=0, dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(),  # also makes `accelerate launch` on CPU data-parallel (gloo)
        **precision_flags(t.precision))
    fields = TrainingArguments.__dataclass_fields__
    if t.gradient_checkpointing and cfg.model.quantization is None:  # QLoRA: set by models.add_lora
        kwargs.update(gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": False})
    if t.group_by_length:  # 5.x: a sampling strategy; 4.x: a flag
        kwargs.update({"train_sampling_strategy": "group_by_length"} if "train_sampling_strategy" in fields
                      else {"group_by_length": True})
    if "warmup_ratio" not in fields:
        kwargs["warmup_steps"] = kwargs.pop("warmup_ratio")  # a float < 1 is a ratio on 5.x
    kwargs.update(overrides)
    return TrainingArguments(**kwargs)


def save_adapter(trainer: Any, tokenizer: Any, out: Path) -> None:
    """Write the adapter to ``out``; call on every process (PEFT's FSDP recipe).

    Under FSDP the adapter is gathered as a full state dict (a collective every rank joins),
    then written once by the main process; it names a local base by its absolute path (``models.base_reference``).
    """
    if trainer.is_fsdp_enabled:
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(out)
        config_file = out / "adapter_config.json"
        config = read_json(config_file)
        config["base_model_name_or_path"] = models.base_reference(config.get("base_model_name_or_path"))
        write_json(config_file, config)
