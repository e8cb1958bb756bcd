"""Calibration in the open: the tuned settings, the worlds, and the committed records."""

from __future__ import annotations

import pytest

from radis_utils import calibration, claims, evaluate, gradients, machines, models
from radis_utils.config import load_profile


def test_every_tuned_setting_shows_the_value_in_effect():
    cfg = load_profile("ci")
    rows = {r["setting"]: r for r in calibration.tuned_rows(cfg)}
    assert rows["train.learning_rate"]["ours"] == str(cfg.train.learning_rate)
    assert rows["train.epochs"]["ours"] == str(cfg.train.epochs)
    assert rows["train.lora_dropout"]["ours"] == str(cfg.train.lora_dropout)
    assert "mid" in rows["gradients.PRIMARY"]["ours"]
    assert all(r["tuned against (world 0 only)"] and r["paper"] for r in rows.values())
    with pytest.raises(KeyError, match="no value for 'train.nonsense'"):
        calibration.setting_value(cfg, "train.nonsense")


def test_world_zero_is_the_profile_and_the_others_write_elsewhere():
    cfg = load_profile("ci")
    zero, one = calibration.world_config("ci", 0), calibration.world_config("ci", 1)
    assert models.config_hash(zero) == models.config_hash(cfg) and zero.runs_dir == cfg.runs_dir
    assert one.organism["world_seed"] == 1 and one.organism["train_seed"] == cfg.organism["train_seed"]
    assert one.runs_dir != cfg.runs_dir and "calibration/world1" in str(one.runs_dir)
    assert models.config_hash(one) != models.config_hash(cfg)


def world(seed, vanilla_rp, radis_gain, fig4=None):
    return {"world_seed": seed, "acceptance_values": {"vanilla_rp": vanilla_rp, "radis_gain_ratio": radis_gain},
            "fig4": fig4}


def test_checks_hold_on_the_mean_over_worlds_and_report_the_spread():
    worlds = [world(0, 30.0, 0.9, {"mean_share": {"radis": 1.0, "seqkd": 0.5}}),
              world(1, 50.0, 0.8, {"mean_share": {"radis": 0.8, "seqkd": 0.7}}),
              world(2, 37.0, 0.86, {"mean_share": {"radis": None, "seqkd": 0.9}})]  # world 2 lacks a fig. 4 share
    agg = calibration.aggregate(worlds)
    assert agg["vanilla_rp"]["mean"] == pytest.approx(39.0) and agg["vanilla_rp"]["spread"] == pytest.approx(20.0)
    assert agg["fig4_radis_share"]["n"] == 2 and agg["fig4_radis_share"]["worlds"][2] is None
    checks = calibration.checks(agg)
    assert checks["vanilla RP ≤ 40"]["holds"] is True  # 39 on the mean, though world 1 alone misses
    assert checks["RaDis gain ≥ 0.85 × vanilla gain"] == {"mean": 0.853, "spread": 0.1, "threshold": 0.85,
                                                          "worlds": [0.9, 0.8, 0.86], "holds": True}
    seqkd = checks[gradients.CHECKS["seqkd"]]
    assert seqkd["mean"] == pytest.approx(0.6) and seqkd["holds"] is False
    assert "SDFT RP ≥ 70" not in checks  # no world has it: left out, not made up


def test_a_record_written_under_other_settings_names_the_world_and_the_fix(tmp_path):
    cfg = calibration.world_config("ci", 1)
    stale = {"profile": "ci", "worlds": [{"world_seed": 1, "config_hash": "0123456789ab"}]}
    (problem,) = calibration.record_problems(stale)
    assert "world 1: recorded under config 0123456789ab" in problem and models.config_hash(cfg) in problem
    assert "python -m radis_utils.calibration --profile ci" in problem
    assert calibration.read_record("ci", tmp_path / "none.json") is None


# --- the committed record (calibration/ci.json) ---------------------------------------------

RECORD = calibration.read_record("ci")

#: The record's thresholds whose mean over its worlds misses (calibration/ci.json: worlds 0-2 of
#: 2026-12-01, worlds 3-11 of 2026-12-07 on another machine; nothing tuned on worlds 1-11). Strict:
#: a check that starts to hold fails here until it is taken off this list. These are the mean-only
#: checks the record stores; the book's verdicts (chapter 09, ``radis_utils.claims``) read each
#: value's t-interval over the worlds, and all three are *not reproduced* there (tests/test_claims.py
#: holds Seq-KD's).
KNOWN_MISSES: dict[str, str] = {
    "vanilla RP ≤ 40": "mean 50.3 over 12 worlds (33.5-65.6): vanilla forgets less than the paper's",
    "RaDis RP ≥ 85": "mean 78.1 over 12 worlds (64.9-93.8; 85 or more in 2)",
    "Seq-KD gain ≤ 0.4 × RaDis gain": "mean 0.851 over 12 worlds (0.777-0.901): Seq-KD learns most of RaDis's gain",
}


def test_the_record_covers_the_calibration_worlds_under_the_current_settings():
    assert RECORD is not None, f"{calibration.record_path('ci')} is missing: run python -m radis_utils.calibration"
    assert [w["world_seed"] for w in RECORD["worlds"]] == list(calibration.WORLD_SEEDS)
    assert calibration.record_problems(RECORD) == []
    assert set(RECORD["checks"]) == set(calibration.checks(RECORD["aggregate"]))  # as the code computes them


CHECKS = list(evaluate.ACCEPTANCE) + list(gradients.CHECKS.values())


@pytest.mark.parametrize("check", [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[c]))
                                   if c in KNOWN_MISSES else c for c in CHECKS])
def test_issue_15_threshold_on_the_mean_over_the_recorded_worlds(check):
    assert RECORD is not None
    result = RECORD["checks"][check]
    assert result["holds"], result


@pytest.mark.slow
def test_this_build_matches_the_recorded_world_0_on_its_kernels_or_within_the_machine_spread(built_book):
    """This checkout's ci run (chapters 05-08) against world 0 as recorded. On kernels that a
    build of ``calibration/ci-kernels.json`` used (same fingerprint) it must be that build, to
    the last digit; on other kernels (another CPU) the organism is another model, so each value
    must lie within the 99 % prediction interval of the recorded builds (the machine as one more
    random draw: ``machines.prediction_margin``)."""
    cfg = calibration.world_config("ci", 0)
    live = calibration.world_summary(cfg)
    assert live["config_hash"] == next(w for w in RECORD["worlds"] if w["world_seed"] == 0)["config_hash"]
    kernels = machines.read_record("ci")
    assert kernels is not None, f"{machines.record_path('ci')} is missing: run python -m radis_utils.machines"
    builds = kernels["builds"]
    here = machines.fingerprint_here()
    same = [b for b in builds.values() if b.get("fingerprint") == here]
    values = claims.world_mean(live)
    if same:
        for key, value in claims.world_mean(same[0]).items():
            assert values[key] == pytest.approx(value, abs=1e-9), (key, "kernels", here)
        return
    means = [claims.world_mean(b) for b in builds.values()]
    for key in set.intersection(*(set(m) for m in means)):
        got = [m[key] for m in means]
        centre, margin = sum(got) / len(got), machines.prediction_margin(got)
        if margin == 0:  # the same on every recorded machine (e.g. RaDis's LESS share): no spread to predict from
            continue
        assert abs(values[key] - centre) <= margin, (key, values[key], centre, margin, "kernels", here)


def test_only_an_organism_profile_with_its_own_settings_has_a_current_record(tmp_path):
    assert calibration.current_record(load_profile("smol")) is None  # a real backbone has no worlds
    assert calibration.current_record(load_profile("ci", runtime__runs_dir=str(tmp_path))) is None
    assert calibration.current_record(load_profile("ci")) == RECORD


def test_adding_worlds_keeps_the_others_and_says_where_each_was_built():
    old = [{"world_seed": 0, "x": "a"}, {"world_seed": 2, "x": "b"}]
    new = [{"world_seed": 3, "x": "c", "built": calibration.built_here("cmd")}, {"world_seed": 2, "x": "d"}]
    merged = calibration.merged_worlds(old, new)
    assert [(w["world_seed"], w["x"]) for w in merged] == [(0, "a"), (2, "d"), (3, "c")]
    built = merged[2]["built"]
    assert built["command"] == "cmd" and "torch kernels" in built["cpu"] and built["created"]
    rows = calibration.world_rows(RECORD)
    assert {r["built on"] for r in rows} >= {"-"}  # worlds 0-2 were recorded before CPUs were
