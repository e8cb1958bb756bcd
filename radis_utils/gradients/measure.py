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

from .features import PRECONDITIONERS, Moments, feature, zero_moments
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


class Layout:
    """The units' parameters flattened into one vector: ``names`` in unit order, ``index`` (unit of each
    element) and ``membership`` (groups × units: the units themselves, then one group per layer)."""

    def __init__(self, model: Any) -> None:
        self.units = units_of(model)
        self.names = [n for u in self.units for n in self.units[u]]
        params = dict(model.named_parameters())
        sizes = [sum(params[n].numel() for n in names) for names in self.units.values()]
        self.index = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
        layers = layer_groups(list(self.units))
        self.groups = list(self.units) + [f"layer {k}" for k in layers]
        order = {u: i for i, u in enumerate(self.units)}
        self.membership = torch.zeros(len(self.groups), len(self.units), dtype=torch.float64)
        for i, u in enumerate(self.units):
            self.membership[i, i] = 1.0
        for j, members in enumerate(layers.values()):
            for u in members:
                self.membership[len(self.units) + j, order[u]] = 1.0

    def flat(self, tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``tensors`` (by parameter name) as one float32 vector in the layout's order."""
        return torch.cat([tensors[n].reshape(-1).float() for n in self.names])

    def dots(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``(a·b, a·a, b·b)`` per group (3 × groups, float64), from per-unit sums."""
        index = self.index.to(a.device)
        per_unit = torch.stack([torch.zeros(len(self.units), dtype=torch.float64, device=a.device).index_add_(
            0, index, (x * y).double()) for x, y in ((a, b), (a, a), (b, b))])
        return per_unit.cpu() @ self.membership.T


def flat_gradient(model: Any, loss: torch.Tensor, layout: Layout, retain_graph: bool = False) -> torch.Tensor:
    """The float32 gradient of ``loss`` over the layout's parameters, flat (``.grad`` untouched)."""
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(loss, [params[n] for n in layout.names], retain_graph=retain_graph, allow_unused=True)
    return torch.cat([(torch.zeros_like(params[n], dtype=torch.float32) if g is None else g.float()).reshape(-1)
                      for n, g in zip(layout.names, grads)])


class _Running:
    """Running sums of one (preconditioner, subset): per-group cosines and the summed features."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        n = len(layout.groups)
        self.cos, self.sq = torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
        self.count = torch.zeros(n, dtype=torch.int64)
        self.sum_a: torch.Tensor | None = None
        self.sum_b: torch.Tensor | None = None

    def add(self, a: torch.Tensor, b: torch.Tensor, dots: torch.Tensor) -> None:
        """One pair's flat features ``a``, ``b`` and their group ``dots`` (``Layout.dots``)."""
        ok = (dots[1] > 0) & (dots[2] > 0)
        c = torch.where(ok, dots[0] / torch.sqrt(torch.where(ok, dots[1] * dots[2], 1.0)), 0.0)
        self.cos += c
        self.sq += c * c
        self.count += ok
        self.sum_a = a.clone() if self.sum_a is None else self.sum_a + a
        self.sum_b = b.clone() if self.sum_b is None else self.sum_b + b

    def stats(self, layers: bool) -> dict[str, list]:
        """``units``, ``mean``, ``std``, ``count``, ``summed`` of the units (``layers`` False) or the layers."""
        keep = [i for i, g in enumerate(self.layout.groups) if g.startswith("layer ") == layers]
        summed = self.layout.dots(self.sum_a, self.sum_b) if self.sum_a is not None else None
        out: dict[str, list] = {"units": [self.layout.groups[i].removeprefix("layer ") for i in keep],
                                "mean": [], "std": [], "count": [], "summed": []}
        for i in keep:
            n = int(self.count[i])
            mean = float(self.cos[i]) / n if n else None
            out["mean"].append(mean)
            out["std"].append(math.sqrt(max(float(self.sq[i]) / n - mean * mean, 0.0)) if n else None)
            out["count"].append(n)
            ok = summed is not None and summed[1, i] > 0 and summed[2, i] > 0
            out["summed"].append(float(summed[0, i] / torch.sqrt(summed[1, i] * summed[2, i])) if ok else None)
        return out


def _pair_gradients(model: Any, pair: GradientPair, layout: Layout) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw flat gradients of the MT loss and of the regulariser for one pair."""
    if pair.mt is pair.reg:  # RaDis: one forward pass, two spans
        mt_loss, reg_loss = span_means(model, pair.mt, [pair.mt_span, pair.reg_span])
    elif pair.mt.input_ids == pair.reg.input_ids and pair.mt_span == pair.reg_span:  # one loss: one gradient
        g = flat_gradient(model, span_means(model, pair.mt, [pair.mt_span])[0], layout)
        return g, g
    else:  # Seq-KD, SDFT: two sequences in one batch of two
        mt_loss, reg_loss = span_means(model, pair.mt, [pair.mt_span], pair.reg, pair.reg_span)
    return flat_gradient(model, mt_loss, layout, retain_graph=True), flat_gradient(model, reg_loss, layout)


def measure(model: Any, pairs: Iterable[GradientPair | None], moments: Moments | None = None,
            preconditioners: Sequence[str] = PRECONDITIONERS) -> dict[str, Any]:
    """Per-unit ``mean`` and ``summed`` cosines for each preconditioner and subset (see the module text).

    Streams ``pairs`` (``None``: no regulariser for that example, counted as ``skipped``). ``moments``
    (default: zero, the state before training) feed ``rescaled`` and ``less``. The model runs in eval
    mode; every module's training flag is restored afterwards. Returns
    ``{"pairs", "skipped", "identical", "results": {prec: {subset: {"module": stats, "layer": stats}}}}``.
    """
    layout = Layout(model)
    moments = moments or zero_moments(model)
    m, v = layout.flat(moments.m), layout.flat(moments.v)
    running = {(p, s): _Running(layout) for p in preconditioners for s in SUBSETS}
    used = skipped = identical = 0
    modes = [(mod, mod.training) for mod in model.modules()]
    model.eval()
    try:
        for pair in pairs:
            if pair is None:
                skipped += 1
                continue
            g_mt, g_reg = _pair_gradients(model, pair, layout)
            for prec in preconditioners:
                a = feature(g_mt, prec, m, v, moments)
                b = a if g_reg is g_mt else feature(g_reg, prec, m, v, moments)
                dots = layout.dots(a, b)
                running[prec, "keep_identical"].add(a, b, dots)
                if not pair.identical:
                    running[prec, "skip_identical"].add(a, b, dots)
            used += 1
            identical += pair.identical
    finally:
        for mod, mode in modes:
            mod.training = mode
    results = {p: {s: {"module": running[p, s].stats(False), "layer": running[p, s].stats(True)} for s in SUBSETS}
               for p in preconditioners}
    return {"pairs": used, "skipped": skipped, "identical": identical, "results": results}


def count_signs(values: Iterable[float | None]) -> dict[str, int]:
    """How many units have a positive / negative value; ``total`` counts those with a value."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return {"positive": sum(v > 0 for v in vals), "negative": sum(v < 0 for v in vals), "total": len(vals)}
