"""The general-ability suite's official command lines and what cannot run here.

The suite itself runs inline (``benchmarks.run_general_suite``: one module per benchmark,
``gsm8k``, ``advbench``, ``mt_bench``, ``alpaca_eval``). This module keeps what a user runs
outside it: lm-eval's command line for GSM8K at full scale (``gsm8k_command``) and a reader for
its results, and ``describe_skips``, one line per benchmark that cannot run as in the paper.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any, Mapping

from ..records import read_json
from .gsm8k import FILTER as GSM8K_FILTER
from .gsm8k import METRIC as GSM8K_METRIC
from .gsm8k import SHOTS as GSM8K_NUM_FEWSHOT
from .gsm8k import TASK as GSM8K_LOCAL_TASK
from .gsm8k import VARIANT as GSM8K_TASK
from .judge import NO_JUDGE
from .judge import judge_from_env as judge_settings_from_env  # noqa: F401  (chapter 06 calls it)


# --- GSM8K at full scale (lm-eval's command line) ---------------------------------------

def gsm8k_command(model_path: str, adapter_path: str | None, out_dir: str | Path,
                  batch_size: str = "auto", dtype: str = "bfloat16", max_gen_toks: int = 512,
                  limit: int | None = None, device: str = "cuda:0") -> list[str]:
    """The ``lm_eval`` command line that scores GSM8K (``GSM8K_TASK``) for a backbone (+ LoRA)."""
    for name, value in (("model_path", model_path), ("adapter_path", adapter_path)):
        if value and ("," in str(value) or "=" in str(value)):
            raise ValueError(f"gsm8k_command: {name} {value!r} holds ',' or '=', which lm_eval's "
                             "--model_args cannot carry; move the model to a plain path")
    model_args = f"pretrained={model_path}" + (f",peft={adapter_path}" if adapter_path else "")
    cmd = ["lm_eval", "--model", "hf", "--model_args", f"{model_args},dtype={dtype}",
           "--tasks", GSM8K_TASK, "--num_fewshot", str(GSM8K_NUM_FEWSHOT),
           "--apply_chat_template", "--gen_kwargs", f"max_gen_toks={max_gen_toks}",
           "--batch_size", str(batch_size), "--device", device,
           "--output_path", str(out_dir), "--log_samples"]
    return cmd + (["--limit", str(limit)] if limit else [])


def _results_file(path: str | Path) -> Path:
    path = Path(path)
    if path.is_file():
        return path
    found = sorted(path.rglob("results_*.json")) if path.is_dir() else []
    if not found:
        raise FileNotFoundError(f"no lm-eval results_*.json under {path}; run gsm8k_command's "
                                "command with --output_path pointing there first")
    return max(found, key=lambda p: p.name)  # names end in a sortable timestamp


def read_gsm8k_result(path: str | Path) -> float:
    """GSM8K accuracy in percent from an lm-eval results JSON (or the newest one under a folder):
    lm-eval's own task on the hub's data, or ours on the local file (``gsm8k.TASK``)."""
    file = _results_file(path)
    results = read_json(file).get("results", {})
    task = next((t for t in (GSM8K_TASK, GSM8K_LOCAL_TASK) if t in results), None)
    if task is None:
        raise KeyError(f"{file}: results has no task {GSM8K_TASK!r} or {GSM8K_LOCAL_TASK!r} (found: "
                       f"{', '.join(results) or 'none'}); was it run with --tasks {GSM8K_TASK}?")
    key = f"{GSM8K_METRIC},{GSM8K_FILTER}"
    if key not in results[task]:
        shown = ", ".join(k for k in results[task] if "stderr" not in k)
        raise KeyError(f"{file}: results.{task} has no {key!r} (found: {shown})")
    return round(100.0 * float(results[task][key]), 2)


def tool_availability() -> dict[str, bool]:
    """Which of the official tools are installed here: lm_eval, fastchat, alpaca_eval."""
    def has(module: str, cli: str | None = None) -> bool:
        return importlib.util.find_spec(module) is not None or bool(cli and shutil.which(cli))
    return {"lm_eval": has("lm_eval", "lm_eval"), "fastchat": has("fastchat"),
            "alpaca_eval": has("alpaca_eval", "alpaca_eval")}


def describe_skips(judge: Any, guard: str | None, tools: Mapping[str, bool] | None = None) -> list[str]:
    """One line per benchmark that cannot run as in the paper here, and why (``judge``: the
    ``judge.Judge`` configured, or ``None``)."""
    tools = tool_availability() if tools is None else tools
    lines = []
    if not tools.get("lm_eval"):
        lines.append("GSM8K skipped: lm-evaluation-harness is not installed (pip install 'radis-book[bench]')")
    if not guard:
        lines.append("AdvBench judged by refusal keywords (judge 'refusal-keywords'), not a guard model: "
                     "no guard model given (pass a Llama-Guard checkpoint, e.g. meta-llama/Llama-Guard-3-8B)")
    if judge is None:
        lines += [f"{name} judge skipped: {NO_JUDGE}" for name in ("MT-Bench", "AlpacaEval")]
    return lines
