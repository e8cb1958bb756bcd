"""radis-book: the package behind the RaDis book (profiles, prompts, models, pipeline stages)."""

import logging
import warnings

# tqdm.auto warns once at import when notebook widgets are missing; the book's pages need no
# widgets, so the warning would only clutter every executed chapter.
warnings.filterwarnings("ignore", message="IProgress not found")
# Two import-time notices that say nothing about a run: bitsandbytes' CPU kernels (installed for
# the QLoRA tests, unused on CPU) and peft touching attributes that transformers 5 renamed.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*is deprecated and will be removed in v6")

__version__ = "0.1.0"
