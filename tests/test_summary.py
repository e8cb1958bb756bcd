"""Results at a glance: verdicts graded from results files by stated rules."""

from __future__ import annotations

import json

from radis_utils import evaluate, gradients, models, summary
from radis_utils.config import load_profile


def fake(chrf, rp):
    return {"translation": {"en-sy": {"chrf": chrf, "bleu": chrf}}, "rp": rp, "general": {"a": rp}}


def test_method_claims_grade_on_the_acceptance_thresholds():
    backbone = fake(60, 100)
    good = {"vanilla": [fake(100, 40)] * 2, "radis": [fake(95, 90)] * 2, "seqkd": [fake(61, 70)] * 2}
    assert [r["verdict"] for r in summary.method_claims(backbone, good)] == ["reproduced"] * 4
    weak = {**good, "radis": [fake(75, 70)] * 2}  # keeps more than vanilla, below 85; gain ratio 0.375
    verdicts = {r["claim"]: r["verdict"] for r in summary.method_claims(backbone, weak)}
    assert verdicts["RaDis keeps general ability"] == "partly"
    assert verdicts["RaDis translates almost as well as Vanilla-FT"] == "not"
    assert all(r["verdict"] == "not run" for r in summary.method_claims(None, good))


def test_gradient_and_ablation_claims():
    def grad(pos_radis, neg_seqkd, total=3):
        signs = lambda pos, neg: {"sgd": {"signs": {"positive": pos, "negative": neg, "total": total}}}
        return {"methods": {"radis": signs(pos_radis, total - pos_radis), "seqkd": signs(total - neg_seqkd, neg_seqkd)}}

    rows = summary.gradient_claims([grad(3, 2), grad(2, 1)])
    assert [r["verdict"] for r in rows] == ["reproduced", "partly"]
    assert rows[0]["ours"].startswith("3/3, 2/3 layers positive")
    assert summary.gradient_claims([])[0]["verdict"] == "not run"
    own = [fake(95, 90)] * 2
    assert summary.ablation_claim(own, {"other": [fake(90, 80)] * 2})["verdict"] == "reproduced"
    assert summary.ablation_claim(own, {"other": [fake(96, 80)] * 2})["verdict"] == "partly"
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
    assert rows["Self-generated rationales work best"] == "reproduced"
    assert rows["Vanilla-FT loses general ability"] == "reproduced"
    assert rows["RaDis's regulariser agrees with the MT gradient"] == "not run"
    assert gradients.results_path(cfg, 0).parent == folder
