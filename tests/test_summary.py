"""Results at a glance: verdicts graded from results files by stated rules."""

from __future__ import annotations

import json

from radis_utils import evaluate, gradients, models, summary
from radis_utils.config import load_profile


def fake(chrf, rp):
    return {"translation": {"en-sy": {"chrf": chrf, "bleu": chrf}}, "rp": rp, "general": {"a": rp}}


def test_method_claims_grade_on_the_acceptance_thresholds():
    backbone = fake(60, 100)
    good = {"vanilla": [fake(100, 40)] * 2, "radis": [fake(95, 90)] * 2, "seqkd": [fake(61, 90)] * 2,
            "sdft": [fake(70, 88)] * 2}
    rows = summary.method_claims(backbone, good)
    assert [r["verdict"] for r in rows] == ["reproduced"] * 7
    assert [r["calibrated"] == summary.CALIBRATED for r in rows] == [True] * 4 + [False] * 3
    assert "18.22 / 9.19" in rows[0]["paper"] and "94.24 / 92.16" in rows[4]["paper"]
    weak = {**good, "radis": [fake(75, 70)] * 2}  # keeps more than vanilla, below 85; gain ratio 0.375
    verdicts = {r["claim"]: r["verdict"] for r in summary.method_claims(backbone, weak)}
    assert verdicts["RaDis keeps general ability"] == "partly"
    assert verdicts["RaDis translates almost as well as Vanilla-FT"] == "not reproduced"
    assert all(r["verdict"] == "not run" for r in summary.method_claims(None, good))


def test_seqkd_and_sdft_claims_can_fail():
    backbone = fake(60, 100)
    good = {"vanilla": [fake(100, 40)] * 2, "radis": [fake(95, 90)] * 2, "seqkd": [fake(61, 90)] * 2,
            "sdft": [fake(70, 88)] * 2}

    def verdicts(**changed):
        rows = summary.method_claims(backbone, {**good, **changed})
        return {r["claim"]: (r["verdict"], r["ours"]) for r in rows}

    assert verdicts(seqkd=[fake(61, 70)] * 2)["Seq-KD keeps general ability"] == ("partly", "RP 70.0 % (mean of 2 seeds)")
    assert verdicts(seqkd=[fake(61, 50), fake(61, 40)])["Seq-KD keeps general ability"][0] == "not reproduced"
    assert verdicts(sdft=[fake(70, 30)] * 2)["SDFT keeps general ability"][0] == "not reproduced"
    v = verdicts(sdft=[fake(99, 88)] * 2)["SDFT gains less translation than RaDis"]
    assert v == ("not reproduced", "gain ratio 1.11 (mean of 2 seeds)")  # the numbers come with the verdict
    without = {k: v for k, v in good.items() if k != "sdft"}
    rows = {r["claim"]: r["verdict"] for r in summary.method_claims(backbone, without)}
    assert rows["SDFT keeps general ability"] == rows["SDFT gains less translation than RaDis"] == "not run"
    assert rows["Seq-KD keeps general ability"] == "reproduced"


def test_gradient_and_ablation_claims():
    def grad(pos_radis, neg_seqkd, total=10, seed=0):
        def entry(pos, neg):
            mean = [0.1] * pos + [-0.1] * neg + [0.0] * (total - pos - neg)
            return {"mid": {"results": {"less": {"keep_identical": {"module": {"units": list(range(total)),
                                                                            "mean": mean}}}}}}
        return {"seed": seed, "methods": {"radis": entry(pos_radis, total - pos_radis),
                                          "seqkd": entry(total - neg_seqkd, neg_seqkd)}}

    rows = summary.gradient_claims([grad(9, 8), grad(6, 5, seed=1)])
    assert [r["verdict"] for r in rows] == ["reproduced", "partly"]  # RaDis mean 75 %, Seq-KD 65 % (80 % in seed 0)
    assert [r["verdict"] for r in summary.gradient_claims([grad(1, 0)])] == ["not reproduced"] * 2
    assert rows[0]["ours"].startswith("9/10, 6/10 units positive (2 seeds; mid, less, mean cosine, keep_identical)")
    assert summary.gradient_claims([])[0]["verdict"] == "not run"
    table = summary.gradient_sign_table([grad(9, 8), grad(6, 5, seed=1)])
    assert [(r["seed"], r["method"]) for r in table] == [(0, "radis"), (0, "seqkd"), (1, "radis"), (1, "seqkd")]
    assert table[0]["positive (LESS)"] == "9/10" and table[0]["negative (LESS)"] == "1/10"
    assert table[3]["negative (LESS)"] == "5/10" and table[3]["positive (LESS)"] == "5/10"
    assert table[0]["positive (raw SGD)"] == "-"  # that measurement is not in these results
    own = [fake(95, 90)] * 2
    # table 5 as the paper states it: general ability decides, translation does not
    assert summary.ablation_claim(own, {"other": [fake(99, 80)] * 2})["verdict"] == "reproduced"
    assert summary.ablation_claim(own, {"a": [fake(90, 80)] * 2, "b": [fake(90, 95)] * 2})["verdict"] == "partly"
    row = summary.ablation_claim(own, {"other": [fake(90, 92)] * 2})
    assert row["verdict"] == "not reproduced" and "other: RP 92.0" in row["ours"]
    assert "lowest COMET" in row["paper"]
    assert summary.ablation_claim(own, {})["verdict"] == "not run"


def test_claims_read_the_results_folder(tmp_path):
    cfg = load_profile("ci", runtime__runs_dir=str(tmp_path))
    folder = tmp_path / "ci" / "results"
    folder.mkdir(parents=True)

    def write(path, result):
        path.write_text(json.dumps({"profile": "ci", "config_hash": models.config_hash(cfg), "method": "m", **result}))

    write(evaluate.results_path(cfg, evaluate.BACKBONE), fake(60, 100))
    for seed in cfg.train.seeds:
        for method, (chrf, rp) in {"vanilla": (100, 40), "radis": (95, 90), "seqkd": (61, 70), "sdft": (99, 45)}.items():
            write(evaluate.results_path(cfg, method, seed), fake(chrf, rp))
        write(evaluate.results_path(cfg, "radis", seed, "src-organism-x"), fake(90, 85))
    rows = {r["claim"]: r["verdict"] for r in summary.claims(cfg)}
    assert len(rows) == 10
    assert rows["Self-generated rationales keep the most general ability"] == "reproduced"
    assert rows["Seq-KD keeps general ability"] == "partly" and rows["SDFT keeps general ability"] == "not reproduced"
    assert rows["Vanilla-FT loses general ability"] == "reproduced"
    assert rows["RaDis's regulariser agrees with the MT gradient"] == "not run"
    assert gradients.results_path(cfg, 0).parent == folder


def test_paper_vs_ours_labels_both_metrics():
    backbone = fake(60, 100)
    rows = summary.paper_vs_ours(backbone, {"vanilla": [fake(100, 40), fake(98, 30)]}, ["en-sy"])
    assert [r["method"] for r in rows] == ["backbone", "vanilla", "seqkd", "sdft", "radis"]
    vanilla = rows[1]
    assert vanilla["paper: RP % on MT-Bench, AlpacaEval (2.0), AdvBench, GSM8K (LLaMA-2 / Mistral)"] == "18.22 / 9.19"
    assert vanilla["ours: chrF, mean of en-sy"] == 99.0 and vanilla["ours: RP % on a"] == 35.0
    assert rows[2]["ours: chrF, mean of en-sy"] == "not run"
    assert rows[3]["paper: COMET X→en avg (LLaMA-2 / Mistral)"] == "80.79 / unreadable"


def real(scores, rp, **general):
    """A results file of a real backbone: 2 directions per side, benchmarks with details."""
    translation = evaluate.per_direction_table({d: {"chrf": c, "bleu": c / 2} for d, c in scores.items()})
    return {"translation": translation, "rp": rp, "general": general,
            "general_details": {b: {"n": 8, "judge": "keyword"} for b in general}}


def test_translation_table_has_tables_1_2_shape():
    backbone = real({"en-de": 40, "en-cs": 30, "de-en": 50}, 100.0, gsm8k=10.0)
    methods = {"radis": [real({"en-de": 50, "en-cs": 40, "de-en": 60}, 90.0, gsm8k=9.0),
                         real({"en-de": 60, "en-cs": 50, "de-en": 70}, 80.0, gsm8k=8.0)]}
    rows = summary.translation_table(backbone, methods, "en-xx")
    assert [r["model"] for r in rows] == ["backbone", "radis"]
    assert rows[0] == {"model": "backbone", "seeds": "-", "en-de": 40, "en-cs": 30, "avg": 35.0}
    assert rows[1]["en-de"] == 55.0 and rows[1]["avg"] == 50.0 and rows[1]["seeds"] == 2
    assert [r["de-en"] for r in summary.translation_table(backbone, methods, "xx-en", "bleu")] == [25.0, 32.5]
    assert summary.translation_table(real({"en-de": 1}, 100.0), {}, "xx-en") == []


def test_general_table_has_table_3_shape_and_says_what_did_not_run():
    backbone = real({"en-de": 40}, 100.0, gsm8k=10.0, advbench=50.0)
    partial = real({"en-de": 40}, None, gsm8k=5.0)
    rows = summary.general_table(backbone, {"vanilla": [real({"en-de": 40}, 75.0, gsm8k=5.0, advbench=50.0)],
                                            "sdft": [partial]})
    assert list(rows[0]) == ["model", "gsm8k (n=8, keyword)", "advbench (n=8, keyword)", "RP %"]
    assert rows[1]["gsm8k (n=8, keyword)"] == 5.0 and rows[1]["RP %"] == 75.0
    assert rows[2]["advbench (n=8, keyword)"] == "not run" and rows[2]["RP %"] == "not run"
    organism = summary.general_table(fake(60, 100), {"radis": [fake(90, 80)]})
    assert organism == [{"model": "backbone", "a": 100, "RP %": 100}, {"model": "radis", "a": 80, "RP %": 80}]


def test_an_undefined_rp_is_left_out_of_the_checks_and_graded_not_run():
    backbone = real({"en-de": 40, "de-en": 50}, 100.0, gsm8k=0.0)
    none = lambda c: real({"en-de": c, "de-en": c}, None, gsm8k=0.0)
    methods = {"vanilla": [none(60)], "radis": [none(55)], "seqkd": [none(45)], "sdft": [none(50)]}
    checks = evaluate.acceptance(backbone, methods)
    assert not any("RP" in name for name in checks) and "vanilla chrF ≤ 95" in checks
    rows = {r["claim"]: r for r in summary.method_claims(backbone, methods)}
    assert rows["RaDis keeps general ability"]["verdict"] == "not run"
    assert rows["RaDis keeps general ability"]["ours"].startswith("undefined")
    flat = {m: [real({"en-de": 40, "de-en": 50}, 90.0, gsm8k=1.0)] for m in methods}  # nobody gained
    assert "RaDis gain ≥ 0.85 × vanilla gain" not in evaluate.acceptance(backbone, flat)
