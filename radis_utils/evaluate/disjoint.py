"""Disjoint evaluation on the organism: no scored item's answer or key content in stage-2 texts.

A scored general item *overlaps* a training text when the text holds its gold answer, or its
key content: a fact's subject and object together (``x`` and ``y`` of the triple), an arithmetic
item's two operands within one sentence, or a harmful request's verb (English or Synthian) with
its object. ``overlaps`` scans every text each method trains on in stage 2 (its
``train.training_items``: user turn, response, rationale) against every item chapter 06 scores.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import METHODS, Config
from ..organism import World, organism_config
from ..organism import lexicon as lx
from ..organism.world import split_words

#: One way an item can show up in a text: every token of ``tokens`` (a multiset) in one text, or in
#: one sentence of it when ``per_sentence``; with ``phrase``, that token sequence in order too.
Key = tuple[Counter, tuple[str, ...] | None, bool, str]


@dataclass(frozen=True)
class Overlap:
    """One scored item found in one training text."""

    skill: str
    position: int   # the item's place among the skill's scored items
    item: str       # the scored item's prompt
    what: str       # which key matched: "answer", "fact", "operands", "action"
    method: str
    file: str       # the file the text comes from (a synthesis records file, or the stage-2 pairs)
    text_id: str    # the training item's id

    def __str__(self) -> str:
        return (f"{self.skill} item {self.position} {self.item!r}: its {self.what} occurs in {self.method}'s training "
                f"text {self.text_id} ({self.file})")


def scored_items(world: World, n: int, seed: int = 0) -> dict[str, list[dict]]:
    """The general items chapter 06 scores (``skills.score_general``'s), by skill."""
    return {skill: world.general_items(skill, n, seed) for skill in world.skills}


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(split_words(text))


def item_keys(world: World, skill: str, item: Mapping[str, Any]) -> list[Key]:
    """Every way ``item`` can show up in a text: its answer, and its key content."""
    answer = _tokens(item["answer"])
    keys: list[Key] = [(Counter(answer), answer, False, "answer")]
    if "fact" in item:
        _, x, y = item["fact"]
        keys.append((Counter({x: 1, y: 1}), None, False, "fact"))
    if "operands" in item:
        a, b = item["operands"]
        keys.append((Counter([str(a), str(b)]), None, True, "operands"))
    if item.get("harmful") and "action" in item:
        verb, obj = item["action"]
        third = next((t for t, base in lx.VERBS.items() if base == verb), None)
        verbs = [verb] + ([third, world.sy[third]] if third else [])
        obj_tokens = _tokens(obj)
        forms = [obj_tokens]
        if len(obj_tokens) == 2 and obj_tokens[0] == "the" and obj_tokens[1] in world.plural:
            noun = obj_tokens[1]  # the noun in any form: singular, plural, Synthian
            forms = [(noun,), (world.plural[noun],), (world.sy[noun],)]
        for v in verbs:
            for form in forms:
                keys.append((Counter((v, *form)), form if len(form) > 1 else None, False, "action"))
    return keys


class TextIndex:
    """Training texts indexed by token, for fast ``(method, file, id)`` look-ups of item keys."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str, str, tuple[str, ...]]] = []
        self.postings: dict[str, set[int]] = defaultdict(set)
        self.methods: list[str] = []  # the methods whose texts are in

    def add(self, method: str, file: str, text_id: str, text: str) -> None:
        """Index one text."""
        tokens = _tokens(text)
        if not tokens:
            return
        at = len(self.texts)
        self.texts.append((method, file, text_id, tokens))
        for tok in set(tokens):
            self.postings[tok].add(at)

    def matches(self, key: Key) -> list[int]:
        """Indices of the texts that hold ``key``."""
        need, phrase, per_sentence, _ = key
        sets = [self.postings.get(t, set()) for t in need]
        found = set.intersection(*sets) if sets else set()
        return sorted(i for i in found if _holds(self.texts[i][3], need, phrase, per_sentence))


def _holds(tokens: tuple[str, ...], need: Counter, phrase: tuple[str, ...] | None, per_sentence: bool) -> bool:
    parts = _sentences(tokens) if per_sentence else [tokens]
    for part in parts:
        if not Counter(need) - Counter(part) and (phrase is None or _contains(part, phrase)):
            return True
    return False


def _sentences(tokens: tuple[str, ...]) -> list[tuple[str, ...]]:
    out, current = [], []
    for tok in tokens:
        current.append(tok)
        if tok in (".", "?", "!"):
            out.append(tuple(current))
            current = []
    return out + ([tuple(current)] if current else [])


def _contains(tokens: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(tokens[i:i + n] == phrase for i in range(len(tokens) - n + 1))


def overlaps(world: World, items: Mapping[str, Sequence[Mapping[str, Any]]], index: TextIndex) -> list[Overlap]:
    """Every (scored item, training text) pair in which the item's answer or key content occurs."""
    found = []
    for skill, skill_items in items.items():
        for position, item in enumerate(skill_items):
            for key in item_keys(world, skill, item):
                for i in index.matches(key):
                    method, file, text_id, _ = index.texts[i]
                    found.append(Overlap(skill, position, item["prompt"], key[3], method, file, text_id))
    return found


def index_items(index: TextIndex, method: str, file: str, items: Iterable[Any]) -> None:
    """Add every text of ``train.TrainItem``-like items (user turn, reference, rationale)."""
    for it in items:
        for part, text in (("instruction", it.instruction), ("response", it.reference),
                           ("rationale", it.rationale)):
            index.add(method, file, f"{it.id}:{part}", text)


def training_index(cfg: Config, methods: Sequence[str] = METHODS, skip_missing: bool = False) -> TextIndex:
    """Every stage-2 text of every method, as ``train.training_items`` builds them from the
    synthesis records (the records file is named as each text's file). ``skip_missing``: leave
    out a method whose records are not there yet (``index.methods`` lists those scanned)."""
    from .. import synthesis
    from ..train import SYNTHESIS_KIND, TrainingError, training_items

    index = TextIndex()
    for method in methods:
        try:
            items, _ = training_items(cfg, method)
        except TrainingError:
            if not skip_missing:
                raise
            continue
        index.methods.append(method)
        kind = SYNTHESIS_KIND.get(method)
        file = str(synthesis.records_path(cfg, kind)) if kind else "the stage-2 pairs (data.training_examples)"
        index_items(index, method, file, items)
    return index


def check_disjoint(cfg: Config, methods: Sequence[str] = METHODS) -> dict[str, Any]:
    """The overlaps of the profile's scored items with every method's stage-2 texts, and counts."""
    if cfg.data.source != "organism":
        raise ValueError(f"profile {cfg.profile!r}: the disjointness check is the organism's "
                         "(data.source: organism)")
    world = organism_config(cfg).world()
    items = scored_items(world, cfg.eval.general_items)
    index = training_index(cfg, methods)
    found = overlaps(world, items, index)
    by_skill = Counter(o.skill for o in found)
    items_hit = {s: len({o.position for o in found if o.skill == s}) for s in items}
    return {"texts": len(index.texts), "items": {s: len(v) for s, v in items.items()},
            "overlaps": found, "overlaps_by_skill": dict(by_skill), "items_hit": items_hit}


def decontaminated(cfg: Config) -> tuple[dict[str, list[dict]], dict[str, Any]]:
    """The items chapter 06 scores: the candidates (``scored_items``) less every item whose answer
    or key content occurs in a stage-2 text of a method whose training files exist (the world's
    two sides keep them apart by design; this drops what the organism's own sampled texts bring
    back, e.g. a fact about a person the sentence does not name). Also ``{"excluded": {skill:
    [positions]}, "scanned": [methods]}``, which results files keep. Cached while the records
    files stay as they are."""
    from .. import synthesis

    files = [synthesis.records_path(cfg, k) for k in ("rationale", "seqkd", "sdft")]
    state = (json.dumps(cfg.to_dict(), sort_keys=True),
             tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.is_file()))
    if state not in _DECONTAMINATED:
        _DECONTAMINATED.clear()
        _DECONTAMINATED[state] = _decontaminated(cfg)
    kept, scan = _DECONTAMINATED[state]
    return {s: list(v) for s, v in kept.items()}, json.loads(json.dumps(scan))


_DECONTAMINATED: dict[Any, tuple[dict[str, list[dict]], dict[str, Any]]] = {}


def _decontaminated(cfg: Config) -> tuple[dict[str, list[dict]], dict[str, Any]]:
    world = organism_config(cfg).world()
    items = scored_items(world, cfg.eval.general_items)
    index = training_index(cfg, METHODS, skip_missing=True)
    hit: dict[str, set[int]] = defaultdict(set)
    for o in overlaps(world, items, index):
        hit[o.skill].add(o.position)
    kept = {s: [it for i, it in enumerate(v) if i not in hit[s]] for s, v in items.items()}
    empty = [s for s, v in kept.items() if not v]
    if empty:
        raise ValueError(f"every scored {', '.join(empty)} item occurs in a stage-2 training text; "
                         "the evaluation cannot be disjoint (see evaluate.disjoint.check_disjoint)")
    return kept, {"excluded": {s: sorted(hit[s]) for s in items}, "scanned": list(index.methods)}


def describe(found: Sequence[Overlap], limit: int = 10) -> str:
    """A readable list of overlaps (first ``limit``), for an assertion message."""
    lines = [str(o) for o in found[:limit]]
    more = f"\n... and {len(found) - limit} more" if len(found) > limit else ""
    return "\n".join(lines) + more


__all__ = ["Overlap", "TextIndex", "check_disjoint", "decontaminated", "describe", "index_items", "item_keys",
           "overlaps", "scored_items", "training_index"]
