"""The language codes the toolkit knows (layer 0: the config checks directions against them)."""

from __future__ import annotations

#: ISO code -> English name, for the paper's languages (cs, de, ru, zh <-> en) and the
#: model organism's synthetic language (``sy``, see ``radis_utils.organism``).
LANGUAGE_NAMES: dict[str, str] = {
    "cs": "Czech",
    "de": "German",
    "en": "English",
    "ru": "Russian",
    "zh": "Chinese",
    "sy": "Synthian",
}
