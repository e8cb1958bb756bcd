"""The organism across CPUs: kernel fingerprints, the committed builds and the spread they give."""

from __future__ import annotations

import pytest

from radis_utils import calibration, claims, machines


def test_the_fingerprint_tells_forced_kernels_apart_and_is_stable_under_the_same_ones():
    """PyTorch's vectorised kernels (``ATEN_CPU_CAPABILITY``) and MKL's GEMM branch (``MKL_CBWR``)
    are what differ between CPUs; forcing them here stands in for other machines."""
    here = machines.fingerprint_here()
    assert here == machines.fingerprint_here()
    portable = machines.fingerprint_here(machines.KERNEL_VARIANTS["portable"])
    assert portable == machines.fingerprint_here(machines.KERNEL_VARIANTS["portable"])
    assert portable != here  # another kernel set: other bits (on any CPU with a vectorised path)
    assert machines.fingerprint_here({"ATEN_CPU_CAPABILITY": "default"}) != here


def test_prediction_margin_grows_with_the_spread_and_needs_two_builds():
    assert machines.prediction_margin([1.0, 1.0, 1.0]) == 0.0
    narrow, wide = machines.prediction_margin([1.0, 1.1, 0.9]), machines.prediction_margin([1.0, 1.5, 0.5])
    assert 0 < narrow < wide == pytest.approx(5 * narrow)
    with pytest.raises(ValueError, match="two builds"):
        machines.prediction_margin([1.0])


def test_variants_write_beside_the_book_and_native_is_the_book():
    assert machines.variant_config("ci", "native").runs_dir == calibration.world_config("ci", 0).runs_dir
    assert "kernels-portable" in str(machines.variant_config("ci", "portable").runs_dir)


RECORD = machines.read_record("ci")


def test_the_committed_builds_describe_world_0_under_this_checkouts_settings():
    assert RECORD is not None, f"{machines.record_path('ci')} is missing: run python -m radis_utils.machines"
    builds = RECORD["builds"]
    assert set(machines.KERNEL_VARIANTS) <= set(builds) and "calibration record" in builds
    zero = calibration.world_config("ci", 0)
    assert builds["native"]["config_hash"] == calibration.models.config_hash(zero)
    prints = [builds[v]["fingerprint"] for v in machines.KERNEL_VARIANTS]
    assert len(set(prints)) == len(prints)  # each variant really ran on other kernels
    margins = claims.machine_margins("ci")
    assert {"vanilla_rp", "radis_rp", "seqkd_vs_radis_gain", "balance_margin"} <= set(margins)
    assert all(m >= 0 for m in margins.values())
