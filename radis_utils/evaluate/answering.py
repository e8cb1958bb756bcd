"""Chat replies for the general benchmarks (greedy unless a benchmark sets a temperature),
kept resumable on disk.

``resumable`` is the one place a long benchmark job keeps its progress: a JSON map from item
key to result, rewritten atomically (``records.write_json``) after every chunk, so a job that
stops resumes where it stopped and never leaves half a file. ``chat_replies`` formats message
lists with the tokenizer's chat template and generates with ``engines.generate``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..engines import generate
from ..prompts import chat_template_of
from ..records import read_json, write_json

Messages = Sequence[Mapping[str, str]]


def chat_text(tokenizer: Any, messages: Messages) -> str:
    """``messages`` ([{"role", "content"}]) in the tokenizer's chat template, assistant turn open."""
    chat_template_of(tokenizer)
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)


def chat_replies(model: Any, tokenizer: Any, conversations: Sequence[Messages], max_new_tokens: int,
                 batch_size: int, temperature: float = 0.0, seed: int = 0, engine: str = "hf") -> list[str]:
    """Replies (stripped) to each conversation, in input order: greedy at temperature 0, else
    sampled at ``temperature`` (seeded by ``seed``), through the generation loop ``engine``."""
    prompts = [chat_text(tokenizer, c) for c in conversations]
    return generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                    do_sample=temperature > 0, temperature=temperature if temperature > 0 else 1.0, seed=seed,
                    engine=engine)


def load_progress(path: Path, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The results kept so far in a progress file written under ``settings`` ({} when none)."""
    if not path.is_file():
        return {}
    kept = read_json(path)  # a damaged file: RecordError (a ValueError) naming it
    if not isinstance(kept, dict) or not isinstance(kept.get("results"), dict):
        raise ValueError(f"{path}: progress file lacks its 'results' object; delete it to start again")
    if kept.get("settings") != json.loads(json.dumps(dict(settings))):
        raise ValueError(f"{path}: progress kept under settings {kept.get('settings')}, but this run "
                         f"uses {dict(settings)}; delete the file or use another out_dir")
    return kept["results"]


def resumable(path: Path, items: Mapping[str, Any], compute: Callable[[list[Any]], list[Any]],
              chunk: int, settings: Mapping[str, Any]) -> dict[str, Any]:
    """``{key: compute(...)}`` for every item, reusing the results kept in ``path`` (under the same
    ``settings``) and saving after each ``chunk`` of new ones (atomically), so a stopped job
    resumes where it stopped."""
    if chunk < 1:
        raise ValueError(f"resumable: chunk must be >= 1, got {chunk}")
    done = load_progress(path, settings)
    todo = [k for k in items if k not in done]
    for start in range(0, len(todo), chunk):
        keys = todo[start:start + chunk]
        results = compute([items[k] for k in keys])
        if len(results) != len(keys):
            raise RuntimeError(f"resumable: {len(keys)} items gave {len(results)} results")
        done.update(zip(keys, results))
        write_json(path, {"settings": dict(settings), "results": done}, indent=1)
    return {k: done[k] for k in items}


def resumable_replies(model: Any, tokenizer: Any, conversations: Mapping[str, Messages], path: Path,
                      max_new_tokens: int, batch_size: int, model_id: str, temperature: float = 0.0,
                      seed: int = 0, engine: str = "hf") -> dict[str, str]:
    """``chat_replies`` of model ``model_id`` for keyed conversations, resumable through ``path``
    (saved every 4 batches; progress of another model or setting is refused; the loop is a
    setting when it is not ``hf``, since sampled replies depend on it)."""
    def run(chunk: list[Messages]) -> list[str]:
        return chat_replies(model, tokenizer, chunk, max_new_tokens, batch_size, temperature, seed, engine)
    settings = {"model_id": model_id, "temperature": temperature, "seed": seed, "max_new_tokens": max_new_tokens,
                **({"engine": engine} if engine != "hf" else {})}
    return resumable(path, conversations, run, 4 * batch_size, settings)
