"""AlpacaEval: alpaca_eval's outputs format, and the pairwise win rate through a loopback server."""

from __future__ import annotations

import json

import pytest

from radis_utils.evaluate import alpaca_eval as ae
from radis_utils.evaluate.judge import Judge
from tests.benchmark_helpers import LoopbackJudge, benchmarks_dir, free_port_url, tiny_chat  # noqa: F401


def run(tiny_chat, benchmarks_dir, out, judge=None):
    return ae.run_alpaca_eval(*tiny_chat, benchmarks_dir=benchmarks_dir, out_dir=out, limit=2, judge=judge,
                              max_new_tokens=6, batch_size=2, model_id="tiny-radis")


def test_outputs_file_is_alpaca_evals(tiny_chat, benchmarks_dir, tmp_path):
    score, details = run(tiny_chat, benchmarks_dir, tmp_path)
    assert score is None and "RADIS_JUDGE_MODEL" in details["skipped"]
    rows = json.loads((tmp_path / "alpaca_eval" / "tiny-radis" / "model_outputs.json").read_text())
    baseline = json.loads((benchmarks_dir / "alpaca_eval" / "gpt4_1106_preview_model_outputs.json").read_text())
    assert [set(r) for r in rows] == [{"instruction", "output", "generator", "dataset"}] * 2
    assert [(r["instruction"], r["dataset"]) for r in rows] == [(b["instruction"], b["dataset"]) for b in baseline[:2]]
    assert {r["generator"] for r in rows} == {"tiny-radis"} and details["n"] == 2
    assert any("weighted_alpaca_eval_gpt4_turbo" in c for c in details["official_commands"])


def test_write_outputs_checks_fields(tmp_path):
    with pytest.raises(ValueError, match="row 0: 'output' must be a string"):
        ae.write_outputs(tmp_path / "x.json", "g", [{"instruction": "i", "output": None, "dataset": "d"}])


def test_win_values_follow_the_position():
    assert ae.win_value("A", ours_first=True) == 1.0 and ae.win_value("A", ours_first=False) == 0.0
    assert ae.win_value("B", ours_first=False) == 1.0 and ae.win_value("C", True) == 0.5
    assert ae.win_value(None, True) is None
    assert ae.win_rate({"0": {"win": 1.0}, "1": {"win": 0.5}, "2": {"win": None}}) == (75.0, 2)


def test_judged_against_both_baselines_through_a_loopback_server(tiny_chat, benchmarks_dir, tmp_path):
    with LoopbackJudge(*tiny_chat, max_requests=8) as server:
        score, details = run(tiny_chat, benchmarks_dir, tmp_path, Judge(server.base_url, "tiny-judge"))
    assert len(server.requests) == 4  # 2 items x 2 baselines
    first = server.requests[0]["messages"][-1]["content"]
    ours = json.loads((tmp_path / "alpaca_eval" / "tiny-radis" / "model_outputs.json").read_text())[0]["output"]
    assert ours and first.index(ours) < first.index("[The Start of Assistant B's Answer]")  # item 0: ours is A
    assert "approximation of alpaca_eval's annotator" in details["judge"]
    for version in ("2.0", "1.0"):
        assert len(json.loads((tmp_path / "alpaca_eval" / f"judgments-{version}.json").read_text())) == 2
    assert (score is None) == (details["judged"]["2.0"] == 0)


def test_unreachable_judge_is_a_skip(tiny_chat, benchmarks_dir, tmp_path):
    score, details = run(tiny_chat, benchmarks_dir, tmp_path, Judge(free_port_url(), "m", timeout_s=5))
    assert score is None and details["skipped"].startswith("AlpacaEval judge skipped: judge m @")
    assert (tmp_path / "alpaca_eval" / "tiny-radis" / "model_outputs.json").is_file()
    assert not list(tmp_path.rglob("*.tmp"))
