"""Streamed cosines between the MT and the regulariser gradients, per gradient unit (paper fig. 4).

A *unit* is one LoRA-wrapped linear of one layer (``units_of``: ``"1.mlp.down_proj"``, its
``lora_A`` and ``lora_B`` together); the per-layer view (``"1"``) is computed from the same
per-module dot products. For every unit ``measure`` keeps two statistics:

* ``mean``: the mean over examples of the per-example cosine (a unit whose gradient is zero for
  an example skips it, hence ``count``), with its standard deviation;
* ``summed``: the cosine of the gradients summed over the examples (the direction one step on the
  whole sample would take).

and each of them twice: ``keep_identical`` (every pair) and ``skip_identical`` (pairs whose
regulariser target equals ``y`` left out: their two losses coincide, so their cosine is 1 by
construction; this only touches Seq-KD's ``y'`` and SDFT's ``ỹ``).
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Mapping, Sequence

import torch

from .features import PRECONDITIONERS, Moments, feature, flat_moments, zero_moments
from .similarity import GradientPair, span_means

SUBSETS = ("keep_identical", "skip_identical")
_UNIT = re.compile(r"(?:^|\.)(?:layers|h|blocks|layer)\.(\d+)\.(.+?)(?:\.lora_[AB]|\.lora_embedding_[AB])?"
                   r"(?:\.default)?\.(?:weight|bias)$")


def unit_of(param_name: str) -> str | None:
    """``"<layer>.<module>"`` of a parameter inside a transformer layer, else ``None``.

    ``...layers.2.self_attn.q_proj.lora_A.default.weight`` → ``"2.self_attn.q_proj"``.
    """
    m = _UNIT.search(param_name)
    return f"{m.group(1)}.{m.group(2)}" if m else None


def units_of(model: Any) -> dict[str, list[str]]:
    """Trainable parameter names grouped by unit, in model order; ``ValueError`` when none is in a layer."""
    units: dict[str, list[str]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad and unit_of(name) is not None:
            units.setdefault(unit_of(name), []).append(name)
    if not units:
        raise ValueError("no trainable parameter sits inside a transformer layer (names like '...layers.N.<module>...');"
                         " wrap the model with LoRA (models.add_lora) first")
    return units


def layer_groups(units: Sequence[str]) -> dict[str, list[str]]:
    """Units grouped by layer (``"2.mlp.up_proj"`` → ``"2"``), layers in numeric order."""
    groups: dict[str, list[str]] = {}
    for unit in sorted(units, key=lambda u: int(u.split(".")[0])):
        groups.setdefault(unit.split(".")[0], []).append(unit)
    return groups


def unit_gradients(model: Any, loss: torch.Tensor, units: Mapping[str, Sequence[str]],
                   retain_graph: bool = False) -> dict[str, torch.Tensor]:
    """Flat float32 gradient of ``loss`` per unit (``torch.autograd.grad``; ``.grad`` untouched)."""
    params = dict(model.named_parameters())
    names = [n for u in units for n in units[u]]
    grads = torch.autograd.grad(loss, [params[n] for n in names], retain_graph=retain_graph, allow_unused=True)
    flat = {n: (torch.zeros_like(params[n], dtype=torch.float32) if g is None else g.float()).reshape(-1)
            for n, g in zip(names, grads)}
    return {u: torch.cat([flat[n] for n in units[u]]) for u in units}


class _Running:
    """Running sums of one (preconditioner, subset): per-unit dot products and summed features."""

    def __init__(self, units: Sequence[str], groups: Mapping[str, Sequence[str]]) -> None:
        self.groups = {**{u: [u] for u in units}, **{f"layer {k}": list(v) for k, v in groups.items()}}
        self.cos = dict.fromkeys(self.groups, 0.0)
        self.sq = dict.fromkeys(self.groups, 0.0)
        self.count = dict.fromkeys(self.groups, 0)
        self.sum_a: dict[str, torch.Tensor] = {}
        self.sum_b: dict[str, torch.Tensor] = {}

    def add(self, a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> None:
        dots = {u: (float(a[u] @ b[u]), float(a[u] @ a[u]), float(b[u] @ b[u])) for u in a}
        for group, members in self.groups.items():
            ab, aa, bb = (sum(dots[u][i] for u in members) for i in range(3))
            if aa > 0 and bb > 0:
                c = ab / math.sqrt(aa * bb)
                self.cos[group] += c
                self.sq[group] += c * c
                self.count[group] += 1
        for u in a:
            self.sum_a[u] = self.sum_a[u] + a[u] if u in self.sum_a else a[u].clone()
            self.sum_b[u] = self.sum_b[u] + b[u] if u in self.sum_b else b[u].clone()

    def stats(self, prefix: bool) -> dict[str, list]:
        """``units``, ``mean``, ``std``, ``count``, ``summed`` of the unit (``prefix`` False) or layer groups."""
        keys = [g for g in self.groups if g.startswith("layer ") == prefix]
        out: dict[str, list] = {"units": [g.removeprefix("layer ") for g in keys], "mean": [], "std": [], "count": [],
                                "summed": []}
        for g in keys:
            n = self.count[g]
            mean = self.cos[g] / n if n else None
            out["mean"].append(mean)
            out["std"].append(math.sqrt(max(self.sq[g] / n - mean * mean, 0.0)) if n else None)
            out["count"].append(n)
            out["summed"].append(self._summed(self.groups[g]))
        return out

    def _summed(self, members: Sequence[str]) -> float | None:
        if not self.sum_a:
            return None
        ab, aa, bb = (sum(float(x[u] @ y[u]) for u in members)
                      for x, y in ((self.sum_a, self.sum_b), (self.sum_a, self.sum_a), (self.sum_b, self.sum_b)))
        return ab / math.sqrt(aa * bb) if aa > 0 and bb > 0 else None


def _pair_gradients(model: Any, pair: GradientPair, units: Mapping[str, Sequence[str]]
                    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Raw per-unit gradients of the MT loss and of the regulariser for one pair."""
    if pair.mt is pair.reg:  # RaDis: one forward pass, two spans
        mt_loss, reg_loss = span_means(model, pair.mt, [pair.mt_span, pair.reg_span])
    else:
        mt_loss, = span_means(model, pair.mt, [pair.mt_span])
        if pair.identical:  # the same sequence and span: the same gradient
            g = unit_gradients(model, mt_loss, units)
            return g, g
        reg_loss, = span_means(model, pair.reg, [pair.reg_span])
    return (unit_gradients(model, mt_loss, units, retain_graph=True), unit_gradients(model, reg_loss, units))


def measure(model: Any, pairs: Iterable[GradientPair | None], moments: Moments | None = None,
            preconditioners: Sequence[str] = PRECONDITIONERS) -> dict[str, Any]:
    """Per-unit ``mean`` and ``summed`` cosines for each preconditioner and subset (see the module text).

    Streams ``pairs`` (``None``: no regulariser for that example, counted as ``skipped``). ``moments``
    (default: zero, the state before training) feed ``rescaled`` and ``less``. The model runs in eval
    mode; every module's training flag is restored afterwards. Returns
    ``{"pairs", "skipped", "identical", "results": {prec: {subset: {"module": stats, "layer": stats}}}}``.
    """
    units = units_of(model)
    moments = moments or zero_moments(model)
    mv = flat_moments(moments, units) if any(p != "sgd" for p in preconditioners) else {}
    groups = layer_groups(list(units))
    running = {(p, s): _Running(list(units), groups) for p in preconditioners for s in SUBSETS}
    used = skipped = identical = 0
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        for pair in pairs:
            if pair is None:
                skipped += 1
                continue
            g_mt, g_reg = _pair_gradients(model, pair, units)
            for prec in preconditioners:
                a = {u: feature(g_mt[u], prec, *mv.get(u, (None, None)), moments=moments) for u in units}
                b = a if g_reg is g_mt else {
                    u: feature(g_reg[u], prec, *mv.get(u, (None, None)), moments=moments) for u in units}
                running[prec, "keep_identical"].add(a, b)
                if not pair.identical:
                    running[prec, "skip_identical"].add(a, b)
            used += 1
            identical += pair.identical
    finally:
        for m, mode in modes:
            m.training = mode
    results = {p: {s: {"module": running[p, s].stats(False), "layer": running[p, s].stats(True)} for s in SUBSETS}
               for p in preconditioners}
    return {"pairs": used, "skipped": skipped, "identical": identical, "results": results}


def count_signs(values: Iterable[float | None]) -> dict[str, int]:
    """How many units have a positive / negative value; ``total`` counts those with a value."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return {"positive": sum(v > 0 for v in vals), "negative": sum(v < 0 for v in vals), "total": len(vals)}
