"""The model organism: a tiny chat LLM trained from scratch in a synthetic world.

It stands in for a real chat backbone in the book's ``ci`` profile and shows the paper's
phenomena for real: general skills (arithmetic, facts, safety, instruction following), a
weak English->Synthian translation skill, and replies that put a rationale after the
translation. ``build_organism`` trains it once and caches it on disk by config hash.
"""

from .build import OrganismConfig, build_organism, is_complete, organism_config, train_organism
from .skills import (
    score_general,
    score_translation,
    translation_metrics,
    translation_replies,
)
from .tokenizer import build_tokenizer
from .training import encode_dialogues, pack, train_loop
from .translation import RATIONALE_CATEGORIES, classify_rationale
from .world import World

__all__ = [
    "OrganismConfig", "organism_config", "World", "build_tokenizer", "build_organism", "train_organism",
    "is_complete", "score_general", "score_translation", "translation_metrics",
    "translation_replies", "classify_rationale", "RATIONALE_CATEGORIES",
    "encode_dialogues", "pack", "train_loop",
]
