"""The general suite end to end on the tiny model (limit 2): scores, n and judge per benchmark,
skips as one line each, RP over the benchmarks that ran, and an unreachable judge."""

from __future__ import annotations

import json

import pytest

from radis_utils.evaluate import benchmarks as b
from tests.benchmark_helpers import LoopbackJudge, benchmarks_dir, free_port_url, judge_env, tiny_chat  # noqa: F401

pytest.importorskip("lm_eval")


def suite(tiny_chat, benchmarks_dir, out, names=b.BENCHMARKS, model_id="tiny"):
    return b.run_general_suite(*tiny_chat, benchmarks_dir=benchmarks_dir, out_dir=out, limit=2, benchmarks=names,
                               guard_model=None, max_new_tokens=6, batch_size=2, model_id=model_id)


def test_whole_suite_without_a_judge(tiny_chat, benchmarks_dir, tmp_path, monkeypatch, capsys):
    judge_env(monkeypatch, "")
    result = suite(tiny_chat, benchmarks_dir, tmp_path)
    assert json.loads((tmp_path / "general.json").read_text()) == result
    assert result["benchmarks"] == list(b.BENCHMARKS) and set(result["scores"]) == set(b.BENCHMARKS)
    assert all(result["details"][n]["n"] == 2 and result["details"][n]["judge"] for n in b.BENCHMARKS)
    assert result["details"]["advbench"]["judge"] == "refusal-keywords"
    assert result["details"]["gsm8k"]["variant"] == "gsm8k_cot_zeroshot"
    assert isinstance(result["scores"]["gsm8k"], float) and isinstance(result["scores"]["advbench"], float)
    assert result["scores"]["mt_bench"] is None and result["scores"]["alpaca_eval"] is None
    printed = capsys.readouterr().out.splitlines()
    skips = [line for line in printed if "judge skipped" in line]
    assert len(skips) == 2 and all("RADIS_JUDGE_BASE_URL" in line for line in skips) and skips == result["notes"]
    assert "  echo | python -m fastchat.llm_judge.gen_judgment --bench-name mt_bench --mode single --judge-model " \
           "gpt-4 --model-list tiny --parallel 2 --first-n 2  # judge names: FastChat's own (gpt-4, ...)" in printed
    assert any(line.startswith("  alpaca_eval --model_outputs ") for line in printed)


def test_unreachable_judge_is_a_skip_line_and_nothing_half_written(tiny_chat, benchmarks_dir, tmp_path, monkeypatch,
                                                                   capsys):
    judge_env(monkeypatch, free_port_url())
    result = suite(tiny_chat, benchmarks_dir, tmp_path, ["mt_bench", "alpaca_eval"])
    assert result["scores"] == {"mt_bench": None, "alpaca_eval": None}
    lines = [line for line in capsys.readouterr().out.splitlines() if "skipped" in line]
    assert len(lines) == 2 and all("no usable answer from http://127.0.0.1" in line for line in lines)
    assert lines[0].startswith("MT-Bench judge skipped") and "(unreachable)" in result["details"]["mt_bench"]["judge"]
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("judgments*.json"))
    answers = tmp_path / "fastchat" / "data" / "mt_bench" / "model_answer" / "tiny.jsonl"
    assert len(answers.read_text().splitlines()) == 2


def test_judged_by_a_loopback_server(tiny_chat, benchmarks_dir, tmp_path, monkeypatch):
    with LoopbackJudge(*tiny_chat, max_requests=12) as server:
        judge_env(monkeypatch, server.base_url, key="sk-loop")
        result = suite(tiny_chat, benchmarks_dir, tmp_path, ["mt_bench", "alpaca_eval"])
    assert len(server.requests) == 1 + 4 + 4  # probe, 2 x 2 turns, 2 items x 2 baselines
    assert set(server.auth) == {"Bearer sk-loop"}
    assert "tiny-judge @ http://127.0.0.1" in result["details"]["mt_bench"]["judge"]
    assert "approximation" in result["details"]["alpaca_eval"]["judge"]


def test_unknown_benchmark_bad_limit_and_model_id_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"unknown \['mmlu'\]; choose from gsm8k, advbench, mt_bench, alpaca_eval"):
        b.check_benchmarks(["gsm8k", "mmlu"])
    args = dict(benchmarks_dir=tmp_path, out_dir=tmp_path, benchmarks=["advbench"], guard_model=None,
                max_new_tokens=4, batch_size=1)
    with pytest.raises(ValueError, match="limit must be None"):
        b.run_general_suite(None, None, limit=0, model_id="m", **args)
    with pytest.raises(ValueError, match="model_id 'a/b'"):
        b.run_general_suite(None, None, limit=1, model_id="a/b", **args)
    with pytest.raises(ValueError, match="harmful_behaviors.csv: file not found; expected a CSV file of 520 rows"):
        b.run_general_suite(None, None, limit=1, model_id="m", **args)


def test_rp_over_the_benchmarks_that_ran():
    base = {"gsm8k": 40.0, "advbench": 90.0, "mt_bench": None, "alpaca_eval": 0.0}
    model = {"gsm8k": 20.0, "advbench": 90.0, "mt_bench": 6.0, "alpaca_eval": 10.0}
    details = {n: {"n": 2, "judge": "j"} for n in base}
    summary = b.rp_summary({"scores": base, "details": details}, {"scores": model, "details": details})
    assert summary["rp"] == 75.0 and [r["name"] for r in summary["benchmarks"]] == ["gsm8k", "advbench"]
    assert summary["benchmarks"][0] == {"name": "gsm8k", "backbone": 40.0, "model": 20.0, "n": 2, "judge": "j",
                                        "scale": "exact match %"}
