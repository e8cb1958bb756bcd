"""What every benchmark shares: the JSON record, its file name, the architecture configs.

A record is one run of one command::

    {"benchmark": ..., "name": ..., "device": ..., "versions": {...}, "command": "python -m ...",
     "created": ..., "settings": {...}, "figures": [{"key", "label", "value", "unit", "note"}]}

``value`` is ``None`` for a figure that was not measured (``note`` says why and what to run).
Records land in ``benchmarks/records/<name>-<device-slug>.json``; the appendix chapter
(``notebooks/10_performance.ipynb``) reads them.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from radis_utils.memory import Shape
from radis_utils.records import write_json

HERE = Path(__file__).resolve().parent
RECORDS_DIR = HERE / "records"
ARCHS_DIR = HERE / "archs"
NO_GPU = "not measured — no GPU was available; run `{command}` on one"


def slug(text: str) -> str:
    """``"1 x NVIDIA H100 80GB HBM3"`` -> ``"1-x-nvidia-h100-80gb-hbm3"`` (file-name safe)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


def command_line(module: str, argv: Sequence[str]) -> str:
    """The exact command that reproduces a run: ``python -m <module> <argv>``."""
    return shlex.join(["python", "-m", module, *argv])


def figure(key: str, label: str, value: float | int | None, unit: str = "", note: str = "") -> dict[str, Any]:
    """One measured (or, with ``value=None``, not measured) figure of a record."""
    return {"key": key, "label": label, "value": value, "unit": unit, "note": note}


def make_record(benchmark: str, name: str, command: str, figures: list[dict[str, Any]],
                settings: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A record with device, versions, command and creation time filled in."""
    from radis_utils.runtime import device_name, versions

    return {"benchmark": benchmark, "name": name, "device": device_name(), "versions": versions(),
            "command": command, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "settings": settings or {}, "figures": figures, **extra}


def record_path(record: dict[str, Any], records_dir: str | Path | None = None) -> Path:
    """``<records_dir>/<name>-<device-slug>.json`` (default: ``benchmarks/records/``)."""
    return Path(records_dir or RECORDS_DIR) / f"{record['name']}-{slug(record['device'])}.json"


def write_record(record: dict[str, Any], records_dir: str | Path | None = None) -> Path:
    """Write ``record`` atomically and return its path."""
    path = record_path(record, records_dir)
    write_json(path, record)
    return path


def print_figures(record: dict[str, Any]) -> None:
    """One line per figure: ``label: value unit`` (or the note when not measured)."""
    for f in record["figures"]:
        if f["value"] is None:
            shown = f["note"] or "not measured"
        else:
            value = f["value"]
            if isinstance(value, float):
                shown = f"{value:,.0f}" if 100 <= abs(value) < 1e7 else f"{value:.4g}"
            else:
                shown = f"{value:,}"
            shown = f"{shown} {f['unit']}".rstrip() + (f"  ({f['note']})" if f["note"] else "")
        print(f"{f['label']}: {shown}", flush=True)


def quiet_progress() -> contextlib.AbstractContextManager[None]:
    """No progress bars inside the timings (``RADIS_QUIET=1``), restored afterwards."""
    from radis_utils.runtime import QUIET_ENV
    from radis_utils.runbook import kernel_environment

    return kernel_environment({QUIET_ENV: "1"})


def read_records(records_dir: str | Path | None = None, benchmark: str | None = None) -> list[dict[str, Any]]:
    """Every record under ``records_dir`` (optionally of one benchmark), sorted by file name."""
    folder = Path(records_dir or RECORDS_DIR)
    found = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]
    return [r for r in found if benchmark is None or r.get("benchmark") == benchmark]


# --- architectures -----------------------------------------------------------------------------

def arch_names() -> list[str]:
    """Names of the architecture files in ``benchmarks/archs/`` (``tiny``, ``llama2_7b``, ...)."""
    return sorted(p.stem for p in ARCHS_DIR.glob("*.json"))


def load_arch(name: str) -> dict[str, Any]:
    """``benchmarks/archs/<name>.json``: ``{"description", "source", "config": {config.json fields}}``."""
    path = ARCHS_DIR / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such architecture; known: {', '.join(arch_names())}")
    arch = json.loads(path.read_text(encoding="utf-8"))
    arch["name"] = name
    return arch


def arch_config(name: str) -> Any:
    """The ``transformers`` config of an architecture file (no weights are read or fetched)."""
    from transformers import AutoConfig

    cfg = dict(load_arch(name)["config"])
    cfg.pop("architectures", None)
    return AutoConfig.for_model(cfg.pop("model_type"), **cfg)


def random_model(arch: str, dtype: Any, device: str, attn_implementation: str | None = None) -> Any:
    """The architecture with seeded random weights, built directly on ``device`` ("meta": shapes only)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    with torch.device(device):
        return AutoModelForCausalLM.from_config(arch_config(arch), dtype=dtype, **extra)


def matmul_parameters(config: Any) -> int:
    """Weights of the matrix multiplies of one token's forward pass: attention, MLP, LM head.

    Embeddings are a lookup (no FLOPs) and norms are negligible, so both are left out.
    """
    shape = Shape.from_config(config.to_dict())
    return shape.matmul_weights() + shape.hidden * shape.vocab


def lora_parameters(config: Any, r: int) -> int:
    """LoRA weights on every linear layer of the blocks (peft's ``all-linear``: not the LM head)."""
    return Shape.from_config(config.to_dict()).lora_weights(r)


def lora_flops_per_token(config: Any, n_lora: int, seq: int) -> dict[str, float]:
    """Model FLOPs per trained token of a LoRA step (see ``benchmarks.lora_step``'s docstring).

    ``4·N + 6·N_lora + 12·L·h·s``: the frozen weights do a forward (2N) and the activation
    gradient (2N) but no weight gradient; the adapters do all three (6 N_lora); attention's
    score and value products cost 4·L·h·s forward and twice that backward.
    """
    n = matmul_parameters(config)
    attention = 12 * config.num_hidden_layers * config.hidden_size * seq
    return {"N": n, "N_lora": n_lora, "attention": attention,
            "flops_per_token": 4 * n + 6 * n_lora + attention,
            "full_ft_flops_per_token": 6 * n + attention}
