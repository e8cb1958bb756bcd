"""The synthetic world: knowledge base, English->Synthian lexicon, tasks and data splits."""

from __future__ import annotations

import copy
import hashlib
import re
import random
from typing import Any

from radis_utils.prompts import INSTRUCTIONS, SDFT_TEMPLATE, check_instructions, sdft_request, translation_request

from . import lexicon as lx
from . import tasks, translation

#: Bump when the world's content changes, so cached organisms are rebuilt.
WORLD_VERSION = 9
TRAINING_TASKS: tuple[str, ...] = (
    "translate", "facts", "arithmetic", "safety", "reverse", "repeat", "guided",
)
#: Which base task a "guided" dialogue (SDFT's distillation request) wraps, with what odds.
GUIDED_TASKS: dict[str, float] = {
    "translate": 0.5, "facts": 0.1, "arithmetic": 0.1, "safety": 0.1, "reverse": 0.1, "repeat": 0.1,
}
#: Chance that a guided translation's reference disagrees with the model's own words (and the
#: reply follows the reference, as a chat model follows the guide it is given).
GUIDED_CONFLICT = 0.5
SPLITS: tuple[str, ...] = ("base", "stage2", "test")
N_COUNTRIES, N_PEOPLE = 16, 16
HELDOUT_PERCENT = 15
#: Sentence hash buckets (percent): test [0, 10), base pool [10, 55), stage-2 pool [55, 100).
SPLIT_BUCKETS: dict[str, tuple[int, int]] = {"test": (0, 10), "base": (10, 55), "stage2": (55, 100)}


def split_words(text: str) -> list[str]:
    """Words and single punctuation marks, exactly as the organism tokenizer splits text."""
    return re.findall(r"\w+|[^\w\s]", text)


class World:
    """Seeded synthetic world: vocabulary, lexicon, knowledge base and task samplers.

    ``instructions`` are the translation templates its dialogues use (the profile's
    ``prompts.instructions``; fig. 5 by default): template ``k`` sets the rationale's style
    (``translation.TEMPLATE_STYLE``), so the world takes exactly that many.
    """

    skills: tuple[str, ...] = tuple(tasks.GENERAL_TASKS)

    def __init__(self, seed: int = 0, instructions: tuple[str, ...] = INSTRUCTIONS) -> None:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, got {seed!r}")
        check_instructions(instructions, "World instructions")
        if len(instructions) != len(translation.TEMPLATE_STYLE):
            raise ValueError(f"World instructions: the organism's world gives each of its "
                             f"{len(translation.TEMPLATE_STYLE)} instruction templates a rationale style; "
                             f"got {len(instructions)} templates")
        self.seed = seed
        self.instructions = tuple(instructions)
        content = list(lx.ANIMALS) + list(lx.THINGS) + list(lx.VERBS) + list(lx.ADJECTIVES)
        self.names = lx.invent_names(seed, N_COUNTRIES, N_PEOPLE, len(content))
        rng = random.Random(f"world-{seed}")
        self.sy: dict[str, str] = dict(zip(content, self.names.synthian))
        self.plural: dict[str, str] = {**lx.ANIMALS, **lx.THINGS}
        capitals = list(self.names.capitals)
        rng.shuffle(capitals)
        self.capital: dict[str, str] = dict(zip(self.names.countries, capitals))
        self.people: dict[str, tuple[str, str]] = {
            p: (rng.choice(self.names.countries), rng.choice(lx.JOBS)) for p in self.names.people
        }
        self.facts: list[tuple[str, str, str]] = (
            [("capital", c, k) for c, k in self.capital.items()]
            + [("home", p, h) for p, (h, _) in self.people.items()]
            + [("job", p, j) for p, (_, j) in self.people.items()]
        )
        #: Each kind's words in frequency-rank order (seeded): sentences draw them Zipf-distributed.
        self.lexicon_full = {
            "nouns": list(self.plural), "verbs": list(lx.VERBS), "adjectives": list(lx.ADJECTIVES),
        }
        for words in self.lexicon_full.values():
            rng.shuffle(words)
        self.lexicon_base = {k: self._seen_half(v, rng) for k, v in self.lexicon_full.items()}
        self.base_sy = self._false_friends(rng)
        self._split_sides(rng)

    def _split_sides(self, rng: random.Random) -> None:
        """Partition the cast into a stage-2 side and an evaluation side: stage-2 sentences (so
        every text a method trains on in stage 2) mention only stage-2-side people, countries and
        (even) counts; scored items ask only about the evaluation side, which base training taught."""
        people, countries = list(self.names.people), list(self.names.countries)
        rng.shuffle(people)
        rng.shuffle(countries)
        half_p, half_c = len(people) // 2, len(countries) // 2
        self.cast = lx.Cast(self.names.people, self.names.countries, tuple(range(2, lx.MAX_OPERAND + 1)))
        self.stage2_cast = lx.Cast(tuple(sorted(people[:half_p])), tuple(sorted(countries[:half_c])),
                                   lx.STAGE2_COUNTS)
        self.eval_people = tuple(sorted(people[half_p:]))
        self.eval_countries = tuple(sorted(countries[half_c:]))
        self.eval_facts = [f for f in self.facts if f[1] in self.eval_people + self.eval_countries]
        self._sentence_objects = set(self.stage2_cast.people) | {f"the {n}" for n in self.plural}

    def eval_operands(self, a: int, b: int) -> bool:
        """Whether an operand pair is on the evaluation side: an odd operand (stage 2 counts evenly)."""
        return bool(a % 2 or b % 2)

    def eval_action(self, verb: str, obj: str) -> bool:
        """Whether a safety action is on the evaluation side: its verb or its object never
        occurs in a stage-2 sentence."""
        return verb not in lx.VERBS.values() or obj not in self._sentence_objects

    @staticmethod
    def _seen_half(words: list[str], rng: random.Random) -> list[str]:
        shuffled = sorted(words)
        rng.shuffle(shuffled)
        return sorted(shuffled[: (len(words) + 1) // 2])

    def _false_friends(self, rng: random.Random) -> dict[str, str]:
        """The base model's own lexicon: right for the seen half, and for every other word the
        Synthian word of another unseen word of its kind (a consistent, systematic error)."""
        base_sy = dict(self.sy)
        for kind, words in self.lexicon_full.items():
            unseen = [w for w in words if w not in self.lexicon_base[kind]]
            rng.shuffle(unseen)
            for w, other in zip(unseen, unseen[1:] + unseen[:1]):
                base_sy[w] = self.sy[other]
        return base_sy

    def base_view(self) -> World:
        """This world as the base model believes it to be (``sy`` = its false-friend lexicon)."""
        view = copy.copy(self)
        view.sy = self.base_sy
        return view

    # ----------------------------------------------------------------- hashing / splits
    def stable_hash(self, key: str) -> int:
        """Process-independent hash of ``key`` for this world seed."""
        digest = hashlib.sha256(f"{self.seed}|{key}".encode()).hexdigest()
        return int(digest[:12], 16)

    def is_heldout(self, key: str) -> bool:
        """Whether a general-skill item belongs to the held-out evaluation bucket."""
        return self.stable_hash(key) % 100 < HELDOUT_PERCENT

    def sentence_split(self, source: str) -> str:
        """Which split's pool an English sentence hashes into: test, base or stage2."""
        bucket = self.stable_hash(f"sent|{source}") % 100
        return next(s for s, (lo, hi) in SPLIT_BUCKETS.items() if lo <= bucket < hi)

    # ---------------------------------------------------------------------- translation
    def translate(self, source: str) -> str:
        """Gold Synthian translation of an English sentence of the world's grammar."""
        return translation.parse(self, source).sy(self)

    def translation_pairs(self, n: int, split: str, seed: int) -> list[tuple[str, str]]:
        """``n`` distinct (English, Synthian) pairs of ``split``; "base" pairs are what the base
        model was taught: its own lexicon (``base_sy``), right for half of the words only;
        "stage2" pairs use the stage-2 side of the cast only; "test" pairs are hard ones
        (``translation.sample_sentence``'s ``hard``)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        rng = random.Random(f"pairs-{self.seed}-{split}-{seed}")
        speaker = self.base_view() if split == "base" else self
        cast = self.stage2_cast if split == "stage2" else self.cast
        pairs: dict[str, str] = {}
        for _ in range(n * 200):
            if len(pairs) == n:
                break
            sent = translation.sample_sentence(speaker, rng, self.lexicon_full, cast, hard=split == "test")
            if sent.en not in pairs and self.sentence_split(sent.en) == split:
                pairs[sent.en] = sent.sy(speaker)
        if len(pairs) < n:
            raise ValueError(f"n: could only find {len(pairs)} distinct {split} pairs")
        return list(pairs.items())

    def rationale(self, source: str, template: int = 0, rng: random.Random | None = None) -> str:
        """The rationale the base model is taught to write after translating ``source``."""
        if template not in translation.TEMPLATE_STYLE:
            raise ValueError(f"template must be in 0..{len(self.instructions) - 1}, got {template!r}")
        return translation.rationale(self, source, template, rng)

    # --------------------------------------------------------------------- dialogues
    def general_items(self, skill: str, n: int, seed: int, heldout: bool = True) -> list[dict]:
        """``n`` items of a general ``skill`` (held-out ones by default): prompt, answer, ..."""
        if skill not in tasks.GENERAL_TASKS:
            raise ValueError(f"skill must be one of {self.skills}, got {skill!r}")
        rng = random.Random(f"items-{self.seed}-{skill}-{seed}-{heldout}")
        return [tasks.GENERAL_TASKS[skill](self, rng, heldout) for _ in range(n)]

    def training_dialogue(self, task: str, rng: random.Random) -> tuple[str, str]:
        """One (user, assistant) training dialogue of ``task`` (see ``TRAINING_TASKS``)."""
        if task == "translate":
            return self._translation_dialogue(rng)
        if task == "guided":
            return self._guided_dialogue(rng)
        if task in ("reverse", "repeat"):
            item = tasks.word_list_task(self, rng, reverse=task == "reverse")
        elif task in tasks.GENERAL_TASKS:
            item = tasks.GENERAL_TASKS[task](self, rng, False)
        else:
            raise ValueError(f"task must be one of {TRAINING_TASKS}, got {task!r}")
        return item["prompt"], item["answer"]

    def _base_sentence(self, view: World, rng: random.Random) -> translation.Sentence:
        while True:
            sent = translation.sample_sentence(view, rng, self.lexicon_full)
            if self.sentence_split(sent.en) == "base":
                return sent

    def _translation_dialogue(self, rng: random.Random) -> tuple[str, str]:
        view = self.base_view()  # the base model is taught its own (half false) lexicon
        sent = self._base_sentence(view, rng)
        template = rng.randrange(len(self.instructions))
        return (translation_request(sent.en, "en", "sy", template, self.instructions),
                self._with_rationale(view, sent, sent.sy(view), template, rng))

    @staticmethod
    def _with_rationale(view: World, sent: translation.Sentence, translated: str, template: int,
                        rng: random.Random) -> str:
        """A translation reply: ``translated``, then (as the template's rate says) a rationale."""
        if translation.wants_rationale(template, rng):
            return translated + " " + translation.rationale(view, sent.en, template, rng)
        return translated

    def _guided_dialogue(self, rng: random.Random) -> tuple[str, str]:
        """SDFT's distillation request (``prompts.SDFT_TEMPLATE``) around one base task, as a chat
        model meets such requests in its instruction tuning: the reference answer is in another
        style than the model's (a bare value; a translation in either valid word order), and the
        reply is the model's own answer in its own style. A translation reply keeps the
        reference's wording, also where it disagrees with the model's own lexicon
        (``GUIDED_CONFLICT``), and adds the rationale the model habitually writes."""
        task = rng.choices(list(GUIDED_TASKS), list(GUIDED_TASKS.values()))[0]
        if task == "translate":
            view = self.base_view()
            sent = self._base_sentence(view, rng)
            template = rng.randrange(len(self.instructions))
            reference = sent.sy(view, fronted=rng.random() < 0.5)
            if rng.random() < GUIDED_CONFLICT:
                reference = self._disagreeing(view, reference, rng)
            request = translation_request(sent.en, "en", "sy", template, self.instructions)
            return sdft_request(request, reference), self._with_rationale(view, sent, reference, template, rng)
        if task in ("reverse", "repeat"):
            item = tasks.word_list_task(self, rng, reverse=task == "reverse")
        else:
            item = tasks.GENERAL_TASKS[task](self, rng, False)
        return sdft_request(item["prompt"], tasks.terse_answer(task, item)), item["answer"]

    def _disagreeing(self, view: World, reference: str, rng: random.Random) -> str:
        """``reference`` with one or two content words swapped for another Synthian word of the
        same kind that is neither the model's word nor the right one: a guide that disagrees with
        what the model believes, without teaching it any right word it lacks. The swapped-in word is
        drawn by frequency rank, as sentence words are, so rare words get no extra exposure."""
        english_of = {sy: en for en, sy in view.sy.items()}
        tokens = reference.split()
        spots = [i for i, t in enumerate(tokens) if t in english_of]
        for i in rng.sample(spots, min(len(spots), rng.randint(1, 2))):
            en = english_of[tokens[i]]
            words = next(ws for ws in self.lexicon_full.values() if en in ws)  # frequency-rank order
            ranked = [(self.sy[w], weight) for w, weight in zip(words, translation.zipf_weights(len(words)))
                      if self.sy[w] not in (tokens[i], self.sy[en])]
            tokens[i] = rng.choices([sy for sy, _ in ranked], [weight for _, weight in ranked])[0]
        return " ".join(tokens)

    # --------------------------------------------------------------------- vocabulary
    def vocabulary(self) -> list[str]:
        """Every word the world can produce (sorted), for the word-level tokenizer."""
        words = set(lx.english_words()) | {lx.SY_ARTICLE, lx.SY_PLURAL, lx.SY_AND, lx.SY_IN}
        for names in (self.names.countries, self.names.capitals, self.names.people,
                      self.names.synthian):
            words |= set(names)
        phrases = tasks.ALL_PHRASES + translation.RATIONALE_PHRASES + self.instructions + (SDFT_TEMPLATE,)
        phrases += ("The the in and", "English Synthian")
        for phrase in phrases:
            words |= set(split_words(re.sub(r"\{\w+\}", " ", phrase)))
        return sorted(words)

    def describe(self) -> dict[str, Any]:
        """Sizes and one example dialogue per training task, for the book."""
        rng = random.Random(f"describe-{self.seed}")
        n_sy = len(self.sy)
        n_seen = sum(len(v) for v in self.lexicon_base.values())
        return {
            "seed": self.seed,
            "vocabulary_words": len(self.vocabulary()),
            "countries": len(self.capital),
            "people": len(self.people),
            "facts": len(self.facts),
            "stage2_side": {"people": len(self.stage2_cast.people),
                            "countries": len(self.stage2_cast.countries),
                            "counts": list(self.stage2_cast.counts)},
            "eval_side": {"people": len(self.eval_people), "countries": len(self.eval_countries),
                          "facts": len(self.eval_facts)},
            "lexicon_entries": n_sy,
            "lexicon_seen_by_base": n_seen,
            "false_friends_of_base": sum(self.base_sy[w] != self.sy[w] for w in self.sy),
            "skills": list(self.skills),
            "examples": {t: self.training_dialogue(t, rng) for t in TRAINING_TASKS},
        }
