"""The process a run happens in: threads and seeds, progress bars, and what it ran on.

``apply_runtime`` is the one call a chapter's setup cell makes after loading its profile;
``versions`` and ``device_name`` are what every results file and version report records;
``lazy_names`` keeps a package's heavy modules (torch's Llama, Transformers' trainer) unloaded
until a name from them is used, so that a chapter's start stays cheap.
"""

from __future__ import annotations

import importlib
import os
import platform
import random
import sys
import warnings
from importlib import metadata
from typing import Any, Callable

from .config import Config


#: Set to 1 (the book job does) to silence progress bars, e.g. in executed notebooks.
QUIET_ENV = "RADIS_QUIET"


def progress(iterable: Any = None, desc: str = "", total: int | None = None, **kwargs: Any) -> Any:
    """A ``tqdm.auto`` bar for a long loop (widget in Jupyter, text on a terminal), off when
    ``RADIS_QUIET=1``; it leaves no trace when done."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False,
                disable=os.environ.get(QUIET_ENV, "") == "1", **kwargs)


def apply_runtime(cfg: Config) -> None:
    """Set torch threads and seeds as the profile asks (call once, in a chapter's setup cell);
    quiet loading, and tables that show every cell in full."""
    import numpy as np
    import pandas as pd
    import torch

    pd.set_option("display.max_colwidth", None)  # a verdict or a rationale cut at "..." hides what it says

    warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without widgets
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # chapters show results, not loading chatter
    hf_logging.disable_progress_bar()
    if cfg.runtime.threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(cfg.runtime.threads))
        torch.set_num_threads(cfg.runtime.threads)
    random.seed(cfg.runtime.seed)
    np.random.seed(cfg.runtime.seed)
    torch.manual_seed(cfg.runtime.seed)


def versions(packages: tuple[str, ...] = (
    "radis-book", "torch", "transformers", "peft", "accelerate", "tokenizers", "sacrebleu",
)) -> dict[str, str]:
    """Installed versions of the packages that shape results ('-' when absent)."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "-"
    return out


def device_name() -> str:
    """A human name for the compute device torch will use."""
    import torch

    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        return f"{n} x {torch.cuda.get_device_name(0)}"
    return f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def lazy_names(module: str, home: dict[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``module``: each name of ``home`` is imported from the
    module ``home`` names (absolute) on first use and then kept in ``module``'s namespace.

    Used where importing eagerly would load torch's or Transformers' heavy stacks for readers that
    only need a config hash or a saved summary (``organism``, ``train``)."""
    def __getattr__(name: str) -> Any:
        if name not in home:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home[name]), name)
        setattr(sys.modules[module], name, value)
        return value

    return __getattr__
