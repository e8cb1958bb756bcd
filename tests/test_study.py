"""The SmolLM2 study's pieces that need no real model: per-sentence chrF, spreads, the share of
replies cut by the cap."""

from __future__ import annotations

import pytest

from radis_utils import paper
from radis_utils.study import pilot
from tests.benchmark_helpers import benchmarks_dir, tiny_chat  # noqa: F401


def test_sentence_chrf_scores_each_sentence_like_a_corpus_of_one():
    from radis_utils.evaluate.translation import corpus_metrics, sentence_chrf

    refs = ["The cat sat on the mat.", "A dog barked."]
    hyps = ["The cat sat on the mat.", "Something else entirely"]
    scores = sentence_chrf(hyps, refs)
    assert scores[0] == 100.0 and 0 <= scores[1] < 30
    assert scores[1] == pytest.approx(corpus_metrics(hyps[1:], refs[1:], "en")["chrf"], abs=0.01)
    with pytest.raises(ValueError):
        sentence_chrf(hyps, refs[:1])


def test_spread_and_capped_share(tiny_backbone):
    from transformers import AutoTokenizer

    assert pilot.spread([1.0, 2.0, 3.0]) == {"mean": 2.0, "sd": 1.0, "n": 3}
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone)
    long = " ".join(["word"] * 40)
    n_long = len(tokenizer(long, add_special_tokens=False)["input_ids"])
    assert pilot.capped_share(tokenizer, [long, "word"], n_long) == 50.0
    assert pilot.capped_share(tokenizer, [long, "word"], n_long + 5) == 0.0


def test_power_matches_the_textbook_formula_and_inverts():
    import math

    from radis_utils.study import power

    # two-sided 5 %, power 80 %: (1.96 + 0.8416)^2 = 7.849 per unit of (sd/delta)^2
    assert power.items_needed(10.0, 2.0) == math.ceil(7.849 * 25)
    assert power.detectable(10.0, power.items_needed(10.0, 2.0)) <= 2.0
    assert power.detectable(10.0, 100) == pytest.approx(2.8016, abs=1e-3)
    assert power.sd_of_difference(10.0, 0.5) == pytest.approx(10.0)
    assert power.sd_of_difference(10.0, 0.0) == pytest.approx(10 * math.sqrt(2))
    assert power.binary_sd(30.0) == pytest.approx(45.8258, abs=1e-3)
    for bad in (lambda: power.items_needed(1.0, 0.0), lambda: power.detectable(1.0, 1),
                lambda: power.sd_of_difference(1.0, 1.5)):
        with pytest.raises(ValueError):
            bad()
    pilot_record = {"measures": {"ifeval": {"prompt_level_strict_acc": 30.0},
                                 "translation": {"directions": {"de-en": {"chrf": 15.0, "sentence_chrf": {"sd": 8.0}}}}}}
    row = power.ifeval_row(pilot_record, 5.0, "a tenth of the paper's drop", 300)
    assert row["items_needed"] == power.items_needed(power.binary_sd(30.0), 5.0) and row["chosen_n"] == 300
    row = power.translation_row(pilot_record, "de-en", 2.0, "issue's 1-2 chrF", 200)
    assert row["per_item_sd"] == 8.0 and row["detectable_at_chosen_n"] == pytest.approx(power.detectable(8.0, 200), abs=0.01)


def test_the_plan_reads_the_pilot_and_tuning_records():
    """The committed pilot and tuning records give the chapter's plan at the profile's sizes."""
    from radis_utils.records import read_json
    from radis_utils.study import power, run, tune

    cfg = run.study_config()
    tuning, pilot_record = read_json(tune.record_path()), read_json(pilot.record_path())
    rows = power.study_plan(pilot_record, tuning, cfg.data.max_test_pairs, cfg.eval.benchmark_limit)
    assert [r["measure"] for r in rows][:4] == [f"chrF {d}" for d in cfg.data.directions]
    assert len(rows) == 4 + len(power.IFEVAL_AIMS)
    share = pilot_record["measures"]["ifeval"]["prompt_level_strict_acc"]
    assert rows[4]["delta"] == pytest.approx(share * 0.6, abs=0.01)   # RP 100 -> 40
    assert rows[4]["items_needed"] <= cfg.eval.benchmark_limit < rows[5]["items_needed"] < rows[6]["items_needed"]
    assert all(r["chosen_n"] == cfg.data.max_test_pairs for r in rows[:4])


def test_the_chapter_tables_of_the_pilot_and_tuning_records():
    """RP's measures are the pilot's measures above the floor; the tuning table marks the choice."""
    from radis_utils.records import read_json
    from radis_utils.study import analysis, tables, tune

    pilot_record, tuning = read_json(pilot.record_path()), read_json(tune.record_path())
    assert tuple(tables.above_floor(pilot_record)) == analysis.RP_MEASURES
    rows = tables.pilot_rows(pilot_record)
    assert [r["in RP"] == "yes" for r in rows[:3]] == [m in analysis.RP_MEASURES for m in tables.PILOT_SHARES]
    chosen = [r for r in tables.tuning_rows(tuning) if r["chosen"]]
    assert len(chosen) == 1 and chosen[0]["model"] == f"vanilla, lr {tuning['choice']:g}"
    series = tables.tuning_series(tuning)
    by_rate = sorted(tuning["candidates"].values(), key=lambda c: c["learning_rate"])
    assert series["mean"] == ([c["learning_rate"] for c in by_rate], [c["mean"] for c in by_rate])
    assert set(series["backbone (mean)"][1]) == {tuning["backbone"]["mean"]}


def test_tuning_scores_validation_sentences_and_chooses_the_best(tiny_chat, alma_dir):
    from radis_utils.config import load_profile
    from radis_utils.study import tune

    cfg = load_profile(tune.STUDY, data={"alma_dir": str(alma_dir)}, eval={"engine": "hf", "max_new_tokens": 4})
    scores = tune.valid_chrf(cfg, *tiny_chat, n=2)
    assert list(scores) == list(cfg.data.directions)
    assert all(0 <= v["chrf"] <= 100 and len(v["sentences"]) == 2 for v in scores.values())
    assert tune.choose({"lr0.001": {"mean": 20.0}, "lr0.002": {"mean": 21.5}, "lr0.0005": {"mean": 21.5}}) == "lr0.002"
    assert any(t.setting == "train.learning_rate" for t in tune.TUNED)


def test_plan_orders_every_job_after_what_it_needs():
    from radis_utils.study import run

    cfg = run.study_config()
    jobs = run.plan(cfg)
    keys = [j.key for j, _ in jobs]
    assert len(keys) == len(set(keys))
    trained = len(cfg.train.seeds) * len(cfg.train.methods) + len(run.VARIANT_SEEDS)
    assert sum(j.stage == "train" for j, _ in jobs) == trained
    assert sum(j.stage == "evaluate" for j, _ in jobs) == sum(j.stage == "drift" for j, _ in jobs) == trained + 1
    position = {j: i for i, (j, _) in enumerate(jobs)}
    assert all(position[n] < position[j] for j, need in jobs for n in need)
    need = dict(jobs)
    assert need[run.Job("train", "vanilla", 0)] == ()
    assert need[run.Job("train", "radis", 0, True)] == (run.Job("synthesis", "rationale", variant=True),)
    assert run.Job.parse(run.Job("drift", "sdft", 2, True).key) == run.Job("drift", "sdft", 2, True)
    assert run.finished_file(run.Job("train", "radis", 0, True), cfg).parent.name == "radis-min1-seed0"
    done = run.finished_file(run.Job("synthesis", "rationale", variant=True), cfg)
    assert done.name == "rationale.done" and done.parent.name == run.VARIANT_SOURCE
    assert run.study_config(variant=True).synthesis.min_new_tokens == 1


def test_schedule_runs_two_at_a_time_skips_what_failed_needs_and_stops_on_time(tmp_path):
    import subprocess
    import sys

    from radis_utils.study.run import Job, schedule

    a, b, c, d, e = (Job("train", m) for m in "abcde")
    jobs = [(a, ()), (b, ()), (c, (a,)), (d, (b,)), (e, (c, d))]

    def is_done(job):
        return (tmp_path / job.method).is_file()

    procs: list[subprocess.Popen] = []
    alive_at_start: list[int] = []

    def start(job):
        code = "import sys, time; time.sleep(0.3); " + ("sys.exit(3)" if job is d else
                                                        f"open({str(tmp_path / job.method)!r}, 'w')")
        (tmp_path / f"{job.method}.started").write_text("")
        alive_at_start.append(sum(p.poll() is None for p in procs))
        procs.append(subprocess.Popen([sys.executable, "-c", code]))
        return procs[-1]

    lines: list[str] = []
    report = schedule(jobs, is_done, start, 2, None, lines.append, poll_s=0.05)
    assert set(report["finished"]) == {str(a), str(b), str(c)}
    assert report["failed"] == [str(d)] and report["left"] == [str(e)]
    assert max(alive_at_start) == 1 and len(alive_at_start) == 4  # never a third beside two running
    assert any("FAILED (exit 3)" in line for line in lines) and any("of 5 jobs done" in line for line in lines)
    # what is done is not run again; nothing starts once the hours are spent
    for f in tmp_path.glob("*.started"):
        f.unlink()
    report = schedule(jobs, is_done, start, 2, 0.0, lines.append, poll_s=0.05)
    assert report["finished"] == [] and set(report["left"]) == {str(d), str(e)}
    assert not list(tmp_path.glob("*.started"))


@pytest.mark.slow
def test_every_job_of_the_study_runs_at_toy_size(alma_dir, benchmarks_dir, tmp_path, monkeypatch):
    """The study's jobs in plan order, in this process, on a100-tiny's random two-layer Mistral:
    each leaves its finished file, the variant its own synthesis, adapter, results and drift."""
    from radis_utils.records import read_json
    from radis_utils.study import run

    monkeypatch.setattr(run, "DRIFT_PROMPTS", 20)
    monkeypatch.setattr(run, "DRIFT_TOKENS", 6)
    overrides = {"runtime__runs_dir": str(tmp_path / "runs"), "data__alma_dir": str(alma_dir),
                 "data__directions": ["de-en", "en-de"], "data__max_test_pairs": 10, "eval__benchmarks": ["ifeval"],
                 "eval__benchmarks_dir": str(benchmarks_dir), "eval__benchmark_limit": 10}
    cfg = run.study_config(False, "a100-tiny", **overrides)
    jobs = run.plan(cfg)
    for job, _ in jobs:
        run.run_job(job, "a100-tiny", **overrides)
        assert run.finished_file(job, cfg).is_file(), job
    from radis_utils import synthesis
    from radis_utils.train import adapter_dir

    variant_records = synthesis.records_path(run.study_config(True, "a100-tiny", **overrides), "rationale")
    assert variant_records.name == "rationale-min1.jsonl"
    handed = synthesis.records_path(cfg, "rationale", run.VARIANT_SOURCE)
    assert handed.read_text() == variant_records.read_text()
    key = read_json(adapter_dir(cfg, "radis", 0, run.VARIANT_TAG) / "summary.json")["key"]
    assert key["rationale_source"] == run.VARIANT_SOURCE
    variant = read_json(run.finished_file(run.Job("evaluate", "radis", 0, True), cfg))
    assert variant["tag"] == run.VARIANT_TAG and "ifeval" in variant["general"]
    drift = read_json(run.finished_file(run.Job("drift", "vanilla", 0), cfg))
    assert drift["prompts"] == 20 and drift["mean_nll"] > 0 and len(drift["items"]) >= 10
    assert run.schedule(jobs, lambda j: run.finished_file(j, cfg).is_file(), None, 2, None,
                        say=lambda line: None) == {"finished": [], "failed": [], "left": []}

    # the analysis reads those files: its values on all items equal what each file says
    from radis_utils import claims, verdicts
    from radis_utils.study import analysis

    found, sizes = analysis.intervals(cfg, resamples=60)
    assert sizes == {"de-en": 10, "en-de": 10, "ifeval": 10, "drift": len(drift["items"])}  # empty replies left out
    vanilla = read_json(run.finished_file(run.Job("evaluate", "vanilla", 0), cfg))
    assert found["vanilla chrf de-en"].mean == pytest.approx(vanilla["translation"]["de-en"]["chrf"], abs=0.006)
    assert found["vanilla ifeval"].mean == pytest.approx(vanilla["general"]["ifeval"])
    assert found["vanilla drift"].mean == pytest.approx(drift["mean_nll"])
    assert found["radis_min1 chrf"].mean == pytest.approx(variant_chrf := statistics_mean(variant), abs=0.006)
    rows = analysis.claim_rows(found)
    assert [r["claim"] for r in rows] == [c.name for c in claims.METHOD_CLAIMS]
    assert all(r["verdict"] in verdicts.VERDICTS for r in rows) and variant_chrf >= 0
    record = read_json(analysis.write_record(cfg, "test", resamples=30, path=tmp_path / "study.json"))
    assert record["config_hash"] and analysis.record_problems(record, cfg) == []
    assert [r["model"] for r in record["runs"]][:2] == ["backbone", "vanilla-seed0"]
    assert [r["claim"] for r in record["claims"]] == [r["claim"] for r in rows]
    assert record["runs"][1]["chrf de-en"] == vanilla["translation"]["de-en"]["chrf"]
    assert analysis.record_problems(record, run.study_config(False, "a100-tiny", **{**overrides, "train__epochs": 2}))
    assert [(r["method"], r["seed"]) for r in record["runs"]][:2] == [("backbone", None), ("vanilla", 0)]
    check_tables(record, vanilla)
    shares = analysis.rationale_shares(cfg)
    assert set(shares) == {"radis", analysis.VARIANT} and all(0 <= v <= 1 for v in shares.values())
    with pytest.raises(Exception, match="results.*backbone.json.*written by profile"):
        analysis.load_run(run.study_config(False, "a100-tiny", **{**overrides, "eval__max_new_tokens": 15}),
                          "backbone")


def check_tables(record, vanilla):
    """The book's tables and figure 1 read the record: every model, our intervals, the paper's cells."""
    from radis_utils import plots
    from radis_utils.study import tables

    models = ["backbone", "vanilla", "seqkd", "sdft", "radis", tables.LABELS[tables.VARIANT]]
    translation = tables.translation_rows(record)
    assert [r["model"] for r in translation] == models
    assert translation[1]["de-en: ours, chrF"] == tables.cell(record, "vanilla chrf de-en")
    assert translation[1]["de-en: ours, chrF"].startswith(f"{record['intervals']['vanilla chrf de-en']['mean']:.2f} [")
    assert translation[4]["en-de: paper, COMET (LLaMA-2 / Mistral)"] == "82.39 / " + str(
        paper.TRANSLATION.value["en-xx"]["Mistral-7B-Instruct-v0.2"]["radis"]["de"])
    general = tables.general_rows(record)
    assert [r["model"] for r in general] == models and general[0]["RP % (ours: IFEval)"] == "100 (by definition)"
    assert tables.ifeval_means(record, "vanilla")["prompt_level_strict_acc"] == pytest.approx(
        vanilla["general"]["ifeval"], abs=0.01)
    points = tables.figure1_points(record)
    assert points["backbone"][1] == (100.0, 100.0, 100.0) and set(points) <= set(tables.ORDER)
    assert plots.interval_tradeoff(points).axes
    assert tables.cell(record, "no such value") == "—"


def statistics_mean(result):
    """The mean chrF over a results file's directions."""
    values = [row["chrf"] for row in result["translation"].values() if isinstance(row, dict) and "chrf" in row]
    return sum(values) / len(values)


def test_the_committed_study_record_matches_the_settings():
    from radis_utils.records import read_json
    from radis_utils.study import analysis, run

    path = analysis.record_path()
    if not path.is_file():
        pytest.skip(f"{path} not written yet: the study runs outside CI (python -m radis_utils.study.run)")
    assert analysis.record_problems(read_json(path), run.study_config()) == []


def test_the_committed_pilot_record_matches_the_pilot_settings():
    from radis_utils import models
    from radis_utils.records import read_json

    record = read_json(pilot.record_path())  # committed: python -m radis_utils.study.pilot
    assert record["config_hash"] == models.config_hash(pilot.pilot_config()) and record["sizes"] == pilot.PILOT
    assert set(record["measures"]) == set(pilot.MEASURES)
    assert record["measures"]["ifeval"]["n"] == 541 and record["measures"]["drift"]["n"] <= pilot.PILOT["drift_prompts"]


def test_the_study_profile_uses_the_tuned_learning_rate():
    from radis_utils.records import read_json
    from radis_utils.study import run, tune

    path = tune.record_path()
    if not path.is_file():
        pytest.skip(f"{path} not written yet: python -m radis_utils.study.tune runs outside CI")
    record = read_json(path)
    assert record["grid"] == list(tune.GRID) and record["valid_pairs"] == tune.VALID_PAIRS
    assert run.study_config().train.learning_rate == record["choice"]
