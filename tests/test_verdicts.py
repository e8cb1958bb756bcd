"""The one grading rule and its intervals."""

from __future__ import annotations

import pytest

from radis_utils import verdicts
from radis_utils.verdicts import Interval


def test_the_rule_reads_the_interval_as_well_as_the_mean():
    assert verdicts.grade(Interval(0.88, 0.85, 0.91, 6, "t"), "<=", 0.4) == verdicts.NOT_REPRODUCED
    assert verdicts.grade(Interval(0.35, 0.30, 0.39, 6, "t"), "<=", 0.4) == verdicts.REPRODUCED
    # the mean misses, but the interval reaches the threshold: not enough to say "not reproduced"
    assert verdicts.grade(Interval(0.45, 0.38, 0.52, 6, "t"), "<=", 0.4) == verdicts.INCONCLUSIVE
    # the mean holds, but the interval crosses: not enough to say "reproduced"
    assert verdicts.grade(Interval(-0.04, -0.10, 0.02, 6, "t"), "<", 0.0) == verdicts.INCONCLUSIVE
    assert verdicts.grade(Interval(84.0, 80.0, 88.0, 6, "t"), ">=", 85.0) == verdicts.INCONCLUSIVE
    assert verdicts.grade(Interval(1.0, 1.0, 1.0, 6, "t"), ">=", 0.7) == verdicts.REPRODUCED
    with pytest.raises(ValueError, match="unknown operator"):
        verdicts.holds("=~", 1, 1)
    assert "partly" not in verdicts.VERDICTS


def test_a_constructed_record_reads_not_reproduced_or_inconclusive_by_the_rule():
    """A set of runs whose mean misses and whose interval does not reach the threshold reads
    *not reproduced*; one that straddles reads *inconclusive*."""
    far = verdicts.t_interval([0.89, 0.87, 0.88, 0.90, 0.86, 0.88])
    assert far.hi < 0.95 and verdicts.grade(far, "<=", 0.4) == verdicts.NOT_REPRODUCED
    near = verdicts.t_interval([0.30, 0.50, 0.38, 0.46, 0.41, 0.35])
    assert near.lo < 0.4 < near.hi and verdicts.grade(near, "<=", 0.4) == verdicts.INCONCLUSIVE
    n = verdicts.n_to_decide(near, 0.4)
    assert n is not None and n > near.n


def test_t_interval_matches_the_textbook_value():
    iv = verdicts.t_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, t(2, 0.975) = 4.303
    assert iv.mean == 2.0 and iv.hi - 2.0 == pytest.approx(4.3027 / 3 ** 0.5, rel=1e-4)
    assert iv.n == 3 and "t-interval over 3 runs" in iv.method
    with pytest.raises(ValueError, match="at least 2"):
        verdicts.t_interval([1.0])


def test_binomial_interval_is_exact_and_contains_the_share():
    iv = verdicts.binomial_interval(139, 200)
    assert iv.mean == pytest.approx(0.695) and 0.62 < iv.lo < 0.695 < iv.hi < 0.76
    assert verdicts.binomial_interval(0, 10).lo == 0.0


def test_paired_bootstrap_resamples_the_same_items_for_every_model():
    a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] * 2
    b = [x + 1.0 for x in a]  # b is a + 1 on every item: the paired difference has no spread

    def stat(picks):
        (idx,) = picks
        return {"diff": sum(b[i] - a[i] for i in idx) / len(idx), "a": sum(a[i] for i in idx) / len(idx)}

    got = verdicts.paired_bootstrap([len(a)], stat, resamples=200)
    assert got["diff"].lo == got["diff"].hi == 1.0
    assert got["a"].lo < 3.5 < got["a"].hi and got["a"].mean == 3.5
    assert got == verdicts.paired_bootstrap([len(a)], stat, resamples=200)  # seeded
    assert verdicts.paired_bootstrap([4], stat) == {}  # too few items to resample: no interval


def test_what_n_would_decide():
    assert verdicts.n_to_decide(Interval(0.5, 0.3, 0.7, 4, "t"), 0.6) == 16  # half 0.2 / gap 0.1 -> 4x4
    assert verdicts.n_to_decide(Interval(0.5, 0.45, 0.55, 4, "t"), 0.6) == 5  # already clear: at least one more
    assert verdicts.n_to_decide(Interval(0.6, 0.5, 0.7, 4, "t"), 0.6) is None


def test_seed_and_item_bootstrap_widens_the_interval_by_the_seeds_spread():
    import random

    rng = random.Random(1)
    items = [rng.gauss(0, 1) for _ in range(60)]
    offsets = {"flat": [0.0, 0.0, 0.0], "spread": [-3.0, 0.0, 3.0]}

    def stat(picks, seeds):
        base = sum(items[i] for i in picks[0]) / len(picks[0])
        return {g: base + sum(offsets[g][s] for s in seeds[g]) / len(seeds[g]) for g in offsets}

    got = verdicts.seed_and_item_bootstrap([len(items)], {"flat": 3, "spread": 3}, stat, resamples=400)
    flat, spread = got["flat"], got["spread"]
    assert flat.mean == spread.mean and flat.lo < flat.mean < flat.hi
    assert (spread.hi - spread.lo) > 3 * (flat.hi - flat.lo)  # the seeds' spread (sd 2.4 / sqrt 3) dominates
    assert "3/3 training seeds" in spread.method and spread.n == 60
    assert got == verdicts.seed_and_item_bootstrap([len(items)], {"flat": 3, "spread": 3}, stat, resamples=400)
    assert verdicts.seed_and_item_bootstrap([5], {"flat": 3}, stat) == {}
