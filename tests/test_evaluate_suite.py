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
    assert path.with_suffix(".csv").is_file()  # the tidy table beside it (evaluate.tables)
    assert base["rp"] == 100.0 and set(base["general"]) == {"arithmetic", "facts", "safety", "instructions"}
    assert base["translation"]["en-sy"]["n"] == 6 and "avg_en_xx" in base["translation"]
    assert len(base["replies"]["en-sy"]) == 6 and base["extraction"] == cfg.eval.extraction
    assert evaluate.evaluate(cfg, evaluate.BACKBONE) == json.loads(path.read_text())  # read, not recomputed
    other = tiny_cfg(tiny_backbone, tmp_path, eval__max_new_tokens=9)
    with pytest.raises(evaluate.ResultsError, match=r"backbone\.json: written by profile 'ci' with config .*"
                                                    r"\(differing: eval\.max_new_tokens: 8 stored, 9 asked\)"):
        evaluate.evaluate(other, evaluate.BACKBONE)
    path.write_text("{not json")
    with pytest.raises(evaluate.ResultsError, match=r"backbone\.json:1:2: not valid JSON"):
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
        suite.translate(cfg, None, None, ["en-sy"])


def fake(chrf, rp, general=None):
    return {"translation": {"en-sy": {"chrf": chrf, "bleu": chrf}}, "rp": rp, "general": general or {}}


def test_acceptance_reads_seed_means():
    backbone = fake(60, 100)
    results = {"vanilla": [fake(96, 30), fake(92, 40)], "radis": [fake(93, 90), fake(91, 88)],
               "seqkd": [fake(66, 80), fake(64, 82)], "sdft": [fake(80, 75), fake(78, 71)]}
    checks = evaluate.acceptance(backbone, results)
    assert list(checks) == list(evaluate.ACCEPTANCE)
    assert checks["vanilla RP ≤ 40"] == {"value": 35.0, "threshold": 40.0, "holds": True}
    assert checks["vanilla chrF ≤ 95"] == {"value": 94.0, "threshold": 95.0, "holds": True}
    assert checks["RaDis gain ≥ 0.85 × vanilla gain"]["value"] == pytest.approx((92 - 60) / (94 - 60), abs=1e-3)
    assert checks["Seq-KD gain ≤ 0.4 × RaDis gain"]["value"] == pytest.approx(5 / 32, abs=1e-3)
    assert checks["SDFT gain < RaDis gain"]["value"] == pytest.approx(19 / 32, abs=1e-3)
    assert all(c["holds"] for c in checks.values())
    worse = {**results, "vanilla": [fake(99, 41)], "radis": [fake(85, 84)], "seqkd": [fake(80, 79)],
             "sdft": [fake(86, 69)]}
    assert not any(c["holds"] for c in evaluate.acceptance(backbone, worse).values())
    assert not evaluate.acceptance(backbone, {**results, "sdft": [fake(92, 75)]})["SDFT gain < RaDis gain"]["holds"]
    partial = evaluate.acceptance(backbone, {m: results[m] for m in ("vanilla", "radis")})
    assert set(partial) == {"vanilla RP ≤ 40", "RaDis RP ≥ 85", "vanilla chrF ≤ 95", "RaDis gain ≥ 0.85 × vanilla gain"}


@pytest.mark.slow
def test_chapter_06s_checks_are_computed_from_its_results_files(built_book):
    """Every threshold of ``evaluate.ACCEPTANCE`` gets a value from the files chapter 06 wrote
    (ci, every seed), and its ``holds`` is the threshold applied to that value. Whether a check
    holds on this build is not asserted: the organism's numbers move with the CPU's kernels
    (``radis_utils.machines``); the record's mean over worlds is held in tests/test_calibration.py
    and the verdicts with their intervals in tests/test_claims.py."""
    cfg = load_profile("ci")
    backbone = evaluate.read_results(evaluate.results_path(cfg, evaluate.BACKBONE), cfg)
    results = {m: [evaluate.read_results(evaluate.results_path(cfg, m, s), cfg) for s in cfg.train.seeds]
               for m in ("vanilla", "radis", "seqkd", "sdft")}
    assert len(cfg.train.seeds) >= 2
    checks = evaluate.acceptance(backbone, results)
    assert set(checks) == set(evaluate.ACCEPTANCE)
    values = evaluate.acceptance_values(backbone, results)
    for name, (key, op, limit) in evaluate.ACCEPTANCE.items():
        assert checks[name]["holds"] == evaluate.threshold_holds(op, values[key], limit), name


# --- the general suite of a real backbone (benchmarks.run_general_suite) ---------------------

def real_cfg(backbone, runs, alma, **kw):
    settings = dict(model__backbone=str(backbone), runtime__runs_dir=str(runs), data__alma_dir=str(alma),
                    data__directions=["de-en"], data__max_test_pairs=2, data__max_train_pairs=4,
                    eval__max_new_tokens=4, eval__comet_model="", eval__benchmark_limit=3,
                    train__max_steps=1, train__per_device_batch=4, train__effective_batch=4, train__max_length=1024)
    return load_profile("smol", **{**settings, **kw})


def test_a_real_backbone_gets_the_general_suite_with_rp_over_what_ran(tiny_backbone, alma_dir, tmp_path, monkeypatch):
    import sys
    import types

    calls = []
    per_model = {"backbone": {"gsm8k": 0.0, "advbench": 50.0, "mt_bench": None, "alpaca_eval": 20.0},
                 "vanilla-seed0": {"gsm8k": 5.0, "advbench": 25.0, "mt_bench": None, "alpaca_eval": 20.0}}

    def run_general_suite(model, tokenizer, **kw):
        calls.append({"tokenizer": tokenizer, **kw})
        scores = per_model[kw["out_dir"].name]
        details = {b: ({"skipped": "no judge endpoint: set OPENAI_API_KEY"} if s is None else
                       {"n": kw["limit"], "judge": "keyword" if b == "advbench" else "exact"}) for b, s in scores.items()}
        return {"scores": scores, "details": details}

    from radis_utils.evaluate import benchmarks as real

    monkeypatch.setitem(sys.modules, "radis_utils.evaluate.benchmarks",
                        types.SimpleNamespace(run_general_suite=run_general_suite, unjudged=real.unjudged,
                                              rejudge=real.rejudge))
    cfg = real_cfg(tiny_backbone, tmp_path, alma_dir)
    base = evaluate.evaluate(cfg, evaluate.BACKBONE)
    assert base["benchmarks"] == ["gsm8k", "advbench", "mt_bench", "alpaca_eval"]
    assert base["general"] == {"gsm8k": 0.0, "advbench": 50.0, "alpaca_eval": 20.0}
    assert base["general_details"]["advbench"] == {"n": 3, "judge": "keyword"}
    assert base["notes"] == ["mt_bench skipped: no judge endpoint: set OPENAI_API_KEY"]
    first = calls[0]
    assert first["limit"] == 3 and first["guard_model"] is None and first["model_id"] == "smol-backbone"
    assert first["benchmarks_dir"].name == "benchmarks" and first["max_new_tokens"] == cfg.eval.general_max_new_tokens
    assert first["tokenizer"].chat_template  # the profile's tokenizer, chat template included
    train.train(cfg, "vanilla", 0)
    result = evaluate.evaluate(cfg, "vanilla", 0)
    assert result["rp_benchmarks"] == ["advbench", "alpaca_eval"]  # gsm8k: backbone 0, ratio undefined
    assert result["rp"] == 75.0  # (25/50 + 20/20) / 2
    assert json.loads(evaluate.results_path(cfg, "vanilla", 0).read_text())["rp"] == 75.0
    adapter_tok = calls[-1]["tokenizer"]  # lm-eval & co. get the adapter's tokenizer, chat template included
    assert str(train.adapter_dir(cfg, "vanilla", 0)) in adapter_tok.name_or_path and adapter_tok.chat_template
    assert calls[-1]["model_id"] == "smol-vanilla-seed0" and calls[-1]["out_dir"].name == "vanilla-seed0"


def test_without_the_benchmarks_module_the_error_says_so(tiny_backbone, alma_dir, tmp_path, monkeypatch):
    import sys

    from radis_utils.evaluate import suite

    monkeypatch.setitem(sys.modules, "radis_utils.evaluate.benchmarks", None)
    cfg = real_cfg(tiny_backbone, tmp_path, alma_dir)
    with pytest.raises(evaluate.ResultsError, match="needs radis_utils.evaluate.benchmarks"):
        suite.general_suite(cfg, None, None, "backbone")
    assert suite.general_suite(real_cfg(tiny_backbone, tmp_path, alma_dir, eval__benchmarks=[]), None, None, "x")["general"] == {}


def test_a_run_says_how_its_evaluation_differs_from_the_papers(monkeypatch):
    from radis_utils.evaluate import translation

    monkeypatch.setattr(translation, "comet_available", lambda: True)
    monkeypatch.setenv("RADIS_JUDGE_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("RADIS_JUDGE_MODEL", "judge")
    a100 = load_profile("a100")
    assert a100.eval.guard_model == "meta-llama/Llama-Guard-3-8B"  # the paper's AdvBench judge by default
    assert evaluate.evaluation_gaps(a100) == ["chapter 09 grades translation claims on chrF, not COMET"]
    keyword = evaluate.evaluation_gaps(load_profile("a100", eval__guard_model=None))
    assert any("refusal keywords" in g for g in keyword)
    monkeypatch.setattr(translation, "comet_available", lambda: False)
    assert any("COMET not installed" in g for g in evaluate.evaluation_gaps(a100))
    assert "organism" in evaluate.evaluation_gaps(load_profile("ci"))[0]


def _stored(cfg, tmp_path):
    """A backbone results file as the GPU environment writes it: replies stored, no COMET."""
    from radis_utils.evaluate import suite

    pairs = suite.checked_test_pairs(cfg, "de-en")
    replies = {"de-en": [p.reference for p in pairs]}
    result = {"profile": cfg.profile, "config_hash": models.config_hash(cfg), "method": "backbone",
              "translation": evaluate.per_direction_table({"de-en": {"chrf": 50.0, "bleu": 20.0, "n": len(pairs)}}),
              "replies": replies, "general": {}, "extraction": cfg.eval.extraction}
    path = evaluate.results_path(cfg, evaluate.BACKBONE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return path


def test_comet_is_added_from_the_stored_replies_without_loading_a_model(tiny_backbone, alma_dir, tmp_path, monkeypatch):
    from radis_utils.evaluate import suite

    cfg = real_cfg(tiny_backbone, tmp_path, alma_dir, eval__comet_model="Unbabel/wmt22-comet-da")
    path = _stored(cfg, tmp_path)
    monkeypatch.setattr(suite.models, "load_model", lambda *a, **k: pytest.fail("no model may be loaded"))
    monkeypatch.setattr(suite, "score_comet_or_skip", lambda *a, **k: (None, "COMET skipped: not installed"))
    assert "comet" not in evaluate.evaluate(cfg, evaluate.BACKBONE)["translation"]["de-en"]  # cannot: unchanged
    calls = []
    monkeypatch.setattr(suite, "score_comet_or_skip",
                        lambda model, src, hyp, ref, *a: calls.append(hyp) or ({"comet": 81.5}, f"COMET scored with {model}"))
    result = evaluate.evaluate(cfg, evaluate.BACKBONE)
    assert result["translation"]["de-en"]["comet"] == 81.5 and result["translation"]["avg_xx_en"]["comet"] == 81.5
    assert result["metrics"] == ["bleu", "chrf", "comet"]
    assert json.loads(path.read_text())["metrics"] == ["bleu", "chrf", "comet"]  # written back
    assert calls[0] == json.loads(path.read_text())["replies"]["de-en"]  # scored from the stored replies
    evaluate.evaluate(cfg, evaluate.BACKBONE)
    assert len(calls) == 1  # present now: not scored again


def test_score_only_command_rescores_every_results_file(tiny_backbone, alma_dir, tmp_path, monkeypatch, capsys):
    from radis_utils.evaluate import __main__ as cli
    from radis_utils.evaluate import suite

    cfg = real_cfg(tiny_backbone, tmp_path, alma_dir, eval__comet_model="Unbabel/wmt22-comet-da")
    _stored(cfg, tmp_path)
    monkeypatch.setattr(cli, "load_profile", lambda name: cfg)
    monkeypatch.setattr(suite, "score_comet_or_skip", lambda *a, **k: ({"comet": 70.0}, "COMET scored with x"))
    assert cli.main(["--profile", "smol", "--score-only"]) == 0
    assert "backbone.json: rescored; metrics bleu, chrf, comet" in capsys.readouterr().out


def test_a_real_comet_checkpoint_scores_stored_replies(tiny_backbone, alma_dir, tmp_path):
    """In the evaluation environment (transformers 4.57 + COMET: the compat suite)."""
    import importlib.util
    import os

    if importlib.util.find_spec("comet") is None:
        if os.environ.get("RADIS_REQUIRE_COMET") == "1":
            pytest.fail("RADIS_REQUIRE_COMET=1 but unbabel-comet is not installed (the `eval` extra)")
        pytest.skip("unbabel-comet not installed (the `eval` extra, transformers<5)")
    from tests.test_evaluate_translation import _tiny_comet_model

    _, model_dir = _tiny_comet_model(tmp_path / "comet")
    cfg = real_cfg(tiny_backbone, tmp_path, alma_dir, eval__comet_model=str(model_dir), eval__batch_size=2)
    _stored(cfg, tmp_path)
    result = evaluate.evaluate(cfg, evaluate.BACKBONE)
    assert isinstance(result["translation"]["de-en"]["comet"], float) and "comet" in result["metrics"]


def test_benchmarks_a_judge_missed_are_judged_from_stored_answers_once_it_answers(tiny_backbone, alma_dir, tmp_path,
                                                                                 monkeypatch):
    """No judge when the file was written; later one answers: MT-Bench and AlpacaEval are judged
    from the stored answers (no model loaded) and the file is rewritten; a judge that is down changes nothing."""
    from radis_utils.evaluate import judge, suite
    from tests.benchmark_helpers import ScriptedServer, completion, judge_env

    for name in (judge.ENV_BASE_URL, judge.ENV_MODEL):
        monkeypatch.delenv(name, raising=False)
    cfg = real_cfg(tiny_backbone, tmp_path, alma_dir, eval__benchmarks=["mt_bench", "alpaca_eval"],
                   eval__benchmark_limit=1, eval__general_max_new_tokens=4)
    first = evaluate.evaluate(cfg, evaluate.BACKBONE)
    assert first["general"] == {} and all("judge skipped" in n for n in first["notes"]), first["notes"]
    monkeypatch.setattr(suite.models, "load_model", lambda *a, **k: pytest.fail("no model may be loaded"))
    with ScriptedServer([(503, {}, {"error": "down"})]) as down:
        judge_env(monkeypatch, down.origin + "/v1")
        monkeypatch.setenv(judge.ENV_ATTEMPTS, "1")
        assert evaluate.evaluate(cfg, evaluate.BACKBONE)["general"] == {}  # still down: as it was
    with ScriptedServer([completion("Fine. Rating: [[7]]. Verdict: [[A]]")]) as up:
        judge_env(monkeypatch, up.origin + "/v1")
        again = evaluate.evaluate(cfg, evaluate.BACKBONE)
    assert again["general"]["mt_bench"] == 7.0 and again["general"]["alpaca_eval"] == 100.0
    assert again["notes"] == [] and "127.0.0.1" in again["general_details"]["mt_bench"]["judge"]
    assert json.loads(evaluate.results_path(cfg, evaluate.BACKBONE).read_text())["general"] == again["general"]
    assert evaluate.results_path(cfg, evaluate.BACKBONE).with_suffix(".csv").read_text().count("mt_bench") >= 1
