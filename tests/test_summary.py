"""Results at a glance: results files read back into the paper's table shapes (verdicts: test_claims)."""

from __future__ import annotations

from radis_utils import claims, evaluate, summary


def fake(chrf, rp):
    return {"translation": {"en-sy": {"chrf": chrf, "bleu": chrf}}, "rp": rp, "general": {"a": rp}}


def test_gradient_sign_table_counts_each_sign_per_seed_and_measurement():
    def entry(pos, neg, total=10):
        mean = [0.1] * pos + [-0.1] * neg + [0.0] * (total - pos - neg)
        return {"mid": {"results": {"less": {"keep_identical": {"module": {"units": list(range(total)), "mean": mean}}}}}}

    def grad(pos_radis, neg_seqkd, seed=0):
        return {"seed": seed, "methods": {"radis": entry(pos_radis, 10 - pos_radis),
                                          "seqkd": entry(10 - neg_seqkd, neg_seqkd)}}

    table = summary.gradient_sign_table([grad(9, 8), grad(6, 5, seed=1)])
    assert [(r["seed"], r["method"]) for r in table] == [(0, "radis"), (0, "seqkd"), (1, "radis"), (1, "seqkd")]
    assert table[0]["positive (LESS)"] == "9/10" and table[0]["negative (LESS)"] == "1/10"
    assert table[3]["negative (LESS)"] == "5/10" and table[3]["positive (LESS)"] == "5/10"
    assert table[0]["positive (raw SGD)"] == "-"  # that measurement is not in these results


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


def test_an_undefined_rp_is_left_out_of_the_checks_and_the_claims():
    backbone = real({"en-de": 40, "de-en": 50}, 100.0, gsm8k=0.0)
    none = lambda c: real({"en-de": c, "de-en": c}, None, gsm8k=0.0)
    methods = {"vanilla": [none(60)], "radis": [none(55)], "seqkd": [none(45)], "sdft": [none(50)]}
    checks = evaluate.acceptance(backbone, methods)
    assert not any("RP" in name for name in checks) and "vanilla chrF ≤ 95" in checks
    run = {"backbone": (45.0, None), **{m: (evaluate.headline(rs[0]), None) for m, rs in methods.items()}}
    assert "radis_rp" not in claims.run_values(run)  # so its row has no value: "not run", with the reason
    flat = {m: [real({"en-de": 40, "de-en": 50}, 90.0, gsm8k=1.0)] for m in methods}  # nobody gained
    assert "RaDis gain ≥ 0.85 × vanilla gain" not in evaluate.acceptance(backbone, flat)
