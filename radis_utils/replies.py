"""What a reply to a translation request contains: the translation, then (often) a rationale.

``split_reply`` cuts a reply into ``(translation, rationale)`` by one of the stated rules
``EXTRACTION_RULES`` (a profile picks one as ``eval.extraction``); chapter 02's analysis of the
rationales themselves lives in ``observation``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .config import EXTRACTION_RULES

__all__ = ["EXTRACTION_RULES", "seqkd_rule", "split_reply", "translation_agreement"]


def split_reply(reply: str, rule: str = "first_line") -> tuple[str, str]:
    """``(translation, rationale)`` of one reply; ``rationale`` is ``""`` when nothing follows."""
    text = reply.strip()
    if rule == "whole":
        return text, ""
    if rule == "first_line":
        head, _, rest = text.partition("\n")
    elif rule == "first_paragraph":
        head, _, rest = text.partition("\n\n")
    elif rule == "first_sentence":
        match = re.search(r"[.!?。](\s|$)", text)
        cut = match.end() if match else len(text)
        head, rest = text[:cut], text[cut:]
    else:
        raise ValueError(f"unknown extraction rule {rule!r}; known: {', '.join(EXTRACTION_RULES)}")
    return head.strip(), rest.strip()


def translation_agreement(replies: Sequence[str], references: Sequence[str], own: Sequence[str],
                          rule: str = "first_line") -> dict[str, int]:
    """How far replies follow a reference: of ``n`` replies, how many have the reference as their
    translation (under ``rule``), how many the backbone's ``own`` translation instead, and how
    many go on with a rationale. For SDFT's rewrites: does the model follow the guide it is given?"""
    if not len(replies) == len(references) == len(own):
        raise ValueError(f"replies, references and own differ in length: {len(replies)}, {len(references)}, {len(own)}")
    split = [split_reply(r, rule) for r in replies]
    return {
        "n": len(split),
        "translation = reference": sum(t == ref.strip() for (t, _), ref in zip(split, references)),
        "translation = own": sum(t == o.strip() for (t, _), o in zip(split, own)),
        "with a rationale": sum(bool(r) for _, r in split),
    }


def seqkd_rule(cfg: Any) -> str:
    """The rule that cuts Seq-KD's ``y'`` from the backbone's reply: ``whole`` (paper eq. 5 and app.
    A.1 train on the generated output itself; the default) or, with ``train.seqkd_own: translation``
    (a named variant, not the paper's), the profile's ``eval.extraction``."""
    return "whole" if cfg.train.seqkd_own == "whole" else cfg.eval.extraction
