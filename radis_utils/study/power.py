"""The power calculation: how many test items a difference of a given size needs, from the
pilot's per-item spreads (``calibration/smol-pilot.json``).

Two models are compared on the same items (paired), so what matters is the spread of the
per-item *difference*: ``sd * sqrt(2 * (1 - rho))`` for two models whose per-item scores have
spread ``sd`` each and correlate ``rho``. Before any training ``rho`` is unknown; ``RHO`` is the
assumption the plan states (the study's record measures the real one). The normal
approximation then gives the items for a two-sided test at level ``ALPHA`` with power ``POWER``,
and its inverse the smallest difference a given number of items resolves.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Mapping

ALPHA, POWER = 0.05, 0.8
#: Assumed correlation of two trained models' per-item scores (sentence difficulty, prompt
#: difficulty dominate both); 0 would be the most pessimistic.
RHO = 0.5


def _z_sum(alpha: float, power: float) -> float:
    normal = NormalDist()
    return normal.inv_cdf(1 - alpha / 2) + normal.inv_cdf(power)


def sd_of_difference(sd: float, rho: float = RHO) -> float:
    """Spread of a per-item difference between two models of per-item spread ``sd`` each."""
    if not -1 <= rho <= 1:
        raise ValueError(f"rho must lie in [-1, 1], got {rho}")
    return sd * math.sqrt(2 * (1 - rho))


def binary_sd(share_percent: float) -> float:
    """Per-item spread, in percentage points, of a pass/fail measure passed by ``share_percent``."""
    p = share_percent / 100
    return 100 * math.sqrt(p * (1 - p))


def items_needed(sd_diff: float, delta: float, alpha: float = ALPHA, power: float = POWER) -> int:
    """Paired items for a difference ``delta`` (same units as ``sd_diff``) to be found."""
    if delta <= 0 or sd_diff < 0:
        raise ValueError(f"items_needed: delta must be > 0 and sd_diff >= 0, got {delta}, {sd_diff}")
    return max(2, math.ceil((_z_sum(alpha, power) * sd_diff / delta) ** 2))


def detectable(sd_diff: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest difference ``n`` paired items find (the inverse of ``items_needed``)."""
    if n < 2:
        raise ValueError(f"detectable: n must be >= 2, got {n}")
    return _z_sum(alpha, power) * sd_diff / math.sqrt(n)


def plan_row(measure: str, mean: float, sd: float, delta: float, why: str, chosen_n: int,
             rho: float = RHO) -> dict[str, Any]:
    """One line of the plan: the pilot's mean and per-item spread, the difference aimed at (and
    why that size), the items it needs, and what the chosen size resolves."""
    diff = sd_of_difference(sd, rho)
    return {"measure": measure, "pilot_mean": round(mean, 2), "per_item_sd": round(sd, 2), "rho": rho,
            "delta": delta, "why": why, "items_needed": items_needed(diff, delta), "chosen_n": chosen_n,
            "detectable_at_chosen_n": round(detectable(diff, chosen_n), 2)}


def ifeval_row(pilot: Mapping[str, Any], delta: float, why: str, chosen_n: int) -> dict[str, Any]:
    """The plan's IFEval line (prompt-level strict, a pass/fail per prompt)."""
    share = pilot["measures"]["ifeval"]["prompt_level_strict_acc"]
    return plan_row("IFEval prompt-level strict (%)", share, binary_sd(share), delta, why, chosen_n)


def translation_row(pilot: Mapping[str, Any], direction: str, delta: float, why: str,
                    chosen_n: int) -> dict[str, Any]:
    """The plan's line for one direction's chrF (its per-sentence spread stands in for corpus chrF's)."""
    per = pilot["measures"]["translation"]["directions"][direction]
    return plan_row(f"chrF {direction}", per["chrf"], per["sentence_chrf"]["sd"], delta, why, chosen_n)


#: RP levels whose distance from the backbone (RP 100) the IFEval rows aim at: the thresholds of
#: "Vanilla-FT loses general ability" (RP <= 40) and "RaDis keeps general ability" (RP >= 85), and
#: the paper's largest RP gap between two methods that keep it (RaDis - SDFT on Mistral, 7.66).
IFEVAL_AIMS = ((40.0, "a drop to RP 40, the threshold of 'Vanilla-FT loses general ability'"),
               (85.0, "a drop to RP 85, the threshold of 'RaDis keeps general ability'"),
               (100 - 7.66, "RaDis vs SDFT's RP gap on Mistral (7.66), the largest between keeping methods"))


def study_plan(pilot: Mapping[str, Any], tuning: Mapping[str, Any], test_pairs: int,
               ifeval_prompts: int) -> list[dict[str, Any]]:
    """The rows the study's sizes come from: per tuned direction, half of vanilla's validation gain
    at the chosen learning rate (``tuning``: ``study.tune``'s record); for IFEval, the drops of
    ``IFEVAL_AIMS`` from the pilot's share (``pilot``: ``study.pilot``'s record)."""
    chosen = next(c for c in tuning["candidates"].values() if c["learning_rate"] == tuning["choice"])
    rows = []
    for d, after in chosen["chrf"].items():
        gain = after - tuning["backbone"]["chrf"][d]
        rows.append(translation_row(pilot, d, round(max(gain, 0.1) / 2, 2),
                                    f"half of vanilla's WMT'21 gain ({gain:+.2f} chrF, seed 0)", test_pairs))
    share = pilot["measures"]["ifeval"]["prompt_level_strict_acc"]
    rows += [ifeval_row(pilot, round(share * (1 - rp / 100), 2), why, ifeval_prompts) for rp, why in IFEVAL_AIMS]
    return rows
