"""Every claim of the paper as a row, graded by the one rule on its interval."""

from __future__ import annotations

import json

import pytest

from radis_utils import calibration, claims, evaluate, gradients, models, observation, verdicts
from radis_utils.config import load_profile


def fake(chrf, rp, replies=None):
    out = {"translation": {"en-sy": {"chrf": chrf, "bleu": chrf}}, "rp": rp, "general": {"a": rp}}
    return {**out, "replies": replies} if replies is not None else out


def test_run_values_compute_every_claim_on_one_run():
    run = {"backbone": (60.0, None), "vanilla": (100.0, 40.0), "radis": (95.0, 90.0), "seqkd": (62.0, 95.0),
           "sdft": (55.0, 80.0)}
    v = claims.run_values(run)
    assert v["vanilla_gain"] == 40.0 and v["sdft_gain"] == -5.0 and v["vanilla_rp"] == 40.0
    assert v["radis_gain_ratio"] == pytest.approx(35 / 40) and v["seqkd_vs_radis_gain"] == pytest.approx(2 / 35)
    assert v["seqkd_minus_radis_rp"] == 5.0 and v["radis_minus_sdft_rp"] == 10.0
    # balance = the weaker of (gain / vanilla's gain, RP / 100): RaDis 0.875, Seq-KD 0.05, SDFT -0.125
    assert v["balance_margin"] == pytest.approx(0.875 - 0.05)
    flat = claims.run_values({"backbone": (60.0, None), "vanilla": (60.0, None), "radis": (61.0, None)})
    assert "radis_gain_ratio" not in flat and "radis_rp" not in flat and "balance_margin" not in flat


def test_the_papers_own_tables_meet_its_claims_where_they_are_complete():
    llama = claims.paper_values(claims.paper.LLAMA2, "en-xx")
    assert llama["vanilla_rp"] == 18.22 and llama["radis_gain_ratio"] > 0.95
    assert llama["balance_margin"] > 0 and llama["seqkd_vs_radis_gain"] < 0.4
    mistral = claims.paper_values(claims.paper.MISTRAL, "en-xx")
    assert mistral["sdft_gain"] < 0  # table 1: SDFT below the backbone with Mistral, en→X
    text = claims.paper_text(claims.METHOD_CLAIMS[2])
    assert text == "table 3: 92.5 / 91.5 (LLaMA-2 / Mistral; RP %)"


def record(worlds):
    """A calibration record: per world ``(backbone chrF, {method: [(chrF, RP) per seed]})``."""
    return {"profile": "ci", "worlds": [
        {"world_seed": i, "backbone": {"chrf": base},
         "methods": {m: [{"seed": k, "chrf": c, "rp": r} for k, (c, r) in enumerate(runs)] for m, runs in ms.items()},
         "fig4": {"radis_positive": ["21/21", "20/21"], "seqkd_negative": ["3/21", "5/21"]}}
        for i, (base, ms) in enumerate(worlds)]}


def world(seqkd_chrf, radis_rp=(70, 72)):
    return (60.0, {"vanilla": [(97, 45), (96, 47)], "radis": [(96, radis_rp[0]), (97, radis_rp[1])],
                   "seqkd": [(seqkd_chrf, 80), (seqkd_chrf + 1, 82)], "sdft": [(75, 78), (76, 79)]})


def test_organism_rows_grade_over_worlds_each_the_mean_of_its_seeds():
    rec = record([world(92), world(91), world(93)])
    rec["worlds"][1]["built"] = {"cpu": "another CPU"}
    intervals = claims.organism_intervals(rec)
    seqkd = intervals["seqkd_vs_radis_gain"]
    assert seqkd.n == 3 and seqkd.unit == "worlds" and "2 machines" in seqkd.method and seqkd.lo > 0.8
    assert verdicts.grade(seqkd, "<=", 0.4) == verdicts.NOT_REPRODUCED
    # RaDis keeps less than Seq-KD and SDFT in every run: balance and RP order are rows of their own
    assert verdicts.grade(intervals["radis_minus_sdft_rp"], ">", 0) == verdicts.NOT_REPRODUCED
    assert intervals["fig4_radis_LESS features"].mean == pytest.approx(41 / 42)
    # seeds of one world are not independent: two seeds far apart in every world, world means equal,
    # give an interval of zero width over worlds (over runs it would be wide)
    split = claims.organism_intervals(record([world(92, (60, 80))] * 3))["radis_rp"]
    assert split.mean == split.lo == split.hi == 70


def test_a_world_mean_that_misses_reads_not_reproduced_and_one_that_straddles_inconclusive():
    misses = claims.organism_intervals(record([world(92, (60, 62)), world(92, (61, 63)), world(92, (59, 61))]))
    margin = misses["balance_margin"]  # RaDis RP ~0.6 < Seq-KD's ~0.8 balance in every world
    assert margin.hi < 0 and verdicts.grade(margin, ">", 0) == verdicts.NOT_REPRODUCED
    rows = claims.row(claims.METHOD_CLAIMS[[c.key for c in claims.METHOD_CLAIMS].index("balance_margin")],
                      "fig. 1", margin)
    assert rows["verdict"] == verdicts.NOT_REPRODUCED and rows["n to decide"] == ""
    straddles = claims.organism_intervals(record([world(92, (60, 62)), world(92, (99, 99)), world(92, (70, 72))]))
    row = claims.row(claims.METHOD_CLAIMS[[c.key for c in claims.METHOD_CLAIMS].index("balance_margin")],
                     "fig. 1", straddles["balance_margin"])
    assert row["verdict"] == verdicts.INCONCLUSIVE and row["n to decide"].endswith(" worlds")


def test_chapter_09_at_ci_reads_the_committed_record():
    """From calibration/ci.json: Seq-KD's gain is 0.78-0.90 x RaDis's in every world (the paper
    claims <= 0.4), so the row is *not reproduced*; every interval is over the record's worlds."""
    cfg = load_profile("ci")
    rec = calibration.current_record(cfg)
    assert rec is not None
    rows = {r["claim"]: r for r in claims.method_rows(cfg)}
    assert rows["Seq-KD gains little translation"]["verdict"] == verdicts.NOT_REPRODUCED
    assert all(r["verdict"] in verdicts.VERDICTS for r in rows.values())
    assert all(f"over {len(rec['worlds'])} worlds" in r["interval"] for r in rows.values())


def test_build_rows_use_the_seeds_and_say_not_run_without_results(tmp_path):
    cfg = load_profile("ci", runtime__runs_dir=str(tmp_path))
    assert calibration.current_record(cfg) is None  # another runs folder: the record does not describe it
    assert {r["verdict"] for r in claims.method_rows(cfg)} == {verdicts.NOT_RUN}
    folder = tmp_path / "ci" / "results"
    folder.mkdir(parents=True)

    def write(path, result):
        path.write_text(json.dumps({"profile": "ci", "config_hash": models.config_hash(cfg), "method": "m", **result}))

    write(evaluate.results_path(cfg, evaluate.BACKBONE), fake(60, 100))
    for seed, shift in zip(cfg.train.seeds, (0, 1)):
        for method, (chrf, rp) in {"vanilla": (100, 40), "radis": (95, 90), "seqkd": (61, 70), "sdft": (99, 45)}.items():
            write(evaluate.results_path(cfg, method, seed), fake(chrf + shift, rp + shift))
        write(evaluate.results_path(cfg, "radis", seed, "src-organism-x"), fake(90, 85 + 0.5 * shift))
    ev, why, points = claims.evidence(cfg, None)
    assert points == {}  # two seeds: intervals, not bare values
    assert ev["vanilla_rp"].n == 2 and "training seeds" in ev["vanilla_rp"].method
    rows = {r["claim"]: r for r in claims.method_rows(cfg)}
    assert rows["Vanilla-FT loses general ability"]["verdict"] == verdicts.INCONCLUSIVE  # 40, 41: straddles 40
    assert rows["Vanilla-FT improves translation"]["verdict"] == verdicts.REPRODUCED
    ablation = claims.ablation_row(cfg)
    assert ablation["verdict"] == verdicts.REPRODUCED  # self minus other: 5.0 and 5.5 over the two seeds
    assert ablation["ours: mean [95 % interval]"].startswith("+5.2 [") and ablation["n to decide"] == ""
    assert {r["verdict"] for r in claims.gradient_rows(cfg)} == {verdicts.NOT_RUN}
    assert {r["verdict"] for r in claims.observation_rows(cfg)} == {verdicts.NOT_RUN}


def test_one_seed_gets_a_paired_bootstrap_for_translation_and_no_rp_verdict():
    refs = {"en-de": ["the cat sat on the mat", "a dog ran", "it rains today", "we eat bread"] * 3}
    good = {"en-de": ["the cat sat on the mat", "a dog ran", "it rains today", "we eat bread"] * 3}
    half = {"en-de": ["the cat sat on a rug", "a dog ran", "rain today", "they eat bread"] * 3}
    bad = {"en-de": ["no"] * 12}
    backbone = fake(0, 100, bad)
    methods = {"vanilla": [fake(0, None, good)], "radis": [fake(0, None, good)], "seqkd": [fake(0, None, half)]}
    got = claims.bootstrap_translation(backbone, methods, refs, "first_line", resamples=200)
    assert got["radis_gain_ratio"].lo == got["radis_gain_ratio"].hi == 1.0  # same replies on every resample
    assert got["vanilla_gain"].lo > 0 and "paired bootstrap over 12 test items" in got["vanilla_gain"].method
    assert 0 < got["seqkd_vs_radis_gain"].mean < 1
    few = {"en-de": refs["en-de"][:4]}
    assert claims.bootstrap_translation(backbone, methods, few, "first_line") == {}  # 4 sentences: no interval
    shown = claims.row(claims.METHOD_CLAIMS[0], "p", None, "one seed and 4 test sentences", point=2.5)
    assert shown["verdict"] == verdicts.INCONCLUSIVE and shown["ours: mean [95 % interval]"] == "+2.50 chrF (no interval)"
    row = claims.row(claims.METHOD_CLAIMS[2], "p", None, "one seed and no item-level interval for RP: run more seeds",
                     point=80.0)
    assert row["verdict"] == verdicts.INCONCLUSIVE
    assert claims.row(claims.METHOD_CLAIMS[2], "p", None, "undefined here")["verdict"] == verdicts.NOT_RUN


def test_fig4_is_graded_for_both_measurements_on_the_mean_over_seeds(tmp_path, monkeypatch):
    def entry(pos, neg, total=10):
        mean = [0.1] * pos + [-0.1] * neg + [0.0] * (total - pos - neg)
        point = {"units": list(range(total)), "mean": mean}
        return {"mid": {"results": {p: {"keep_identical": {"module": point}} for p in ("less", "sgd")}}}

    results = [{"seed": s, "methods": {"radis": entry(p, 10 - p), "seqkd": entry(10 - n, n)}}
               for s, (p, n) in enumerate([(9, 8), (7, 9)])]
    cfg = load_profile("ci", runtime__runs_dir=str(tmp_path))
    monkeypatch.setattr(claims, "load_gradient_results", lambda c: results)
    rows = claims.gradient_rows(cfg)
    assert [r["claim"].split("(")[-1] for r in rows] == ["LESS features)"] * 2 + ["raw gradients)"] * 2
    radis = rows[0]
    assert radis["ours: mean [95 % interval]"].startswith("80% [0%, 100%]")  # mean of 90 and 70 %, cut to a share
    assert radis["verdict"] == verdicts.INCONCLUSIVE and "2 training seeds" in radis["interval"]
    assert rows[0]["paper"] == "fig. 4: positive in 25 of 32 layers (78%)"
    assert gradients.THRESHOLD == 0.7


def test_observation_rows_read_chapter_02s_file(tmp_path):
    cfg = load_profile("ci", runtime__runs_dir=str(tmp_path))
    replies = ([{"direction": "en-sy", "rationale": "gloss", "categories": ["gloss", "fact"]}] * 30
               + [{"direction": "en-sy", "rationale": "x", "categories": ["safety"]}] * 10
               + [{"direction": "en-sy", "rationale": "", "categories": []}] * 10)
    records = [{**r, "rationale": r["rationale"]} for r in replies]
    observation.write_results(cfg, records)
    share, diverse = claims.observation_rows(cfg)
    assert share["verdict"] == verdicts.REPRODUCED and share["ours: mean [95 % interval]"].startswith("80%")
    assert "Clopper-Pearson" in share["interval"]
    assert "bootstrap over 40 rationales" in diverse["interval"]
    # 3 of table 4's categories (Word/phrase translation, Factual supplement, Helpful&Safety) < 4
    assert diverse["ours: mean [95 % interval]"].startswith("3.0 [") and diverse["verdict"] == verdicts.NOT_REPRODUCED


def test_every_claim_is_a_row_and_none_is_partly():
    cfg = load_profile("ci")
    rows = claims.claims(cfg)
    names = [r["claim"] for r in rows]
    for needed in ("RaDis gives the best balance of translation and general ability",
                   "RP order: Seq-KD keeps more than RaDis", "RP order: RaDis keeps more than SDFT",
                   "SDFT translates below the backbone (Mistral, en→X)", "Vanilla-FT improves translation",
                   "Chat LLMs follow most translations with a rationale",
                   "LLaMA-3-70B's rationales beat LLaMA-2's except on safety",
                   "RaDis is competitive with prior LLM-based MT models"):
        assert needed in names
    assert len(names) == len(set(names))
    assert {r["verdict"] for r in rows} <= set(verdicts.VERDICTS)
    assert [r["verdict"] for r in rows if "LLaMA-3-70B" in r["claim"]] == [verdicts.NOT_CHECKED]
    assert len(claims.threshold_rows()) == len(rows) - len(claims.NOT_CHECKED)
