"""GSM8K (paper table 3, reasoning) through lm-evaluation-harness's Python API, on the local file.

The task is lm-eval's own ``gsm8k_cot_zeroshot`` config (copied into the task file, so its
prompt "Q: ... A: Let's think step by step.", stop strings, filters and metric are lm-eval's,
and the file names no path inside the environment that wrote it), with its dataset pointed at
the local ``gsm8k/test.jsonl`` (``dataset_path: json``), never the hub. lm-eval's own CLI runs
it from anywhere: ``lm_eval --include_path <out>/gsm8k/task --tasks gsm8k_cot_zeroshot_local ...``.
It is asked in the model's own chat template (``apply_chat_template=True``), through
``HFLM(pretrained=model, tokenizer=tokenizer)``, so an adapter already applied to ``model`` is
what is scored. Score: exact match after the ``flexible-extract`` filter (the last number of
the reply); ``strict-match`` ("The answer is N.") is reported beside it. The paper does not
state its variant: change ``VARIANT`` / ``FILTER`` / ``SHOTS`` here. Requests are cached
(``use_cache``) under the output folder, so a stopped run resumes.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any, Iterator

from .. import benchmark_files as files
from ..records import write_json

VARIANT = "gsm8k_cot_zeroshot"   # the lm-eval task config we include
TASK = f"{VARIANT}_local"        # our task: the same config on the local test file
SHOTS = 0
FILTER = "flexible-extract"
FILTERS = ("flexible-extract", "strict-match")
METRIC = "exact_match"
OFFLINE_ENV = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}


def lm_eval_task_file(test_file: Path, out_dir: Path) -> Path:
    """Write our task YAML (lm-eval's ``VARIANT`` config, whole, on ``test_file``, its ``datasets``
    cache under ``out_dir``) and return its path."""
    import lm_eval
    import yaml

    from ..records import write_text

    base = Path(lm_eval.__file__).parent / "tasks" / "gsm8k" / f"{VARIANT.replace('_', '-')}.yaml"
    if not base.is_file():
        raise FileNotFoundError(f"lm-eval {lm_eval.__version__} has no {base.name}; pin lm_eval==0.4.13 "
                                "(pip install 'radis-book[bench]') or change gsm8k.VARIANT")
    config = yaml.safe_load(base.read_text(encoding="utf-8"))
    config.update(task=TASK, tag=[], dataset_path="json", dataset_name=None, training_split=None,
                  fewshot_split=None, dataset_kwargs={"data_files": {"test": str(Path(test_file).resolve())},
                                                      "cache_dir": str((Path(out_dir) / "datasets_cache").resolve())})
    config["metadata"] = {**(config.get("metadata") or {}), "copied_from": f"lm_eval {lm_eval.__version__} {base.name}"}
    path = Path(out_dir) / "task" / f"{TASK}.yaml"
    write_text(path, yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return path


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """Hold ``HF_DATASETS_OFFLINE=1`` / ``HF_HUB_OFFLINE=1`` for the block, also in the already
    imported ``datasets`` / ``huggingface_hub`` constants; restore everything afterwards. Ours because
    both libraries read these variables once, at import, and lm-eval has no offline switch."""
    saved_env = {k: os.environ.get(k) for k in OFFLINE_ENV}
    constants = [(sys.modules.get(m), n) for m, n in (("huggingface_hub.constants", "HF_HUB_OFFLINE"),
                                                       ("datasets.config", "HF_HUB_OFFLINE"),
                                                       ("datasets.config", "HF_DATASETS_OFFLINE"))]
    saved = [(mod, name, getattr(mod, name)) for mod, name in constants if mod is not None and hasattr(mod, name)]
    os.environ.update(OFFLINE_ENV)
    for mod, name, _ in saved:
        setattr(mod, name, True)
    try:
        yield
    finally:
        for mod, name, value in saved:
            setattr(mod, name, value)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def summarize(results: dict[str, Any], limit: int | None) -> tuple[float, dict[str, Any]]:
    """``(score %, details)`` from ``simple_evaluate``'s output for ``TASK``."""
    task = results["results"][TASK]
    by_filter = {f: round(100.0 * float(task[f"{METRIC},{f}"]), 2) for f in FILTERS}
    n = results["n-samples"][TASK]["effective"]
    return by_filter[FILTER], {
        "n": n, "limit": limit, "judge": f"lm-eval {METRIC} ({FILTER})", "variant": VARIANT, "task": TASK,
        "filter": FILTER, "shots": SHOTS, "metric": METRIC, "by_filter": by_filter, "apply_chat_template": True,
        "lm_eval_version": results.get("lm_eval_version"), "generation": results["configs"][TASK].get("generation_kwargs"),
    }


def run_gsm8k(model: Any, tokenizer: Any, *, benchmarks_dir: Path, out_dir: Path, limit: int | None,
              max_new_tokens: int, batch_size: int, model_id: str) -> tuple[float | None, dict[str, Any]]:
    """GSM8K exact match (%) of ``model`` (with its adapter) via ``lm_eval.simple_evaluate``, offline.
    lm-eval's results (with the samples) are kept in ``<out>/gsm8k/results.json``; its request
    cache is named by ``model_id``. Without lm-eval installed: ``(None, details)`` saying so."""
    files.read_gsm8k(benchmarks_dir)  # the shape check: a clear error before lm-eval starts
    try:
        import lm_eval
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError:
        return None, {"n": 0, "judge": "none", "variant": VARIANT, "skipped": "GSM8K skipped: "
                      "lm-evaluation-harness is not installed: pip install 'radis-book[bench]' (lm_eval==0.4.13)"}
    work = Path(out_dir) / "gsm8k"
    task_file = lm_eval_task_file(Path(benchmarks_dir) / files.GSM8K, work)
    with hub_offline():
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
        results = lm_eval.simple_evaluate(
            model=lm, tasks=[TASK], task_manager=TaskManager(include_path=str(task_file.parent), include_defaults=False),
            num_fewshot=SHOTS, limit=limit, apply_chat_template=True, gen_kwargs={"max_gen_toks": max_new_tokens},
            log_samples=True, use_cache=str(work / f"requests-{model_id}"))
    score, details = summarize(results, limit)
    samples = [{"doc_id": s["doc_id"], "target": s["target"], "reply": s["resps"][0][0], "filtered": s["filtered_resps"],
                "filter": s.get("filter"), "exact_match": s.get("exact_match")} for s in results["samples"][TASK]]
    write_json(work / "results.json", {"summary": details, "results": results["results"],
                                       "config": results["configs"][TASK], "samples": samples}, indent=1)
    return score, {**details, "task_file": str(task_file), "results": str(work / "results.json")}
