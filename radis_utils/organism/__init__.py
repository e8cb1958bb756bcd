"""The model organism: a tiny chat LLM trained from scratch in a synthetic world.

It stands in for a real chat backbone in the book's ``ci`` profile and shows the paper's
phenomena for real: general skills (arithmetic, facts, safety, instruction following), a
weak English->Synthian translation skill, and replies that put a rationale after the
translation. ``build_organism`` trains it once and caches it on disk by config hash.
"""

from __future__ import annotations

from ..runtime import lazy_names

#: Where each public name lives. Loaded on first use, so that reading a config hash or the world
#: (pure Python) does not import torch and Transformers' Llama, which only building needs.
_HOME: dict[str, str] = {
    "OrganismConfig": "spec", "organism_config": "spec", "DEFAULT_MIXTURE": "spec",
    "build_organism": "build", "is_complete": "build", "train_organism": "build",
    "score_general": "skills", "score_translation": "skills", "translation_metrics": "skills",
    "translation_replies": "skills", "build_tokenizer": "tokenizer",
    "encode_dialogues": "training", "pack": "training", "train_loop": "training",
    "RATIONALE_CATEGORIES": "translation", "classify_rationale": "translation", "World": "world",
}
__all__ = list(_HOME)
__getattr__ = lazy_names(__name__, {name: f"{__name__}.{module}" for name, module in _HOME.items()})


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))
