"""Summary scores over benchmarks: relative performance (RP, paper table 3) and gain ratios.

RP is how much of the backbone's general ability a fine-tuned model keeps: 100 times the mean,
over benchmarks, of ``model / backbone``. A model that matches its backbone everywhere has
RP 100; one that halves every score has RP 50.
"""

from __future__ import annotations

from typing import Mapping


def relative_performance(backbone: Mapping[str, float], model: Mapping[str, float]) -> float:
    """100 x mean over benchmarks of ``model[b] / backbone[b]`` (paper table 3, column RP)."""
    if not backbone:
        raise ValueError("relative_performance: the backbone scores are empty; pass one score "
                         "per benchmark, e.g. {'mt_bench': 6.5, 'alpaca_eval': 70.0}")
    missing = sorted(set(backbone) - set(model))
    extra = sorted(set(model) - set(backbone))
    if missing or extra:
        raise ValueError(
            "relative_performance: the model's benchmarks differ from the backbone's "
            f"(missing in model: {missing or 'none'}; extra in model: {extra or 'none'}); "
            "score both on the same benchmarks"
        )
    ratios = []
    for name, base in backbone.items():
        if base == 0:
            raise ValueError(f"relative_performance: backbone score of {name!r} is 0, so the "
                             "ratio is undefined; leave that benchmark out")
        ratios.append(float(model[name]) / float(base))
    return 100.0 * sum(ratios) / len(ratios)


def rp_over_scored(backbone: Mapping[str, float | None],
                   model: Mapping[str, float | None]) -> tuple[float | None, list[str]]:
    """``(RP, benchmarks)``: ``relative_performance`` over the benchmarks that both scored, leaving out
    those where the backbone scored 0 (a ratio to 0 is undefined); ``(None, [])`` when none is left."""
    ran = [b for b in backbone if backbone[b] and model.get(b) is not None]
    if not ran:
        return None, []
    return round(relative_performance({b: backbone[b] for b in ran}, {b: model[b] for b in ran}), 2), ran


def gain_ratio(base: float, method: float, reference: float) -> float:
    """``(method - base) / (reference - base)``: the share of ``reference``'s gain over ``base``
    that ``method`` reaches (1.0 = all of it, 0.0 = none, < 0 = worse than ``base``)."""
    if reference == base:
        raise ValueError(f"gain_ratio: reference ({reference}) equals base ({base}), so there is "
                         "no gain to compare against; pick a reference that differs from base")
    return (float(method) - float(base)) / (float(reference) - float(base))
