"""The one rule that turns a number and its uncertainty into a verdict, fixed before any result.

A claim of the paper becomes a *threshold* (``value op limit``). Its value is measured on some
units (organism runs: worlds x seeds; a real model: test items), giving a mean and a 95 %
interval:

- *reproduced*: the mean meets the threshold and the whole interval does too;
- *not reproduced*: the mean misses it and the interval does not reach it;
- *inconclusive*: the interval straddles the threshold (the row says what n would decide);
- *not checked*: the claim needs what this project cannot run (the row says why);
- *not run*: the chapters that measure it have not run, or the value is undefined here.

Intervals: ``t_interval`` (Student's t over independent runs), ``binomial_interval``
(Clopper-Pearson, for a share of items), ``paired_bootstrap`` (percentile interval of a
statistic over test items resampled together for every model), ``seed_and_item_bootstrap``
(the same with each method's training seeds resampled too). On the organism the units are
world builds (``radis_utils.claims``), on a real model training seeds or test items.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
NOT_CHECKED, NOT_RUN = "not checked", "not run"
VERDICTS: tuple[str, ...] = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_CHECKED, NOT_RUN)
LEVEL = 0.95
#: Fewest items per stratum a bootstrap is drawn from: below it, resampling two or three items
#: says little about the spread (its variance is (n - 1) / n of the true one, and few values exist).
MIN_BOOTSTRAP = 10

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda v, t: v <= t, ">=": lambda v, t: v >= t, "<": lambda v, t: v < t, ">": lambda v, t: v > t}


@dataclass(frozen=True)
class Interval:
    """A mean with its ``LEVEL`` interval, over ``n`` units (``unit``) measured by ``method``."""

    mean: float
    lo: float
    hi: float
    n: int
    method: str
    unit: str = "units"

    def text(self, digits: int = 3) -> str:
        """``"0.881 [0.85, 0.91]"`` (rounded to ``digits`` significant figures)."""
        f = lambda v: f"{v:.{digits}g}"
        return f"{f(self.mean)} [{f(self.lo)}, {f(self.hi)}]"


def holds(op: str, value: float, limit: float) -> bool:
    """Whether ``value op limit`` (``<=``, ``>=``, ``<``, ``>``)."""
    if op not in _OPS:
        raise ValueError(f"unknown operator {op!r}; use one of {sorted(_OPS)}")
    return _OPS[op](value, limit)


def grade(interval: Interval, op: str, limit: float) -> str:
    """The module's rule: *reproduced*, *not reproduced* or *inconclusive*."""
    ends = [holds(op, v, limit) for v in (interval.mean, interval.lo, interval.hi)]
    if all(ends):
        return REPRODUCED
    if not any(ends):
        return NOT_REPRODUCED
    return INCONCLUSIVE


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1) of at least two values."""
    n = len(values)
    mean = sum(values) / n
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def t_quantile(level: float, n: int) -> float:
    """Student's t quantile of a two-sided ``level`` interval from ``n`` values (n - 1 degrees of freedom)."""
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, n - 1))


def t_interval(values: Sequence[float], level: float = LEVEL, unit: str = "runs") -> Interval:
    """Mean and Student's t interval of independent ``values`` (needs at least 2)."""
    n = len(values)
    if n < 2:
        raise ValueError(f"t_interval: {n} value(s); an interval needs at least 2 {unit}")
    mean, sd = mean_sd(values)
    half = t_quantile(level, n) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, f"{level:.0%} t-interval over {n} {unit}", unit.split(" (")[0])


def binomial_interval(successes: int, n: int, level: float = LEVEL) -> Interval:
    """Share ``successes / n`` with its exact (Clopper-Pearson) interval."""
    from scipy import stats

    if n < 1:
        raise ValueError("binomial_interval: no items")
    ci = stats.binomtest(successes, n).proportion_ci(confidence_level=level, method="exact")
    return Interval(successes / n, ci.low, ci.high, n, f"{level:.0%} Clopper-Pearson interval over {n} items", "items")


def paired_bootstrap(strata: Sequence[int], statistic: Callable[[Sequence[Sequence[int]]], Mapping[str, float]],
                     resamples: int = 1000, seed: int = 0, level: float = LEVEL,
                     unit: str = "test items") -> dict[str, Interval]:
    """Percentile intervals of every value ``statistic`` returns, over test items resampled with
    replacement within each stratum (e.g. a translation direction of ``strata[i]`` sentences).
    ``statistic`` gets one list of item indices per stratum and must score every model on the same
    indices (a paired test). The mean is the statistic on the items as they are. A stratum with
    fewer than ``MIN_BOOTSTRAP`` items gives no interval at all (``{}``)."""
    if not strata or min(strata) < MIN_BOOTSTRAP:
        return {}
    rng = random.Random(seed)
    full = statistic([list(range(k)) for k in strata])
    draws = [statistic([[rng.randrange(k) for _ in range(k)] for k in strata]) for _ in range(resamples)]
    n = sum(strata)
    return _percentile_intervals(full, draws, level, n, unit,
                                 f"{level:.0%} paired bootstrap over {n} {unit} ({resamples} resamples)")


def seed_and_item_bootstrap(strata: Sequence[int], groups: Mapping[str, int],
                            statistic: Callable[[Sequence[Sequence[int]], Mapping[str, Sequence[int]]],
                                                Mapping[str, float]],
                            resamples: int = 1000, seed: int = 0, level: float = LEVEL) -> dict[str, Interval]:
    """``paired_bootstrap`` with a second level: in every resample each group (a method) also
    draws its training seeds with replacement (``groups[name]`` runs, indices 0..k-1), so the
    interval holds both the test items' spread and the seeds'. ``statistic(item_picks, seed_picks)``.
    With three seeds the seed level is coarse (a bootstrap of three values); the record says so."""
    if not strata or min(strata) < MIN_BOOTSTRAP or not groups or min(groups.values()) < 1:
        return {}
    rng = random.Random(seed)
    full = statistic([list(range(k)) for k in strata], {g: list(range(k)) for g, k in groups.items()})
    draws = []
    for _ in range(resamples):
        items = [[rng.randrange(k) for _ in range(k)] for k in strata]
        seeds = {g: [rng.randrange(k) for _ in range(k)] for g, k in groups.items()}
        draws.append(statistic(items, seeds))
    n = sum(strata)
    runs = "/".join(str(k) for k in groups.values())
    return _percentile_intervals(full, draws, level, n, "test items and training seeds",
                                 f"{level:.0%} bootstrap over {n} test items and {runs} training seeds per method "
                                 f"({resamples} resamples)")


def _percentile_intervals(full: Mapping[str, float], draws: Sequence[Mapping[str, float]], level: float, n: int,
                          unit: str, method: str) -> dict[str, Interval]:
    """Percentile intervals of each value of ``full`` over the ``draws`` in which it is defined
    (a value undefined in most draws, e.g. a ratio to a zero gain, gets none)."""
    out = {}
    for key in full:
        values = sorted(d[key] for d in draws if key in d and d[key] is not None and math.isfinite(d[key]))
        if len(values) < len(draws) / 2:
            continue
        lo = values[int((1 - level) / 2 * (len(values) - 1))]
        hi = values[int((1 + level) / 2 * (len(values) - 1))]
        out[key] = Interval(full[key], lo, hi, n, method, unit)
    return out


def n_to_decide(interval: Interval, limit: float) -> int | None:
    """Roughly how many units would make the interval clear ``limit`` if the mean and the spread
    per unit stayed as they are (the half-width goes as 1/sqrt(n)); ``None`` with the mean on it."""
    gap = abs(interval.mean - limit)
    half = (interval.hi - interval.lo) / 2
    if gap <= 0:
        return None
    return max(interval.n + 1, math.ceil(interval.n * (half / gap) ** 2 - 1e-9))
