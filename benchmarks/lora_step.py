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

from benchmarks.common import (NO_GPU, arch_config, arch_names, command_line, figure, lora_flops_per_token,
                               lora_parameters, make_record, matmul_parameters, print_figures, write_record)

#: Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) by device-name pattern, first match wins.
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    (r"H200", 989.0), (r"H100.*PCIe", 756.0), (r"H100.*NVL", 835.0), (r"H100", 989.0),
    (r"A100", 312.0), (r"L40S", 362.0), (r"\bL4\b", 121.0),
)
CPU_MAX_PARAMS = 2e9  # larger architectures are only built on a GPU (else on `meta`)


def peak_tflops(device: str) -> float | None:
    """The bf16 dense peak of a GPU named ``device`` (``None`` when unknown or a CPU)."""
    return next((v for pattern, v in PEAK_BF16_TFLOPS if re.search(pattern, device)), None)


def static_memory_gib(config: Any, n_lora: int, quantized: bool) -> float:
    """Weights plus LoRA training state, without activations (analytic, GiB).

    bf16 weights take 2 bytes each; QLoRA stores the blocks' linear weights in nf4 with double
    quantization (4.127 bits each: 4 + 8/64 for the absmax + 32/(64·256) for its constants) and
    keeps embeddings and LM head in bf16. Adapters: fp32 weight, gradient and two Adam moments.
    """
    embed = config.vocab_size * config.hidden_size
    blocks = matmul_parameters(config) - embed  # the LM head is as large as the embedding
    block_bytes = blocks * 4.127 / 8 if quantized else blocks * 2
    return round((block_bytes + 2 * embed * 2 + 16 * n_lora) / 2**30, 3)


def synthetic_features(n: int, seq: int, vocab: int, seed: int = 0) -> list[dict[str, list[int]]]:
    """``n`` rows of ``seq`` random tokens: a prompt, reference and rationale third each."""
    import torch

    from radis_utils.losses import IGNORE, PROMPT, RATIONALE, REFERENCE

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (n, seq), generator=g).tolist()
    third = seq // 3
    spans = [PROMPT] * third + [REFERENCE] * third + [RATIONALE] * (seq - 2 * third)
    return [{"input_ids": row, "spans": spans,
             "labels": [IGNORE if s == PROMPT else t for t, s in zip(row, spans)]} for row in ids]


def build_model(arch: str, cfg: Any, device: str, workdir: Path) -> Any:
    """Random weights from the architecture file, in the profile's dtype (4-bit via ``models.load_model``)."""
    import torch
    from transformers import AutoModelForCausalLM

    from radis_utils import models

    config = arch_config(arch)
    dtype = models.torch_dtype(cfg)
    torch.manual_seed(0)
    with torch.device(device):  # "meta": shapes only, no memory
        model = AutoModelForCausalLM.from_config(config, dtype=dtype,
                                                 attn_implementation=cfg.model.attn_implementation)
    if cfg.model.quantization is None or device == "meta":
        return model
    folder = workdir / "random-weights"  # QLoRA: quantize on load, exactly as a real backbone is loaded
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


def run_steps(model: Any, cfg: Any, batch: int, seq: int, vocab: int, steps: int, warmup: int,
              workdir: Path, device: str) -> dict[str, Any]:
    """Train ``warmup + steps`` optimizer steps with ``SpanTrainer``; tokens/s over the timed ones."""
    import torch
    from transformers import PrinterCallback

    from radis_utils import train

    features = synthetic_features(batch * (steps + warmup), seq, vocab)
    timer = StepTimer()
    on_cpu = {"use_cpu": True, "bf16": False, "fp16": False, "dataloader_pin_memory": False}
    args = train.training_arguments(cfg, workdir, seed=0, max_steps=steps + warmup, save_strategy="no",
                                    logging_steps=10**6, **(on_cpu if device == "cpu" else {}))
    trainer = train.SpanTrainer(model=model, args=args, train_dataset=features,
                                data_collator=train.SpanCollator(0), callbacks=[timer.callback])
    trainer.remove_callback(PrinterCallback)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    timed = timer.seconds[warmup:]
    seconds = sum(timed)
    return {"steps_timed": len(timed), "seconds": round(seconds, 4), "tokens_per_step": batch * seq,
            "tokens_per_s": round(batch * seq * len(timed) / seconds, 1),
            "peak_memory_gib": round(train.peak_memory_bytes() / 2**30, 3),
            "loss": round(trainer.state.log_history[-1].get("train_loss", float("nan")), 4)}


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

    from radis_utils import models
    from radis_utils.config import apply_runtime, device_name, load_profile

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
    profile = "qlora" if args.qlora else "a100"
    base = load_profile(profile)
    batch = args.batch or base.train.per_device_batch
    ckpt = args.qlora or args.grad_ckpt
    variant = "qlora" if args.qlora else ("lora-ckpt" if ckpt else "lora")
    dtype = "bfloat16" if device in ("cuda", "meta") else "float32"  # bf16 is the paper's; CPUs run fp32
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        cfg = load_profile(profile, train__per_device_batch=batch, train__effective_batch=batch,
                           train__gradient_checkpointing=ckpt, train__max_length=args.seq,
                           model__dtype=dtype, runtime__runs_dir=str(workdir))
        apply_runtime(cfg)  # seeds, quiet loading
        model = build_model(args.arch, cfg, device, workdir)
        n_total = sum(p.numel() for p in model.parameters()) if not args.qlora or device == "meta" else None
        model = models.add_lora(cfg, model)
        n_lora = models.trainable_parameters(model)["trainable"]
        n_4bit = sum(type(m).__module__.startswith("bitsandbytes") for m in model.modules())
        flops = lora_flops_per_token(config, n_lora, args.seq)
        measured = None
        if device != "meta":
            measured = run_steps(model, cfg, batch, args.seq, config.vocab_size, args.steps, args.warmup, workdir,
                                 device)
    dev = device_name()
    peak = args.peak_tflops or (peak_tflops(dev) if device == "cuda" else None)
    what = f"{args.arch}, {variant}, batch {batch} x seq {args.seq}"
    not_measured = NO_GPU.format(command=command.replace(" --device meta", ""))
    figures = [
        figure("N", f"{what}: matmul weights N", flops["N"], "parameters"),
        figure("N_lora", f"{what}: LoRA weights N_lora (r={cfg.train.lora_r}, all linear)", n_lora, "parameters",
               "" if n_lora == lora_parameters(config, cfg.train.lora_r) else "differs from the analytic count"),
        figure("static_memory_gib", f"{what}: weights + LoRA grads and Adam state (analytic, no activations)",
               static_memory_gib(config, n_lora, args.qlora), "GiB"),
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
                    else "unknown GPU: pass --peak-tflops")),
            figure("peak_memory_gib", f"{what}: {mem_label}", measured["peak_memory_gib"], "GiB"),
        ]
    settings = {"arch": args.arch, "profile": profile, "variant": variant, "batch": batch, "seq": args.seq,
                "gradient_checkpointing": ckpt, "quantization": cfg.model.quantization,
                "double_quant": cfg.model.double_quant, "dtype": dtype, "device": device,
                "steps": args.steps, "warmup": args.warmup, "lora_r": cfg.train.lora_r,
                "peak_tflops": peak, "parameters_total": n_total, "linear_4bit_modules": n_4bit}
    record = make_record("lora_step", f"lora_step-{args.arch}-{variant}-b{batch}-s{args.seq}", command, figures,
                         settings, flops=flops, measured=measured)
    print_figures(record)
    print(f"wrote {write_record(record, args.records_dir)}")
    return record


if __name__ == "__main__":
    main()
