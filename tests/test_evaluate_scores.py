"""Relative performance (paper table 3's RP) and gain ratios.

RP is checked on a hand-made example here; ``tests/test_paper.py`` re-derives table 3's printed RP
column from its raw columns with the same function (``paper.GENERAL_ABILITY``).
"""

from __future__ import annotations

import pytest

from radis_utils.evaluate.scores import gain_ratio, relative_performance, rp_over_scored


def test_rp_is_the_mean_ratio_in_percent():
    backbone = {"mt_bench": 6.0, "alpaca_eval": 80.0, "advbench": 100.0}
    model = {"mt_bench": 3.0, "alpaca_eval": 80.0, "advbench": 70.0}
    # (0.5 + 1.0 + 0.7) / 3 * 100
    assert relative_performance(backbone, model) == pytest.approx(73.3333333)
    assert relative_performance(backbone, backbone) == pytest.approx(100.0)
    assert relative_performance({"x": 2.0}, {"x": 3.0}) == pytest.approx(150.0)  # may exceed 100


def test_rp_errors_name_the_benchmarks():
    with pytest.raises(ValueError, match=r"missing in model: \['advbench'\]; extra in model: \['gsm8k'\]"):
        relative_performance({"mt_bench": 6.0, "advbench": 99.0}, {"mt_bench": 5.0, "gsm8k": 20.0})
    with pytest.raises(ValueError, match="empty"):
        relative_performance({}, {})
    with pytest.raises(ValueError, match="'gsm8k' is 0"):
        relative_performance({"gsm8k": 0.0}, {"gsm8k": 1.0})


def test_gain_ratio():
    assert gain_ratio(80.0, 84.0, 85.0) == pytest.approx(0.8)
    assert gain_ratio(80.0, 78.0, 85.0) == pytest.approx(-0.4)
    with pytest.raises(ValueError, match="reference .*equals base"):
        gain_ratio(80.0, 81.0, 80.0)


def test_rp_over_the_benchmarks_both_scored():
    """A benchmark the backbone scored 0 or did not score, or the model did not score, is left out."""
    base = {"gsm8k": 40.0, "advbench": 90.0, "mt_bench": None, "alpaca_eval": 0.0, "extra": 5.0}
    model = {"gsm8k": 20.0, "advbench": 90.0, "mt_bench": 6.0, "alpaca_eval": 10.0}
    assert rp_over_scored(base, model) == (75.0, ["gsm8k", "advbench"])
    assert rp_over_scored({"mt_bench": None}, {"mt_bench": 5.0}) == (None, [])
