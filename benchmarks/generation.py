"""Generation throughput (new tokens/s) against batch size, through the project's engines.

    python -m benchmarks.generation --arch tiny --batch-sizes 1,8,32              # CPU, seconds
    python -m benchmarks.generation --arch mistral_7b_v02 --batch-sizes 1,8,32,128,256   # GPU

A model with random weights is built from ``benchmarks/archs/<arch>.json`` (nothing is
downloaded) with a small local chat tokenizer; every prompt is the same chat-formatted
translation request, and each sequence is made to write exactly ``--max-new-tokens`` tokens
(``min_new_tokens`` in the model's generation config: a random model would otherwise stop at
random), so tokens/s at different batch sizes compare like for like. For each batch size ``b``,
``--rounds`` batches of ``b`` prompts go through ``engines.HFEngine`` (batch size ``b``) after
one untimed warm-up batch. With vLLM importable and a GPU present, the same prompts go through
``engines.VLLMEngine`` too (``b`` prompts submitted at once; vLLM schedules them itself).
Without a GPU, architectures over 2B parameters are recorded as "not measured".
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from benchmarks.common import (NO_GPU, arch_config, arch_names, command_line, figure, make_record,
                               matmul_parameters, print_figures, quiet_progress, write_record)
from benchmarks.common import random_model as common_random_model

CPU_MAX_PARAMS = 2e9
SOURCE = ("Die Verhandlungen über das neue Abkommen wurden am Dienstag in Brüssel fortgesetzt, "
          "nachdem beide Seiten Zugeständnisse signalisiert hatten.")


def chat_tokenizer() -> Any:
    """A small byte-level BPE chat tokenizer (Mistral format) trained on the instruction templates."""
    from radis_utils.prompts import demo_chat_tokenizer

    tok = demo_chat_tokenizer("mistral", vocab_size=400)
    tok.pad_token = tok.eos_token
    return tok


def request_prompt(tokenizer: Any) -> str:
    """One chat-formatted German->English translation request (the first instruction template)."""
    from radis_utils.prompts import chat_prompt, translation_request

    return chat_prompt(tokenizer, translation_request(SOURCE, "de", "en", 0))


def random_model(arch: str, device: str, vocab_at_least: int) -> Any:
    """Random weights from the architecture file: bf16 on a GPU, fp32 on a CPU; in eval mode."""
    import torch

    config = arch_config(arch)
    if config.vocab_size < vocab_at_least:
        raise SystemExit(f"arch {arch}: vocab_size {config.vocab_size} < the tokenizer's {vocab_at_least}")
    return common_random_model(arch, torch.bfloat16 if device == "cuda" else torch.float32, device).eval()


def hf_throughput(model: Any, tokenizer: Any, prompt: str, batch_sizes: Sequence[int], max_new_tokens: int,
                  rounds: int) -> list[dict[str, Any]]:
    """New tokens/s of ``HFEngine`` at each batch size (``rounds`` batches each, after a warm-up)."""
    from radis_utils.engines import Decoding

    model.generation_config.min_new_tokens = max_new_tokens  # every sequence runs to the cap
    decoding = Decoding(max_new_tokens=max_new_tokens)
    with quiet_progress():
        return [_hf_row(model, tokenizer, prompt, b, decoding, rounds) for b in batch_sizes]


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _hf_row(model: Any, tokenizer: Any, prompt: str, b: int, decoding: Any, rounds: int) -> dict[str, Any]:
    from radis_utils.engines import HFEngine

    engine = HFEngine(model, tokenizer, batch_size=b)
    engine.generate([prompt] * b, decoding)  # warm-up: allocator, kernels, caches
    _sync()
    start = time.perf_counter()
    done = engine.generate([prompt] * (b * rounds), decoding)
    _sync()
    seconds = time.perf_counter() - start
    tokens = sum(c.new_tokens for c in done)
    return {"engine": "hf", "batch_size": b, "sequences": len(done), "new_tokens": tokens,
            "seconds": round(seconds, 4), "new_tokens_per_s": round(tokens / seconds, 1),
            "all_ran_to_cap": all(c.new_tokens == decoding.max_new_tokens for c in done)}


def save_model(model: Any, tokenizer: Any, folder: Path) -> Path:
    """``model`` and ``tokenizer`` in ``folder`` (``save_pretrained``), as vLLM loads a model."""
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def vllm_throughput(folder: Path, tokenizer: Any, prompt: str, batch_sizes: Sequence[int], max_new_tokens: int,
                    rounds: int, **llm_kwargs: Any) -> list[dict[str, Any]]:
    """The same through ``VLLMEngine`` on the model saved in ``folder`` (``save_model``)."""
    import vllm

    from radis_utils.engines import VLLMEngine

    llm_kwargs.setdefault("gpu_memory_utilization", 0.8)
    engine = VLLMEngine(str(folder), tokenizer, seed=0, dtype="bfloat16", **llm_kwargs)
    # greedy, no stop tokens at all, so every sequence runs to the cap as on the HF side (min_new_tokens);
    # no detokenizing: a random model writes ids beyond the small tokenizer's vocabulary
    params = vllm.SamplingParams(n=1, max_tokens=max_new_tokens, temperature=0.0, seed=0, ignore_eos=True,
                                 detokenize=False)
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    rows = []
    for b in batch_sizes:
        requests = [{"prompt_token_ids": ids}] * b
        engine.llm.generate(requests, params, use_tqdm=False)  # warm-up
        start = time.perf_counter()
        outputs = [o for _ in range(rounds) for o in engine.llm.generate(requests, params, use_tqdm=False)]
        seconds = time.perf_counter() - start
        tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
        rows.append({"engine": "vllm", "batch_size": b, "sequences": len(outputs), "new_tokens": tokens,
                     "seconds": round(seconds, 4), "new_tokens_per_s": round(tokens / seconds, 1),
                     "all_ran_to_cap": tokens == len(outputs) * max_new_tokens})
    return rows


def generation_record(arch: str, engines: Sequence[str], batch_sizes: Sequence[int], rows: list[dict[str, Any]],
                      notes: dict[str, str], settings: dict[str, Any], command: str, **extra: Any) -> dict[str, Any]:
    """The ``generation`` record: new tokens/s per engine and batch size, and each engine's scaling."""
    figures = []
    for engine in engines:
        for b in batch_sizes:
            row = next((r for r in rows if r["engine"] == engine and r["batch_size"] == b), None)
            figures.append(figure(f"{engine}_b{b}_tokens_per_s",
                                  f"{arch}, {engine} engine, batch {b}: generation throughput",
                                  row["new_tokens_per_s"] if row else None, "new tokens/s",
                                  "" if row else notes.get(engine, "not measured")))
        ours = [r for r in rows if r["engine"] == engine]
        if len(ours) > 1:
            figures.append(figure(f"{engine}_scaling", f"{arch}, {engine} engine: batch "
                                  f"{ours[-1]['batch_size']} vs batch {ours[0]['batch_size']}",
                                  round(ours[-1]["new_tokens_per_s"] / ours[0]["new_tokens_per_s"], 2), "x"))
    return make_record("generation", f"generation-{arch}", command, figures, settings, rows=rows, notes=notes,
                       **extra)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="tiny", choices=arch_names())
    parser.add_argument("--batch-sizes", default="1,8,32", help="comma-separated (default 1,8,32)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="timed batches per batch size")
    parser.add_argument("--engines", default="hf,vllm", help="hf and/or vllm (vllm: only when importable, on a GPU)")
    parser.add_argument("--records-dir", default=None, help="default: benchmarks/records/")
    args = parser.parse_args(argv)
    command = command_line("benchmarks.generation", argv)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]

    import importlib.util

    import torch

    from radis_utils.config import load_profile
    from radis_utils.runtime import apply_runtime

    apply_runtime(load_profile("a100"))  # seeds, quiet loading
    config = arch_config(args.arch)
    cuda = torch.cuda.is_available()
    measurable = cuda or matmul_parameters(config) <= CPU_MAX_PARAMS
    tok = chat_tokenizer()
    prompt = request_prompt(tok)
    prompt_tokens = len(tok(prompt, add_special_tokens=False)["input_ids"])
    rows: list[dict[str, Any]] = []
    notes: dict[str, str] = {}
    if measurable:
        model = random_model(args.arch, "cuda" if cuda else "cpu", len(tok))
        if "hf" in engines:
            rows += hf_throughput(model, tok, prompt, batch_sizes, args.max_new_tokens, args.rounds)
        if "vllm" in engines:
            if not cuda or importlib.util.find_spec("vllm") is None:
                notes["vllm"] = ("not measured — vLLM needs an NVIDIA GPU and the `gpu` extra; run "
                                 f"`{command}` on one with `pip install 'radis-book[gpu]'`")
            else:
                model = model.cpu()
                torch.cuda.empty_cache()
                with tempfile.TemporaryDirectory() as tmp:
                    try:
                        folder = save_model(model, tok, Path(tmp) / "random-weights")
                        rows += vllm_throughput(folder, tok, prompt, batch_sizes, args.max_new_tokens, args.rounds)
                    except Exception as err:  # a benchmark records why a side is missing
                        notes["vllm"] = f"failed: {type(err).__name__}: {err}"[:300]
    else:
        for engine in engines:
            notes[engine] = NO_GPU.format(command=command)
    settings = {"arch": args.arch, "batch_sizes": batch_sizes, "max_new_tokens": args.max_new_tokens,
                "rounds": args.rounds, "engines": engines, "prompt_tokens": prompt_tokens,
                "dtype": "bfloat16" if cuda else "float32"}
    record = generation_record(args.arch, engines, batch_sizes, rows, notes, settings, command)
    print_figures(record)
    print(f"wrote {write_record(record, args.records_dir)}")
    return record


if __name__ == "__main__":
    main()
