"""Evaluation of one model into a results file; the organism's scientific acceptance."""

from __future__ import annotations

import json

import pytest

from radis_utils import evaluate, models, train
from radis_utils.config import load_profile
from radis_utils.data import Pair


def tiny_cfg(backbone, runs, **kw):
    settings = dict(model__backbone=str(backbone), runtime__runs_dir=str(runs), data__max_test_pairs=6,
                    eval__general_items=2, eval__max_new_tokens=8, data__max_train_pairs=16,
                    train__max_steps=1, train__per_device_batch=16, train__effective_batch=16)
    return load_profile("ci", **{**settings, **kw})


def test_results_are_written_once_and_checked_against_the_config(tiny_backbone, tmp_path):
    cfg = tiny_cfg(tiny_backbone, tmp_path)
    base = evaluate.evaluate(cfg, evaluate.BACKBONE)
    path = evaluate.results_path(cfg, evaluate.BACKBONE)
    assert path == tmp_path / "ci" / "results" / "backbone.json" and path.is_file()
    assert base["rp"] == 100.0 and set(base["general"]) == {"arithmetic", "facts", "safety", "instructions"}
    assert base["translation"]["en-sy"]["n"] == 6 and "avg_en_xx" in base["translation"]
    assert len(base["replies"]["en-sy"]) == 6 and base["extraction"] == cfg.eval.extraction
    assert evaluate.evaluate(cfg, evaluate.BACKBONE) == json.loads(path.read_text())  # read, not recomputed
    other = tiny_cfg(tiny_backbone, tmp_path, eval__max_new_tokens=9)
    with pytest.raises(evaluate.ResultsError, match=r"backbone\.json: written by profile 'ci' with config .*"
                                                    r"\(differing: eval\.max_new_tokens: 8 stored, 9 asked\)"):
        evaluate.evaluate(other, evaluate.BACKBONE)
    path.write_text("{not json")
    with pytest.raises(evaluate.ResultsError, match=r"backbone\.json: not valid JSON"):
        evaluate.read_results(path)
    path.write_text("[1, 2]")
    with pytest.raises(evaluate.ResultsError, match=r"backbone\.json: expected a JSON object, got list; delete it"):
        evaluate.read_results(path)


def test_an_adapter_is_evaluated_with_rp_against_the_backbone(tiny_backbone, tmp_path, monkeypatch):
    from radis_utils.evaluate import suite

    cfg = tiny_cfg(tiny_backbone, tmp_path)
    scores = iter([({"a": 40.0, "b": 10.0}, []), ({"a": 20.0, "b": 10.0}, [])])  # backbone, then adapter
    monkeypatch.setattr(suite, "general_ability", lambda *args: next(scores))
    with pytest.raises(Exception, match="no adapter_config.json; train it first"):
        evaluate.evaluate(cfg, "vanilla", 0)
    train.train(cfg, "vanilla", 0)
    evaluate.evaluate(cfg, evaluate.BACKBONE)
    result = evaluate.evaluate(cfg, "vanilla", 0)
    assert result["rp"] == 75.0  # (20/40 + 10/10) / 2
    assert result["method"] == "vanilla" and result["seed"] == 0 and result["config_hash"] == models.config_hash(cfg)
    other = tiny_cfg(tiny_backbone, tmp_path / "other", train__learning_rate=1e-5, train__epochs=1.0)
    import shutil

    shutil.copytree(train.adapter_dir(cfg, "vanilla", 0), train.adapter_dir(other, "vanilla", 0))
    with pytest.raises(evaluate.ResultsError, match=r"vanilla-seed0/summary\.json: this adapter was trained with other "
                                                    r"settings than profile 'ci' asks \(train\.epochs: 8\.0 stored, 1\.0 "
                                                    r"asked; train\.learning_rate: 0\.004 stored, 1e-05 asked\)"):
        evaluate.evaluate(other, "vanilla", 0)
    (train.adapter_dir(other, "vanilla", 0) / "summary.json").unlink()
    with pytest.raises(evaluate.ResultsError, match=r"vanilla-seed0: no summary\.json, so its training did not finish"):
        evaluate.evaluate(other, "vanilla", 0)


def test_empty_test_lines_are_refused_with_the_pair_named(tiny_backbone, tmp_path, monkeypatch):
    cfg = tiny_cfg(tiny_backbone, tmp_path)
    from radis_utils.evaluate import suite

    monkeypatch.setattr(suite.data, "test_pairs", lambda cfg, d: [Pair("en", "sy", "a b .", "", "wmt:7")])
    with pytest.raises(evaluate.ResultsError, match=r"en-sy \(wmt:7\): empty source or reference"):
        suite.translate(cfg, None, None, "en-sy")


def fake(chrf, rp, general=None):
    return {"translation": {"en-sy": {"chrf": chrf, "bleu": chrf}}, "rp": rp, "general": general or {}}


def test_acceptance_reads_seed_means():
    backbone = fake(60, 100)
    results = {"vanilla": [fake(100, 40), fake(98, 50)], "radis": [fake(95, 90), fake(93, 88)],
               "seqkd": [fake(62, 70), fake(60, 72)]}
    checks = evaluate.acceptance(backbone, results)
    assert checks["vanilla RP ≤ 60"] == {"value": 45.0, "threshold": 60.0, "holds": True}
    assert checks["RaDis gain ≥ 0.8 × vanilla gain"]["value"] == pytest.approx((94 - 60) / (99 - 60), abs=1e-3)
    assert checks["Seq-KD gain ≤ 0.5 × RaDis gain"]["holds"]
    results["radis"] = [fake(70, 90)]
    assert not evaluate.acceptance(backbone, results)["RaDis gain ≥ 0.8 × vanilla gain"]["holds"]


@pytest.mark.slow
@pytest.mark.parametrize("check", list(evaluate.ACCEPTANCE))
def test_the_organism_reproduces_the_papers_pattern(built_book, check):
    """Issue 6's thresholds, read from the results files chapter 05 wrote (ci, every seed)."""
    cfg = load_profile("ci")
    backbone = evaluate.read_results(evaluate.results_path(cfg, evaluate.BACKBONE), cfg)
    results = {m: [evaluate.read_results(evaluate.results_path(cfg, m, s), cfg) for s in cfg.train.seeds]
               for m in ("vanilla", "radis", "seqkd")}
    assert len(cfg.train.seeds) >= 2
    result = evaluate.acceptance(backbone, results)[check]
    assert result["holds"], result
