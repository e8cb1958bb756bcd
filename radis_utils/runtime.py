"""The process a run happens in: threads and seeds, progress bars, and what it ran on.

``apply_runtime`` is the one call a chapter's setup cell makes after loading its profile;
``versions``, ``device_name`` and ``model_device`` are what every results file and version report
records; ``device`` is the one device policy the loader applies;
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
from typing import Any, Callable, Sequence

from .config import Config, ConfigError


#: Set to 1 (the book job does) to silence progress bars, e.g. in executed notebooks.
QUIET_ENV = "RADIS_QUIET"


def progress(iterable: Any = None, desc: str = "", total: int | None = None, **kwargs: Any) -> Any:
    """A ``tqdm.auto`` bar for a long loop (widget in Jupyter, text on a terminal), off when
    ``RADIS_QUIET=1``; it leaves no trace when done."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False,
                disable=os.environ.get(QUIET_ENV, "") == "1", **kwargs)


def unknown_parameters(history: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(unknown, declared)``: the names papermill's injected cell (it starts ``# Parameters``)
    sets that the cell run just before it, the chapter's ``parameters`` cell, does not, and the
    names that one does; both empty when nothing was injected."""
    import ast

    def assigned(source: str) -> set[str]:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return set()
        return {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}

    for i, cell in enumerate(history):
        if i > 0 and cell.lstrip().startswith("# Parameters"):
            declared = assigned(history[i - 1])
            return sorted(assigned(cell) - declared), sorted(declared)
    return [], []


def check_injected_parameters() -> None:
    """In a chapter papermill runs, refuse a parameter the chapter does not have (papermill only
    warns, and a misspelt ``-p PROFIEL smol`` would run the chapter at its default profile)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    unknown, declared = unknown_parameters([str(c) for c in shell.user_ns.get("In", [])])
    if unknown:
        import difflib

        close = {u: difflib.get_close_matches(u, declared, n=1) for u in unknown}
        hints = "; ".join(f"{u}: did you mean {c[0]}?" for u, c in close.items() if c)
        raise ConfigError(f"papermill parameter(s) {unknown} are not this chapter's; its parameters cell "
                          f"defines {', '.join(declared)}" + (f" ({hints})" if hints else ""))


def apply_runtime(cfg: Config) -> None:
    """Set torch threads and seeds as the profile asks (call once, in a chapter's setup cell);
    quiet loading, and tables that show every cell in full. In a chapter papermill runs, first
    refuse parameters the chapter does not have (``check_injected_parameters``)."""
    check_injected_parameters()
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


#: The device policy's switch: ``auto`` (the default: CUDA when available, else the CPU), ``cpu``,
#: ``cuda`` (the local rank's GPU under a distributed launch) or ``cuda:<n>``.
DEVICE_ENV = "RADIS_DEVICE"


def device() -> str:
    """Where models run, by the one device policy (``RADIS_DEVICE``, default ``auto``): ``"cpu"``
    or ``"cuda:<n>"``, ``n`` being ``LOCAL_RANK`` under ``accelerate launch`` / ``torchrun``.
    Asking for CUDA where there is none is an error, not a silent fallback."""
    import torch

    want = os.environ.get(DEVICE_ENV, "auto").strip().lower() or "auto"
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cpu":
        return want
    if want == "cuda":
        want = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    if not want.startswith("cuda:") or not want[5:].isdigit():
        raise ValueError(f"{DEVICE_ENV}={os.environ.get(DEVICE_ENV)!r}: use auto, cpu, cuda or cuda:<n>")
    if not torch.cuda.is_available():
        raise RuntimeError(f"{DEVICE_ENV} asks for {want}, but torch sees no CUDA device (torch "
                           f"{torch.__version__}); unset it or use {DEVICE_ENV}=cpu")
    return want


def model_device(model: Any) -> str:
    """Where ``model`` actually runs, for results files: its parameters' device (with the GPU's
    name), not merely what the machine has."""
    import torch

    dev = next(model.parameters()).device
    if dev.type == "cuda":
        return f"{dev} ({torch.cuda.get_device_name(dev)})"
    if dev.type == "cpu":
        return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
    return str(dev)


def device_name() -> str:
    """A human name for the compute device torch will use."""
    import torch

    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        return f"{n} x {torch.cuda.get_device_name(0)}"
    return f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one) and what PyTorch's kernels use."""
    import torch

    model = platform.processor() or platform.machine()
    if os.path.isfile("/proc/cpuinfo"):
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        model = names[0] if names else model
    return f"{model}; torch kernels {torch.backends.cpu.get_cpu_capability()}"


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
