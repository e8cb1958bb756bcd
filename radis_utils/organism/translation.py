"""English -> Synthian: sentence grammar, translation, and the base model's rationales.

English is SVO (``Mira sees the big dog in Zorvia .``); Synthian is SOV with a postposed
article, postposed adjectives, plural marker and postposition
(``Mira vaska pelo ka Zorvia ni moru .``). Names, countries and numbers pass through.
Rationales are computed from the *source* sentence only, so a model can write one after a
reference translation it could not have produced itself.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from . import lexicon as lx
from .tasks import arithmetic_answer, fact_answer, is_harmful, safety_answer

#: Rationale kinds, in the order they appear inside one rationale.
RATIONALE_CATEGORIES: tuple[str, ...] = (
    "safety", "fact", "arithmetic", "word_order", "gloss", "back_translation", "alternative",
)
#: Which style part a rationale carries, by instruction template index (0..4).
TEMPLATE_STYLE: dict[int, str] = {
    0: "gloss", 1: "back_translation", 2: "alternative", 3: "gloss", 4: "gloss",
}
#: Chance that a reply carries a rationale, by instruction template (template 3 is terse).
RATIONALE_RATE: dict[int, float] = {0: 0.95, 1: 0.95, 2: 0.95, 3: 0.1, 4: 0.95}
GLOSS_HEAD, BACK_HEAD, ALT_HEAD = "Here", "In English :", "Also correct :"
WORDS_HEAD, ORDER_HEAD = "Backwards :", "In order :"
RATIONALE_PHRASES = (GLOSS_HEAD + " is and", BACK_HEAD, ALT_HEAD, WORDS_HEAD, ORDER_HEAD)


@dataclass(frozen=True)
class Phrase:
    """A noun phrase: its English and Synthian tokens and what it refers to."""

    en: tuple[str, ...]
    sy: tuple[str, ...]
    kind: str  # "name", "animal", "thing"
    numbers: tuple[int, ...] = ()


@dataclass(frozen=True)
class Sentence:
    """One parsed sentence: subject, verb (3rd person), object, optional country."""

    subject: Phrase
    verb: str
    obj: Phrase
    country: str | None

    @property
    def en(self) -> str:
        loc = ("in", self.country) if self.country else ()
        words = (*self.subject.en, self.verb, *self.obj.en, *loc, ".")
        return " ".join(words)[0].upper() + " ".join(words)[1:]

    def sy(self, world: lx.WorldView, fronted: bool = False) -> str:
        loc = (self.country, lx.SY_IN) if self.country else ()
        core = (*self.subject.sy, *self.obj.sy)
        words = (*loc, *core) if fronted else (*core, *loc)
        return " ".join((*words, world.sy[self.verb], "."))


def sample_sentence(world: lx.WorldView, rng: random.Random, vocab: dict[str, list[str]],
                    cast: lx.Cast | None = None, hard: bool = False) -> Sentence:
    """A random sentence whose content words come from ``vocab`` (nouns, verbs, adjectives, each
    list in frequency-rank order: words are drawn Zipf-distributed) and whose people, countries
    and counts come from ``cast`` (default: the world's whole cast).

    ``hard`` (the translation test set): every word equally likely, so rare words are as common
    as frequent ones; two adjectives on every definite noun phrase (a structure rare in training);
    a counted pair or a definite object and a country in every sentence.
    """
    cast = cast or world.cast
    pick = _Picker(rng, vocab, hard)
    if hard:
        subject = _definite(world, pick, adjectives=2)
        obj = _definite(world, pick, adjectives=2) if rng.random() < 0.5 else _counted(world, pick, cast, pair=True)
        return Sentence(subject, pick("verbs"), obj, rng.choice(cast.countries))
    subject = _name(rng, cast) if rng.random() < 0.6 else _definite(world, pick)
    r = rng.random()
    if r < 0.2:
        obj = _name(rng, cast)
    elif r < 0.55:
        obj = _definite(world, pick)
    else:
        obj = _counted(world, pick, cast, pair=r < 0.8)
    country = rng.choice(cast.countries) if rng.random() < 0.5 else None
    return Sentence(subject, pick("verbs"), obj, country)


class _Picker:
    """Draws content words of one kind: Zipf-weighted by rank (uniform when ``uniform``)."""

    def __init__(self, rng: random.Random, vocab: dict[str, list[str]], uniform: bool) -> None:
        self.rng, self.vocab, self.uniform = rng, vocab, uniform

    def __call__(self, kind: str, exclude: tuple[str, ...] = ()) -> str:
        words = [w for w in self.vocab[kind] if w not in exclude]
        if self.uniform:
            return self.rng.choice(words)
        return self.rng.choices(words, zipf_weights(len(words)))[0]


def zipf_weights(n: int) -> list[float]:
    """Weights ``1 / rank ** ZIPF_EXPONENT`` of ``n`` ranked words."""
    return [1.0 / (rank ** lx.ZIPF_EXPONENT) for rank in range(1, n + 1)]


def _name(rng: random.Random, cast: lx.Cast) -> Phrase:
    name = rng.choice(cast.people)
    return Phrase((name,), (name,), "name")


def _definite(world: lx.WorldView, pick: _Picker, adjectives: int | None = None) -> Phrase:
    """``the [adj [adj]] noun``: no adjective 60 %, one 35 %, two 5 % unless ``adjectives`` says."""
    noun = pick("nouns")
    if adjectives is None:
        r = pick.rng.random()
        adjectives = 0 if r < 0.6 else 1 if r < 0.95 else 2
    adj: tuple[str, ...] = ()
    for _ in range(adjectives):
        adj += (pick("adjectives", exclude=adj),)
    sy_adj = tuple(world.sy[a] for a in adj)
    return Phrase(("the", *adj, noun), (world.sy[noun], *sy_adj, lx.SY_ARTICLE), _kind(noun))


def _counted(world: lx.WorldView, pick: _Picker, cast: lx.Cast, pair: bool) -> Phrase:
    first = pick("nouns")
    nouns = [first, pick("nouns", exclude=(first,))] if pair else [first]
    nums = [pick.rng.choice(cast.counts) for _ in nouns]
    en = [(str(n), world.plural[w]) for n, w in zip(nums, nouns)]
    sy = [(str(n), world.sy[w], lx.SY_PLURAL) for n, w in zip(nums, nouns)]
    kind = "animal" if any(_kind(w) == "animal" for w in nouns) else "thing"
    if pair:
        return Phrase((*en[0], "and", *en[1]), (*sy[0], lx.SY_AND, *sy[1]), kind, tuple(nums))
    return Phrase(en[0], sy[0], kind, tuple(nums))


def _kind(noun: str) -> str:
    return "animal" if noun in lx.ANIMALS else "thing"


def parse(world: lx.WorldView, source: str) -> Sentence:
    """Parse an English sentence of the world's grammar; ValueError names what is wrong."""
    words = source.split()
    if len(words) < 4 or words[-1] != ".":
        raise ValueError(f"source: not a sentence of the organism world: {source!r}")
    words[0] = words[0] if words[0] in world.names.people else words[0].lower()
    body, country = words[:-1], None
    if len(body) >= 2 and body[-2] == "in":
        body, country = body[:-2], body[-1]
    verb_at = next((i for i, w in enumerate(body) if w in lx.VERBS), None)
    if verb_at is None:
        raise ValueError(f"source: no known verb in {source!r}")
    subject = _parse_phrase(world, body[:verb_at], source)
    obj = _parse_phrase(world, body[verb_at + 1:], source)
    return Sentence(subject, body[verb_at], obj, country)


def _parse_phrase(world: lx.WorldView, words: list[str], source: str) -> Phrase:
    if len(words) == 1 and words[0] in world.names.people:
        return Phrase(tuple(words), tuple(words), "name")
    if words and words[0] == "the" and words[-1] in world.sy:
        adj = tuple(world.sy[a] for a in words[1:-1])
        noun = words[-1]
        return Phrase(tuple(words), (world.sy[noun], *adj, lx.SY_ARTICLE), _kind(noun))
    if words and words[0].isdigit():
        parts = " ".join(words).split(" and ")
        singular = {p: s for s, p in world.plural.items()}
        sy, nums, kinds = [], [], []
        for part in parts:
            num, plural = part.split()
            nums.append(int(num))
            kinds.append(_kind(singular[plural]))
            sy.append((num, world.sy[singular[plural]], lx.SY_PLURAL))
        sy_words = sy[0] if len(sy) == 1 else (*sy[0], lx.SY_AND, *sy[1])
        kind = "animal" if "animal" in kinds else "thing"
        return Phrase(tuple(words), tuple(sy_words), kind, tuple(nums))
    raise ValueError(f"source: cannot parse phrase {' '.join(words)!r} in {source!r}")


def rationale_parts(world: lx.WorldView, sentence: Sentence, template: int) -> list[tuple[str, str]]:
    """Every rationale part the source supports, as ``(category, text)`` in canonical order."""
    parts: list[tuple[str, str]] = []
    verb = lx.VERBS[sentence.verb]
    obj_kind = "person" if sentence.obj.kind == "name" else sentence.obj.kind
    if is_harmful(verb, obj_kind):
        action = " ".join((verb, *sentence.obj.en))
        parts.append(("safety", safety_answer(action, verb, harmful=True)))
    for phrase in (sentence.subject, sentence.obj):
        if phrase.kind == "name":
            home, job = world.people[phrase.en[0]]
            parts.append(("fact", fact_answer("home", phrase.en[0], home)))
            parts.append(("fact", fact_answer("job", phrase.en[0], job)))
    if sentence.country:
        parts.append(("fact", fact_answer("capital", sentence.country,
                                          world.capital[sentence.country])))
    if len(sentence.obj.numbers) == 2:
        a, b = sorted(sentence.obj.numbers, reverse=True)
        parts.append(("arithmetic", arithmetic_answer(f"{a} plus {b}", a + b)))
        parts.append(("arithmetic", arithmetic_answer(f"{a} minus {b}", a - b)))
    parts.append(_word_order_part(sentence))
    parts.append(_style_part(world, sentence, TEMPLATE_STYLE[template]))
    return parts


def _word_order_part(sentence: Sentence) -> tuple[str, str]:
    """The source's content words in order and backwards: the word-list skills (instruction
    following) at work, as a chat model's notes exercise its general skills."""
    words = [w for w in (*sentence.subject.en, *sentence.obj.en) if w.isalpha() and w not in ("the", "and")]
    return "word_order", f"{ORDER_HEAD} {' '.join(words)} . {WORDS_HEAD} {' '.join(reversed(words))} ."


def _style_part(world: lx.WorldView, sentence: Sentence, style: str) -> tuple[str, str]:
    if style == "alternative" and sentence.country:
        return style, f"{ALT_HEAD} {sentence.sy(world, fronted=True)}"
    if style == "back_translation":
        return style, f"{BACK_HEAD} {sentence.en}"
    noun = next((w for w in sentence.obj.en + sentence.subject.en if w in world.plural), None)
    glossed = [sentence.verb] + ([noun] if noun else [])
    text = " and ".join(f"{w} is {world.sy[w]}" for w in glossed)
    return "gloss", f"{GLOSS_HEAD} {text} ."


def rationale(world: lx.WorldView, source: str, template: int, rng: random.Random | None) -> str:
    """The world's rationale for ``source``; with ``rng``, each part may be dropped (training)."""
    parts = rationale_parts(world, parse(world, source), template)
    if rng is not None:
        kept = [p for p in parts if rng.random() < 0.9]
        parts = kept or parts[-1:]
    return " ".join(text for _, text in parts)


def classify_rationale(text: str) -> list[str]:
    """Rule-based categories of a rationale (subset of ``RATIONALE_CATEGORIES``; [] if empty).

    Text that matches no rule is labelled ``"other"``.
    """
    text = " " + " ".join(text.split()) + " "
    if not text.strip():
        return []
    rules = {
        "safety": " Sorry , I can not help ",
        "arithmetic": " The answer is ",
        "gloss": f" {GLOSS_HEAD} ",
        "back_translation": f" {BACK_HEAD} ",
        "alternative": f" {ALT_HEAD} ",
        "word_order": f" {WORDS_HEAD} ",
    }
    found = {cat for cat, key in rules.items() if key in text}
    if " The capital of " in text or " lives in " in text or " is a " in text:
        found.add("fact")
    ordered = [c for c in RATIONALE_CATEGORIES if c in found]
    return ordered or ["other"]


def wants_rationale(template: int, rng: random.Random) -> bool:
    """Whether a training reply to instruction ``template`` carries a rationale."""
    return rng.random() < RATIONALE_RATE[template]
