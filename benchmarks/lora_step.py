"""Throughput, MFU and peak memory of LoRA / QLoRA training steps at the paper's model shapes.

    python -m benchmarks.lora_step --arch tiny                                  # CPU, seconds
    python -m benchmarks.lora_step --arch llama2_7b --batch 16 --seq 512        # a100 profile, 1 GPU
    python -m benchmarks.lora_step --arch mistral_7b_v02 --batch 16 --seq 512 --grad-ckpt
    python -m benchmarks.lora_step --arch mistral_7b_v02 --qlora --seq 512      # qlora profile: batch 8

A model with random weights is built from ``benchmarks/archs/<arch>.json`` (the published
config.json; nothing is downloaded), wrapped by the project's ``models.add_lora`` with the
profile's LoRA (a100: bf16 LoRA r=16 on all linear layers; ``--qlora``: the qlora profile,
4-bit nf4 with double quantization and gradient checkpointing, loaded through
``models.load_model``), and trained for ``--warmup + --steps`` optimizer steps by the project's
``train.SpanTrainer`` with ``train.training_arguments`` on synthetic span-labelled rows
(prompt / reference / rationale thirds, no padding). Only the steps after the warm-up are timed.

Model FLOPs per trained token of a LoRA step (the figure MFU is computed from)::

    FLOPs/token ≈ 4·N + 6·N_lora + 12·L·h·s

``N``: weights of the matrix multiplies (attention, MLP, LM head; embeddings are a lookup),
``N_lora``: adapter weights, ``L`` layers, ``h`` hidden size, ``s`` sequence length. Full
fine-tuning's ``6·N`` is wrong for LoRA: the frozen weights do the forward (2·N) and the
gradient with respect to their inputs (2·N) but no weight gradient; the adapters do all three
(6·N_lora); attention scores and values cost 4·L·h·s forward and twice that backward. Gradient
checkpointing recomputes the forward (hardware FLOPs grow by ~2·N) but, by convention, model
FLOPs and MFU do not count it. ``MFU = tokens/s × FLOPs/token / peak bf16 dense FLOP/s``.

Without a GPU a 7B architecture is built on the ``meta`` device: parameter counts and FLOPs per
token are exact, throughput, MFU and memory are recorded as "not measured". A record goes to
``benchmarks/records/lora_step-<arch>-<variant>-b<batch>-s<seq>-<device>.json``.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from radis_utils import memory

from benchmarks.common import (NO_GPU, arch_config, arch_names, command_line, figure, lora_flops_per_token,
                               lora_parameters, make_record, matmul_parameters, print_figures, random_model,
                               write_record)

#: Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) by device-name pattern, first match wins.
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    (r"H200.*NVL", 835.0), (r"H200", 989.0), (r"H100.*PCIe", 756.0), (r"H100.*NVL", 835.0), (r"H100", 989.0),
    (r"A100", 312.0), (r"L40S", 362.0), (r"\bL4\b", 121.0),
)
CPU_MAX_PARAMS = 2e9  # larger architectures are only built on a GPU (else on `meta`)


def peak_tflops(device: str) -> float | None:
    """The bf16 dense peak of a GPU named ``device`` (``None`` when unknown or a CPU)."""
    return next((v for pattern, v in PEAK_BF16_TFLOPS if re.search(pattern, device)), None)


def synthetic_features(n: int, seq: int, vocab: int, seed: int = 0) -> list[dict[str, list[int]]]:
    """``n`` rows of ``seq`` random tokens: a prompt, reference and rationale third each."""
    return varied_features([seq] * n, vocab, seed)


def varied_features(lengths: Sequence[int], vocab: int, seed: int = 0) -> list[dict[str, list[int]]]:
    """One row of random tokens per length: a prompt, reference and rationale third each."""
    import torch

    from radis_utils.losses import IGNORE, PROMPT, RATIONALE, REFERENCE

    g = torch.Generator().manual_seed(seed)
    rows = []
    for seq in lengths:
        ids = torch.randint(3, vocab, (seq,), generator=g).tolist()
        third = seq // 3
        spans = [PROMPT] * max(third, 1) + [REFERENCE] * third + [RATIONALE] * (seq - max(third, 1) - third)
        rows.append({"input_ids": ids, "spans": spans,
                     "labels": [IGNORE if s == PROMPT else t for t, s in zip(ids, spans)]})
    return rows


def build_model(arch: str, cfg: Any, device: str, workdir: Path, folder: Path | None = None) -> Any:
    """Random weights from the architecture file, in the profile's dtype (4-bit via ``models.load_model``).

    A 4-bit model is quantized on load from a saved bf16 copy, exactly as a real backbone is
    loaded; ``folder`` (default ``workdir/random-weights``) is reused when it already holds one.
    """
    import torch

    from radis_utils import models

    if cfg.model.quantization is None or device == "meta":
        return random_model(arch, models.torch_dtype(cfg), device, cfg.model.attn_implementation)
    folder = folder or workdir / "random-weights"
    if not (folder / "config.json").is_file():
        model = random_model(arch, models.torch_dtype(cfg), device)
        model.save_pretrained(folder)
        del model
        if device == "cuda":
            torch.cuda.empty_cache()
    return models.load_model(cfg, str(folder), **({"device_map": {"": 0}} if device == "cuda" else {}))


class StepTimer:
    """Wall-clock time of every optimizer step (GPU synchronised at both ends)."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        timer = self

        class _Callback(TrainerCallback):
            def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                timer._sync()
                timer._start = time.perf_counter()

            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                timer._sync()
                timer.seconds.append(time.perf_counter() - timer._start)

        self.seconds: list[float] = []
        self._start = 0.0
        self.callback = _Callback()

    @staticmethod
    def _sync() -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()


def run_steps(model: Any, cfg: Any, features: Sequence[dict], collator: Any, steps: int, warmup: int,
              workdir: Path, device: str) -> dict[str, Any]:
    """Train ``warmup + steps`` optimizer steps with ``SpanTrainer``; tokens/s over the timed ones.

    ``tokens_per_s`` counts every token of the timed batches (padding too: the rows of the
    step benchmark have one length); the collator's own counts say how many were real.
    """
    import torch
    from transformers import PrinterCallback

    from radis_utils import train

    timer = StepTimer()
    on_cpu = {"use_cpu": True, "bf16": False, "fp16": False, "dataloader_pin_memory": False}
    args = train.training_arguments(cfg, workdir, seed=0, max_steps=steps + warmup, save_strategy="no",
                                    logging_steps=10**6, **(on_cpu if device == "cpu" else {}))
    trainer = train.SpanTrainer(model=model, args=args, train_dataset=list(features), data_collator=collator,
                                callbacks=[timer.callback])
    trainer.remove_callback(PrinterCallback)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    timed = timer.seconds[warmup:]
    seconds = sum(timed)
    batch = cfg.train.per_device_batch
    width = max(len(f["input_ids"]) for f in features)
    return {"steps_timed": len(timed), "seconds": round(seconds, 4), "tokens_per_step": batch * width,
            "tokens_per_s": round(batch * width * len(timed) / seconds, 1),
            "peak_memory_gib": round(train.peak_memory_bytes() / 2**30, 3),
            "loss": round(trainer.state.log_history[-1].get("train_loss", float("nan")), 4)}


def step_config(qlora: bool, batch: int | None, seq: int, ckpt: bool, dtype: str, workdir: Path,
                **overrides: Any) -> Any:
    """The a100 (bf16 LoRA) or qlora profile at one batch × seq, one micro-batch per step."""
    from radis_utils.config import load_profile

    profile = "qlora" if qlora else "a100"
    batch = batch or load_profile(profile).train.per_device_batch
    return load_profile(profile, train__per_device_batch=batch, train__effective_batch=batch,
                        train__gradient_checkpointing=qlora or ckpt, train__max_length=seq,
                        model__dtype=dtype, runtime__runs_dir=str(workdir), **overrides)


def variant_of(cfg: Any) -> str:
    """``qlora``, ``lora-ckpt`` or ``lora``: the variant a record is named after."""
    if cfg.model.quantization:
        return "qlora"
    return "lora-ckpt" if cfg.train.gradient_checkpointing else "lora"


def prepare(arch: str, cfg: Any, device: str, workdir: Path, folder: Path | None = None) -> tuple[Any, dict[str, Any]]:
    """The LoRA-wrapped random model and its counts (total, adapter, 4-bit linear layers)."""
    from radis_utils import models

    model = build_model(arch, cfg, device, workdir, folder)
    quantized = cfg.model.quantization is not None and device != "meta"
    n_total = None if quantized else sum(p.numel() for p in model.parameters())
    model = models.add_lora(cfg, model)
    counts = {"parameters_total": n_total, "N_lora": models.trainable_parameters(model)["trainable"],
              "linear_4bit_modules": sum(type(m).__module__.startswith("bitsandbytes") for m in model.modules())}
    return model, counts


def step_record(arch: str, cfg: Any, device: str, counts: dict[str, Any], measured: dict[str, Any] | None,
                command: str, steps: int, warmup: int, peak: float | None, not_measured: str,
                **extra: Any) -> dict[str, Any]:
    """The ``lora_step`` record of one configuration (figures, settings, FLOPs, measurements)."""
    from radis_utils.runtime import device_name

    config = arch_config(arch)
    batch, seq, n_lora = cfg.train.per_device_batch, cfg.train.max_length, counts["N_lora"]
    qlora, variant = cfg.model.quantization is not None, variant_of(cfg)
    flops = lora_flops_per_token(config, n_lora, seq)
    dev = device_name()
    what = f"{arch}, {variant}, batch {batch} x seq {seq}"
    shape = memory.Shape.from_config(config.to_dict())
    estimate = memory.estimate(cfg, shape, memory.fit(cfg, shape), batch * seq)
    figures = [
        figure("N", f"{what}: matmul weights N", flops["N"], "parameters"),
        figure("N_lora", f"{what}: LoRA weights N_lora (r={cfg.train.lora_r}, all linear)", n_lora, "parameters",
               "" if n_lora == lora_parameters(config, cfg.train.lora_r) else "differs from the analytic count"),
        figure("static_memory_gib", f"{what}: weights + LoRA grads and Adam state (analytic, no activations)",
               round(memory.static_gib(shape, cfg.train.lora_r, qlora), 3), "GiB"),
        figure("estimated_peak_gib", f"{what}: peak memory the model of radis_utils.memory predicts "
               "(static + saved activations + loss transients, no allowance for the CUDA context)",
               round(estimate["total"] - estimate["overhead"], 3), "GiB"),
        figure("flops_per_token", f"{what}: model FLOPs per token 4N + 6N_lora + 12Lhs",
               float(flops["flops_per_token"]), "FLOP"),
    ]
    if measured is None:
        figures += [figure(k, f"{what}: {label}", None, unit, not_measured) for k, label, unit in (
            ("tokens_per_s", "training throughput", "tokens/s"), ("mfu", "MFU", "fraction of bf16 peak"),
            ("peak_memory_gib", "peak GPU memory", "GiB"))]
    else:
        mfu = measured["tokens_per_s"] * flops["flops_per_token"] / (peak * 1e12) if peak else None
        mem_label = "peak GPU memory allocated" if device == "cuda" else "peak resident memory of the process"
        figures += [
            figure("tokens_per_s", f"{what}: training throughput on {dev}", measured["tokens_per_s"], "tokens/s"),
            figure("mfu", f"{what}: MFU", round(mfu, 4) if mfu is not None else None, "fraction of bf16 peak",
                   f"peak {peak:g} TFLOP/s" if peak else
                   ("a CPU has no bf16 tensor-core peak: MFU is a GPU figure" if device == "cpu"
                    else f"unknown GPU {dev}: no bf16 peak in lora_step.PEAK_BF16_TFLOPS (or pass --peak-tflops)")),
            figure("peak_memory_gib", f"{what}: {mem_label}", measured["peak_memory_gib"], "GiB"),
        ]
    settings = {"arch": arch, "profile": cfg.profile, "variant": variant, "batch": batch, "seq": seq,
                "gradient_checkpointing": cfg.train.gradient_checkpointing, "quantization": cfg.model.quantization,
                "double_quant": cfg.model.double_quant, "dtype": cfg.model.dtype, "device": device,
                "attn_implementation": cfg.model.attn_implementation, "steps": steps, "warmup": warmup,
                "lora_r": cfg.train.lora_r, "peak_tflops": peak, "parameters_total": counts["parameters_total"],
                "linear_4bit_modules": counts["linear_4bit_modules"]}
    return make_record("lora_step", f"lora_step-{arch}-{variant}-b{batch}-s{seq}", command, figures,
                       settings, flops=flops, measured=measured, **extra)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="tiny", choices=arch_names())
    parser.add_argument("--batch", type=int, default=None, help="default: the profile's per_device_batch")
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--qlora", action="store_true", help="qlora profile: nf4 + double quant + checkpointing")
    parser.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing (always on with --qlora)")
    parser.add_argument("--steps", type=int, default=5, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu", "meta"],
                        help="auto: cuda if present, else cpu (meta for architectures over 2B parameters)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="bf16 peak if the GPU is not known")
    parser.add_argument("--records-dir", default=None, help="default: benchmarks/records/")
    args = parser.parse_args(argv)
    command = command_line("benchmarks.lora_step", argv)

    import torch

    from radis_utils.runtime import apply_runtime, device_name

    config = arch_config(args.arch)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else (
            "meta" if matmul_parameters(config) > CPU_MAX_PARAMS else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU is visible to torch")
    if device == "cuda" and torch.cuda.device_count() > 1:
        raise SystemExit("lora_step measures one GPU (the Trainer would wrap several in DataParallel): "
                         "run it with CUDA_VISIBLE_DEVICES=0")
    dtype = "bfloat16" if device in ("cuda", "meta") else "float32"  # bf16 is the paper's; CPUs run fp32
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        cfg = step_config(args.qlora, args.batch, args.seq, args.grad_ckpt, dtype, workdir)
        apply_runtime(cfg)  # seeds, quiet loading
        model, counts = prepare(args.arch, cfg, device, workdir)
        measured = None
        if device != "meta":
            from radis_utils.train import SpanCollator

            features = synthetic_features(cfg.train.per_device_batch * (args.steps + args.warmup), args.seq,
                                          config.vocab_size)
            measured = run_steps(model, cfg, features, SpanCollator(0), args.steps, args.warmup, workdir, device)
    peak = args.peak_tflops or (peak_tflops(device_name()) if device == "cuda" else None)
    not_measured = NO_GPU.format(command=command.replace(" --device meta", ""))
    record = step_record(args.arch, cfg, device, counts, measured, command, args.steps, args.warmup, peak,
                         not_measured)
    print_figures(record)
    print(f"wrote {write_record(record, args.records_dir)}")
    return record


if __name__ == "__main__":
    main()
