"""The performance goals of issue 17 (deliverable 4) and how a measured value is judged against one.

A record that has a goal carries ``record["goal"]`` as ``check`` returns it: the target, the
value, ``met`` (``None`` when not measured) and ``by``, one sentence saying by how much it was met
or missed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Goal:
    """One goal: ``value <op> target`` in ``unit``."""

    what: str
    op: str  # ">=" or "<="
    target: float
    unit: str


GOALS: dict[str, Goal] = {
    "lora_mfu": Goal("bf16 LoRA r=16 step on a 7B shape: MFU", ">=", 0.45, "fraction of bf16 peak"),
    "qlora_peak_memory": Goal("QLoRA 7B at batch 4 × 512 with checkpointing: peak GPU memory", "<=", 16.0, "GiB"),
    "batching_speedup": Goal("faster of padding-free and length-grouped batches over random padded batches "
                             "(real tokens/s, ALMA lengths)", ">=", 1.8, "x"),
    "vllm_speedup": Goal("vLLM offline over HF batched generation at batch 256 (new tokens/s)", ">=", 5.0, "x"),
    "gpu_budget": Goal("python -m benchmarks.gpu on one H100/H200: wall time", "<=", 480.0, "s"),
}


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def check(key: str, value: float | None, target: float | None = None) -> dict[str, Any]:
    """``value`` judged against goal ``key`` (``target`` replaces the goal's own, e.g. a smaller budget)."""
    goal = GOALS[key]
    target = goal.target if target is None else target
    out = {"key": key, "what": goal.what, "op": goal.op, "target": target, "unit": goal.unit, "value": value}
    if value is None:
        return {**out, "met": None, "by": "not measured"}
    met = value >= target if goal.op == ">=" else value <= target
    gap = abs(value - target)
    share = value / target if target else float("inf")
    vs = f"{_fmt(value)} vs {goal.op} {_fmt(target)} {goal.unit}"
    if met:
        by = f"met with {_fmt(gap)} to spare ({vs})"
    else:
        by = f"missed by {_fmt(gap)} ({vs}; {100 * share:.0f} % of the goal)"
    return {**out, "met": met, "by": by}


def describe(goal: dict[str, Any] | None) -> str:
    """One line for a table: ``met``/``missed ...``/``not measured``."""
    if not goal:
        return ""
    return goal["by"] if goal["met"] is not None else "not measured"
