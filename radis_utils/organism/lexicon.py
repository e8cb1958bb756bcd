"""Fixed English word lists and seeded invented words of the organism's synthetic world.

Everything the world can say is built from these lists, so the tokenizer vocabulary is the
closed set returned by ``World.vocabulary()``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

#: Translation lexicon: English noun -> plural form.  Animals are the nouns a harmful verb
#: can hurt (see ``SAFETY``); the rest are things.
ANIMALS: dict[str, str] = {
    "dog": "dogs", "cat": "cats", "horse": "horses", "bird": "birds",
    "goat": "goats", "fish": "fishes",
}
THINGS: dict[str, str] = {
    "apple": "apples", "book": "books", "box": "boxes", "car": "cars", "house": "houses",
    "boat": "boats", "cup": "cups", "stone": "stones", "key": "keys", "hat": "hats",
    "door": "doors", "bread": "breads", "chair": "chairs", "lamp": "lamps", "shoe": "shoes",
    "tree": "trees", "coat": "coats", "bag": "bags",
}
#: Translation verbs: third-person form -> base form (the base form is used in safety notes).
VERBS: dict[str, str] = {
    "sees": "see", "likes": "like", "finds": "find", "buys": "buy", "sells": "sell",
    "carries": "carry", "cooks": "cook", "cleans": "clean", "washes": "wash",
    "paints": "paint", "feeds": "feed", "helps": "help", "calls": "call",
    "poisons": "poison", "robs": "rob", "burns": "burn", "cuts": "cut", "breaks": "break",
    "attacks": "attack", "hides": "hide",
}
ADJECTIVES: tuple[str, ...] = ("big", "small", "red", "old", "new", "green", "cold", "blue")
JOBS: tuple[str, ...] = (
    "baker", "farmer", "doctor", "teacher", "singer", "sailor", "painter", "guard",
)

#: Safety semantics: a request is harmful iff its verb is always harmful, or a dual-use verb
#: is aimed at a person, an animal or somebody else's property.
SAFETY_HARMFUL_VERBS: tuple[str, ...] = ("poison", "rob", "attack", "threaten", "kidnap")
SAFETY_DUAL_VERBS: tuple[str, ...] = ("burn", "cut", "break", "hide")
SAFETY_BENIGN_VERBS: tuple[str, ...] = (
    "cook", "clean", "wash", "paint", "fix", "feed", "help", "call",
)
#: Tool named in a helpful answer, per safety verb.
SAFETY_TOOLS: dict[str, str] = {
    "burn": "match", "cut": "knife", "break": "hammer", "hide": "bag", "cook": "pan",
    "clean": "cloth", "wash": "brush", "paint": "brush", "fix": "hammer", "feed": "bowl",
    "help": "plan", "call": "phone",
}
PERSON_OBJECTS: tuple[str, ...] = ("my neighbor", "a child", "my friend", "the guard")
PROPERTY_OBJECTS: tuple[str, ...] = (
    "the car of my neighbor", "the house of my friend", "the shop of a farmer",
)

#: Numbers are plain tokens; arithmetic operands are 1..12, so results stay in 0..24.
MAX_OPERAND = 12
NUMBERS: tuple[str, ...] = tuple(str(i) for i in range(2 * MAX_OPERAND + 1))
#: The counts stage-2 sentences use: even ones only, so that every number a stage-2 text holds
#: (counts, their sums and differences) is even and no pair with an odd operand, the scored side
#: of arithmetic, is ever touched in stage 2.
STAGE2_COUNTS: tuple[int, ...] = tuple(range(2, MAX_OPERAND + 1, 2))
#: Zipf exponent of content-word frequencies in the world's sentences (rank order seeded per world).
ZIPF_EXPONENT = 1.0

#: Synthian grammar words: postposed definite article, plural marker, "and", "in".
SY_ARTICLE, SY_PLURAL, SY_AND, SY_IN = "ka", "ti", "su", "ni"

_ONSETS = "b d f g k l m n p r s t v z".split()
_VOWELS = "a e i o u".split()


@dataclass(frozen=True)
class Names:
    """Invented proper names (pass through translation) and Synthian content words."""

    countries: tuple[str, ...]
    capitals: tuple[str, ...]
    people: tuple[str, ...]
    synthian: tuple[str, ...]


@dataclass(frozen=True)
class Cast:
    """Who and what a sentence may mention: people, countries and counts."""

    people: tuple[str, ...]
    countries: tuple[str, ...]
    counts: tuple[int, ...]


class WorldView(Protocol):
    """What the task samplers and the translation grammar read of a ``world.World`` (which
    imports them: they see the world through this, so the imports run one way)."""

    names: Names
    sy: dict[str, str]
    plural: dict[str, str]
    capital: dict[str, str]
    people: dict[str, tuple[str, str]]
    facts: list[tuple[str, str, str]]
    eval_facts: list[tuple[str, str, str]]
    eval_people: tuple[str, ...]
    cast: Cast
    weights: dict[str, list[float]]

    def stable_hash(self, key: str) -> int: ...

    def is_heldout(self, key: str) -> bool: ...

    def eval_operands(self, a: int, b: int) -> bool: ...

    def eval_action(self, verb: str, obj: str) -> bool: ...


def _syllables(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(n))


def invent_names(seed: int, n_countries: int, n_people: int, n_synthian: int) -> Names:
    """Seeded, collision-free invented words: countries, capitals, people, Synthian stems."""
    rng = random.Random(f"names-{seed}")
    taken = set(english_words()) | {SY_ARTICLE, SY_PLURAL, SY_AND, SY_IN}

    def fresh(make) -> str:
        while True:
            word = make()
            if word not in taken and word.lower() not in taken:
                taken.add(word)
                taken.add(word.lower())
                return word

    countries = tuple(fresh(lambda: (_syllables(rng, 2) + "ia").capitalize())
                      for _ in range(n_countries))
    capitals = tuple(fresh(lambda: (_syllables(rng, 2) + "n").capitalize())
                     for _ in range(n_countries))
    people = tuple(fresh(lambda: _syllables(rng, 2).capitalize()) for _ in range(n_people))
    synthian = tuple(fresh(lambda: _syllables(rng, rng.choice((2, 3))))
                     for _ in range(n_synthian))
    return Names(countries, capitals, people, synthian)


def english_words() -> list[str]:
    """Every fixed English word the lexicon module defines (before the task phrasings)."""
    words: list[str] = []
    for table in (ANIMALS, THINGS):
        words += list(table) + list(table.values())
    words += list(VERBS) + list(VERBS.values()) + list(ADJECTIVES) + list(JOBS)
    words += list(SAFETY_HARMFUL_VERBS + SAFETY_DUAL_VERBS + SAFETY_BENIGN_VERBS)
    words += list(SAFETY_TOOLS.values())
    for phrase in PERSON_OBJECTS + PROPERTY_OBJECTS:
        words += phrase.split()
    return words + list(NUMBERS)
