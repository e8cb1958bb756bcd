"""The rows of ``python -m benchmarks.gpu``: each measures one figure group, writes its records
through ``Context.write`` and returns a one-line summary (``raise Skip(...)`` when it cannot run).

They reuse the single benchmarks' pieces (``lora_step``, ``batching``, ``generation``) and the
package's own pipeline functions; see ``benchmarks.gpu`` for the plan each row follows.
"""

from __future__ import annotations

import dataclasses
import gc
import time
from pathlib import Path
from typing import Any, Callable

from benchmarks.common import arch_config, figure, make_record
from benchmarks.goals import check
from benchmarks.gpu import Context, Plan, Skip

METHOD_KINDS = ("rationale", "seqkd", "sdft")


def row_function(row: str) -> Callable[[Plan, Context], str]:
    """The function of a row name (``lora-<arch>`` takes its architecture from the name)."""
    if row.startswith("lora-"):
        return lambda plan, ctx: lora(plan, ctx, row[len("lora-"):])
    return {"batching": batching, "generation": generation, "qlora": qlora, "smol": pipeline}[row]


def _free() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _figure_value(record: dict[str, Any], key: str) -> Any:
    return next((f["value"] for f in record["figures"] if f["key"] == key), None)


def _steps(plan: Plan, ctx: Context, model: Any, cfg: Any, arch: str) -> tuple[dict[str, Any] | None, str]:
    """``lora_step.run_steps`` on synthetic rows; ``(None, why)`` when the GPU runs out of memory."""
    import torch

    from benchmarks import lora_step
    from radis_utils.train import SpanCollator

    batch, seq = cfg.train.per_device_batch, cfg.train.max_length
    features = lora_step.synthetic_features(batch * (plan.steps + plan.warmup), seq, arch_config(arch).vocab_size)
    try:
        return lora_step.run_steps(model, cfg, features, SpanCollator(0), plan.steps, plan.warmup,
                                   ctx.workdir, plan.device), ""
    except torch.cuda.OutOfMemoryError:
        pass
    _free()  # outside the handler: its traceback no longer holds the failed step's tensors
    return None, f"not measured — out of memory at batch {batch} × {seq} on this GPU"


def _peak() -> float | None:
    import torch

    from benchmarks.lora_step import peak_tflops
    from radis_utils.runtime import device_name

    return peak_tflops(device_name()) if torch.cuda.is_available() else None


def lora(plan: Plan, ctx: Context, arch: str) -> str:
    """bf16 LoRA steps at batch × seq without and with checkpointing (batch halved once on OOM)."""
    from benchmarks import lora_step

    peak, model, counts, said = _peak(), None, None, []
    if plan.device == "cuda" and peak is None:
        print("MFU: this GPU is not in lora_step.PEAK_BF16_TFLOPS, so MFU is recorded as None", flush=True)
    for ckpt in (False, True):
        batch = plan.batch
        while True:
            cfg = lora_step.step_config(False, batch, plan.seq, ckpt, plan.dtype, ctx.workdir)
            if model is None:
                model, counts = lora_step.prepare(arch, cfg, plan.device, ctx.workdir)
            measured, why = _steps(plan, ctx, model, cfg, arch)
            record = lora_step.step_record(arch, cfg, plan.device, counts, measured, ctx.command, plan.steps,
                                           plan.warmup, peak, why)
            mfu = _figure_value(record, "mfu")
            if not ckpt:
                record["goal"] = check("lora_mfu", mfu)
            ctx.write(record)
            said.append(f"{lora_step.variant_of(cfg)} b{batch}: " + (f"MFU {mfu:.3f}" if mfu is not None else
                                                                   "MFU None" if measured else "OOM"))
            if measured is None and batch == plan.batch and batch > 1:  # once: half the batch
                batch //= 2
                continue
            break
    del model
    _free()
    return "; ".join(said)


def batching(plan: Plan, ctx: Context) -> str:
    """Random vs length-grouped vs padding-free batches over one epoch of ALMA-length conversations."""
    from benchmarks import batching as bt
    from benchmarks import lora_step

    attn, why = bt.padding_free_attention(plan.device == "cuda")
    print(f"padding-free attention: {attn or 'none'} ({why})", flush=True)
    table = bt.length_table()
    n = 4 * plan.batch * plan.batching_megabatches
    lengths = bt.sample_lengths(table, n, seed=0, max_length=plan.batching_max_length)
    cfg = lora_step.step_config(False, plan.batch, plan.batching_max_length, plan.batching_ckpt, plan.dtype,
                                ctx.workdir, model__attn_implementation=attn or "sdpa")
    model, _ = lora_step.prepare(plan.arch, cfg, plan.device, ctx.workdir)
    modes = bt.MODES if attn else tuple(m for m in bt.MODES if m != "padding_free")
    got = bt.compare(model, cfg, lengths, arch_config(plan.arch).vocab_size, 0, ctx.workdir, plan.device,
                     plan.warmup, modes)
    del model
    _free()
    what = (f"{plan.arch}, LoRA{' + checkpointing' if plan.batching_ckpt else ''}, per-device batch {plan.batch}, "
            f"{n} ALMA-length conversations")
    figures = []
    for mode in bt.MODES:
        m = got.get(mode)
        note = "" if m else f"not measured — {why}"
        figures += [figure(f"{mode}_tokens_per_s", f"{what}: {mode.replace('_', '-')} batches, real tokens/s",
                           m and m["real_tokens_per_s"], "real tokens/s", note),
                    figure(f"{mode}_token_efficiency", f"{what}: {mode.replace('_', '-')} batches, real / processed",
                           m and m["token_efficiency"], "real/processed", note)]
    ratios = {}
    for mode in ("grouped", "padding_free"):
        ratio = round(got[mode]["real_tokens_per_s"] / got["random"]["real_tokens_per_s"], 3) if mode in got else None
        ratios[mode] = ratio
        figures.append(figure(f"{mode}_vs_random", f"{what}: {mode.replace('_', '-')} / random padded tokens/s",
                              ratio, "x", "" if ratio is not None else f"not measured — {why}"))
    best = max((r for r in ratios.values() if r is not None), default=None)
    sorted_lengths = sorted(lengths)
    settings = {"arch": plan.arch, "batch": plan.batch, "conversations": n, "max_length": plan.batching_max_length,
                "gradient_checkpointing": plan.batching_ckpt, "steps_per_mode": -(-n // plan.batch),
                "attn_implementation": attn, "attention_note": why, "dtype": plan.dtype, "device": plan.device,
                "lengths": {"table": bt.LENGTHS_FILE.name, "table_command": table.get("command"),
                            "min": sorted_lengths[0], "median": sorted_lengths[n // 2], "max": sorted_lengths[-1]}}
    record = make_record("batching", f"batching-{plan.arch}-b{plan.batch}", ctx.command, figures, settings,
                         runs=got, goal=check("batching_speedup", best))
    ctx.write(record)
    return f"grouped {ratios['grouped']}x, padding-free {ratios['padding_free']}x over random"


def saved_model(plan: Plan, ctx: Context, model: Any = None) -> Path:
    """The random-weight model of ``plan.arch`` with the chat tokenizer, saved once per run (vLLM and
    the QLoRA load read it); ``model`` is saved when given, else one is built."""
    from benchmarks import generation as gen

    folder = ctx.workdir / f"random-{plan.arch}"
    if not (folder / "config.json").is_file():
        tok = gen.chat_tokenizer()
        start = time.perf_counter()
        gen.save_model(model if model is not None else gen.random_model(plan.arch, plan.device, len(tok)), tok,
                       folder)
        print(f"saved the random {plan.arch} to {folder} in {time.perf_counter() - start:.0f} s", flush=True)
    return folder


def generation(plan: Plan, ctx: Context) -> str:
    """HF batched then vLLM (eager, when importable on a GPU) at each batch size; vLLM / HF at the largest."""
    import importlib.util

    from benchmarks import generation as gen

    tok = gen.chat_tokenizer()
    prompt = gen.request_prompt(tok)
    model = gen.random_model(plan.arch, plan.device, len(tok))
    sizes = list(plan.gen_batch_sizes)
    rows = gen.hf_throughput(model, tok, prompt, sizes, plan.gen_max_new_tokens, plan.gen_rounds)
    notes: dict[str, str] = {}
    if plan.device != "cuda":
        notes["vllm"] = "not measured — vLLM needs an NVIDIA GPU (dry run)"
    elif importlib.util.find_spec("vllm") is None:
        notes["vllm"] = "not measured — vLLM is not installed (pip install 'radis-book[gpu]')"
    else:
        folder = saved_model(plan, ctx, model)
        del model
        _free()
        try:
            rows += gen.vllm_throughput(folder, tok, prompt, sizes, plan.gen_max_new_tokens, plan.gen_rounds,
                                        enforce_eager=True, max_model_len=2048)
        except Exception as err:  # noqa: BLE001  the HF side is still a result
            notes["vllm"] = f"not measured — vLLM failed: {type(err).__name__}: {err}"[:300]
    print(notes.get("vllm", "vLLM measured"), flush=True)
    at = {(r["engine"], r["batch_size"]): r["new_tokens_per_s"] for r in rows}
    top = sizes[-1]
    ratio = round(at[("vllm", top)] / at[("hf", top)], 2) if ("vllm", top) in at and ("hf", top) in at else None
    settings = {"arch": plan.arch, "batch_sizes": sizes, "max_new_tokens": plan.gen_max_new_tokens,
                "rounds": plan.gen_rounds, "engines": ["hf", "vllm"], "dtype": plan.dtype,
                "prompt_tokens": len(tok(prompt, add_special_tokens=False)["input_ids"]),
                "vllm": {"enforce_eager": True, "max_model_len": 2048, "gpu_memory_utilization": 0.8}}
    record = gen.generation_record(plan.arch, ["hf", "vllm"], sizes, rows, notes, settings, ctx.command,
                                   goal=check("vllm_speedup", ratio))
    record["figures"].append(figure("vllm_vs_hf", f"{plan.arch}: vLLM / HF batched new tokens/s at batch {top}",
                                    ratio, "x", "" if ratio is not None else notes.get("vllm", "not measured")))
    ctx.write(record)
    return f"HF b{top} {at.get(('hf', top))} new tokens/s; vLLM/HF {ratio}"


def qlora(plan: Plan, ctx: Context) -> str:
    """nf4 + double-quant QLoRA steps (checkpointing) at batch 4 (the goal) and the profile's batch."""
    from benchmarks import lora_step
    from radis_utils.config import load_profile

    folder = saved_model(plan, ctx)
    _free()
    batches = list(dict.fromkeys([*plan.qlora_batches, load_profile("qlora").train.per_device_batch]))
    model, counts, said = None, None, []
    for batch in batches:
        cfg = lora_step.step_config(True, batch, plan.seq, True, plan.dtype, ctx.workdir)
        if model is None:
            model, counts = lora_step.prepare(plan.arch, cfg, plan.device, ctx.workdir, folder)
        measured, why = _steps(plan, ctx, model, cfg, plan.arch)
        record = lora_step.step_record(plan.arch, cfg, plan.device, counts, measured, ctx.command, plan.steps,
                                       plan.warmup, _peak(), why)
        memory = _figure_value(record, "peak_memory_gib")
        if batch == 4:
            record["goal"] = check("qlora_peak_memory", memory if plan.device == "cuda" else None)
        ctx.write(record)
        said.append(f"b{batch}: peak {memory} GiB")
    del model
    _free()
    return "; ".join(said)


def pipeline(plan: Plan, ctx: Context) -> str:
    """The profile's whole pipeline in a scratch runs folder, timed per stage (record after each)."""
    from radis_utils import data, evaluate, models, synthesis, train
    from radis_utils.config import load_profile
    from radis_utils.runtime import apply_runtime

    from radis_utils.config import resolve_path

    overrides = dict(plan.smol_overrides)
    if ctx.dry_run:  # a tiny random backbone and a few ALMA-style pairs in place of the profile's own
        overrides.update(model__backbone=str(saved_model(dataclasses.replace(plan, arch="tiny"), ctx)),
                         data__source="alma", data__alma_dir=str(_tiny_alma(ctx.workdir / "alma")),
                         data__directions=["de-en"], eval__comet_model="")
    elif ctx.alma_dir:
        overrides["data__alma_dir"] = ctx.alma_dir
    import importlib.util

    engine_note = ""
    if load_profile(plan.smol_profile).synthesis.engine == "vllm" and importlib.util.find_spec("vllm") is None:
        overrides["synthesis__engine"], engine_note = "hf", "hf (the profile's vLLM is not installed)"
        print(f"synthesis engine: {engine_note}", flush=True)
    cfg = load_profile(plan.smol_profile, runtime__runs_dir=str(ctx.workdir / "runs"), **overrides)
    apply_runtime(cfg)
    alma = resolve_path(cfg.data.alma_dir)
    if cfg.data.source == "alma" and not (alma / "human_written_data").is_dir():
        raise Skip(f"profile {plan.smol_profile!r} reads ALMA's data, which is not at {alma}: copy it into an "
                   "ignored folder of the repo, carry it, and pass --alma-dir FOLDER")
    from radis_utils.gguf_backbone import GGUFError

    try:
        source = models.resolve_backbone(cfg)
    except (models.BackboneError, GGUFError, OSError) as err:  # e.g. the smol wheel or gguf not installed
        raise Skip(f"backbone of profile {plan.smol_profile!r} cannot be loaded: {err}") from err
    if not Path(source).is_dir() and not _in_hub_cache(source):
        raise Skip(f"backbone {source!r} of profile {plan.smol_profile!r} is not on this machine "
                   "(not a folder, not in the Hugging Face cache) and nothing can be downloaded")
    stages: dict[str, float] = {}
    seed = cfg.train.seeds[0]
    planned = ["data", "load backbone", *(f"synthesis {k}" for k in METHOD_KINDS),
               *(f"train {m}" for m in cfg.train.methods), "evaluate backbone",
               *(f"evaluate {m}" for m in cfg.train.methods)]

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        out = fn()
        stages[name] = round(time.perf_counter() - start, 1)
        print(f"{name}: {stages[name]} s", flush=True)
        ctx.write(_pipeline_record(cfg, ctx, planned, stages, seed, engine_note), quiet=len(stages) < len(planned))
        return out

    examples = stage("data", lambda: data.training_examples(cfg))
    model, tok = stage("load backbone", lambda: models.load_backbone(cfg) if cfg.synthesis.engine == "hf"
                       else (None, models.load_tokenizer(cfg)))
    for kind in METHOD_KINDS:
        stage(f"synthesis {kind}", lambda: synthesis.synthesize_for_profile(cfg, kind, examples, model, tok))
    del model
    _free()
    for method in cfg.train.methods:
        stage(f"train {method}", lambda: train.train(cfg, method, seed))
    stage("evaluate backbone", lambda: evaluate.evaluate(cfg, evaluate.BACKBONE))
    for method in cfg.train.methods:
        stage(f"evaluate {method}", lambda: evaluate.evaluate(cfg, method, seed))
    return f"{len(examples):,} examples, {sum(stages.values()):.0f} s in all"


def _tiny_alma(folder: Path) -> Path:
    """ALMA's layout for de-en with six training pairs and two test pairs (the dry run's data)."""
    import json

    pairs = [("Der Hund schläft.", "The dog sleeps."), ("Wir essen Brot.", "We eat bread."),
             ("Das Haus ist alt.", "The house is old."), ("Sie liest ein Buch.", "She reads a book."),
             ("Es regnet heute.", "It is raining today."), ("Ich trinke Wasser.", "I drink water.")]
    pair_dir = folder / "human_written_data" / "deen"
    pair_dir.mkdir(parents=True, exist_ok=True)
    for i, lang in enumerate(("de", "en")):
        (pair_dir / f"train.de-en.{lang}").write_text("".join(p[i] + "\n" for p in pairs), encoding="utf-8")
    test = [{"translation": {"de": de, "en": en}} for de, en in pairs[:2]]
    (pair_dir / "test.de-en.json").write_text(json.dumps(test, ensure_ascii=False), encoding="utf-8")
    return folder


def _in_hub_cache(repo: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(repo, "config.json"), str)


def _pipeline_record(cfg: Any, ctx: Context, planned: list[str], stages: dict[str, float], seed: int,
                     engine_note: str = "") -> dict[str, Any]:
    figures = [figure(name.replace(" ", "_") + "_seconds", f"{cfg.profile} pipeline: {name}", stages.get(name), "s",
                      "" if name in stages else "not measured — not reached (the row stopped first)")
               for name in planned]
    done = len(stages) == len(planned)
    figures.append(figure("total_seconds", f"{cfg.profile} pipeline: all stages", round(sum(stages.values()), 1)
                          if done else None, "s", "" if done else "not measured — not every stage ran"))
    from radis_utils import models

    settings = {"profile": cfg.profile, "config_hash": models.config_hash(cfg), "backbone": cfg.model.backbone,
                "engine": engine_note or cfg.synthesis.engine, "methods": list(cfg.train.methods), "seed": seed,
                "device": "cuda" if not ctx.dry_run else "cpu"}
    return make_record("pipeline", f"pipeline-{cfg.profile}", ctx.command, figures, settings, stages=stages)
