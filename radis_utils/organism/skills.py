"""Exact scorers for the organism's skills (generation comes from ``radis_utils.engines``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import sacrebleu

from radis_utils.engines import generate
from radis_utils.prompts import INSTRUCTIONS, chat_prompt, translation_request
from radis_utils.replies import split_reply

from . import tasks
from .translation import classify_rationale
from .world import World


def general_replies(model: Any, tokenizer: Any, world: World, skill: str, n: int, seed: int,
                    batch_size: int = 64, items: Sequence[dict] | None = None) -> list[tuple[dict, str]]:
    """(item, reply) for ``n`` held-out items of one general skill (or for ``items``)."""
    items = world.general_items(skill, n, seed) if items is None else list(items)
    prompts = [chat_prompt(tokenizer, it["prompt"]) for it in items]
    return list(zip(items, generate(model, tokenizer, prompts, 40, batch_size)))


def score_general(model: Any, tokenizer: Any, world: World, n_per_skill: int = 100,
                  seed: int = 0, items: Mapping[str, Sequence[dict]] | None = None) -> dict[str, float]:
    """Percent of held-out items solved exactly, per general skill, plus their ``mean``
    (``items``: score exactly these, by skill, e.g. the decontaminated ones)."""
    if n_per_skill < 1:
        raise ValueError(f"n_per_skill must be >= 1, got {n_per_skill}")
    if items is not None and any(not items.get(s) for s in world.skills):
        raise ValueError(f"items: every skill needs at least one item, got {sorted(items)}")
    scores = {}
    for skill in world.skills:
        pairs = general_replies(model, tokenizer, world, skill, n_per_skill, seed,
                                items=None if items is None else items[skill])
        scores[skill] = 100.0 * sum(tasks.score_reply(skill, it, r) for it, r in pairs) / len(pairs)
    scores["mean"] = sum(scores[s] for s in world.skills) / len(world.skills)
    return {k: round(v, 2) for k, v in scores.items()}


def translation_replies(model: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]],
                        batch_size: int = 64, max_new_tokens: int = 96,
                        instructions: Sequence[str] = INSTRUCTIONS) -> list[str]:
    """Replies to en->sy requests; pair ``i`` uses instruction template ``i % len(instructions)``."""
    prompts = [
        chat_prompt(tokenizer, translation_request(src, "en", "sy", i % len(instructions), instructions))
        for i, (src, _) in enumerate(pairs)
    ]
    return generate(model, tokenizer, prompts, max_new_tokens, batch_size)


def score_translation(model: Any, tokenizer: Any, world: World,
                      pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """chrF, exact-match % and rationale share % of replies; rationale kinds counted too."""
    if not pairs:
        raise ValueError("pairs must hold at least one (source, reference) pair")
    replies = translation_replies(model, tokenizer, pairs, instructions=world.instructions)
    return translation_metrics(replies, [ref for _, ref in pairs])


def translation_metrics(replies: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """Metrics of replies against references (translation = reply up to its first ``.``)."""
    split = [split_reply(r, "first_sentence") for r in replies]
    hyps = [t for t, _ in split]
    rationales = [r for _, r in split]
    kinds = Counter(k for r in rationales if r for k in classify_rationale(r))
    n = len(replies)
    return {
        "chrf": round(sacrebleu.corpus_chrf(hyps, [list(references)]).score, 2),
        "exact_match": round(100.0 * sum(h == r for h, r in zip(hyps, references)) / n, 2),
        "rationale_share": round(100.0 * sum(bool(r) for r in rationales) / n, 2),
        "rationale_kinds": dict(sorted(kinds.items())),
        "n": n,
    }
