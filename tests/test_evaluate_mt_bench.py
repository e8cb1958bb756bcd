"""MT-Bench: FastChat's answer file (two turns, the second asked after the model's own first),
FastChat's data layout, and judging with FastChat's prompts through a real loopback server."""

from __future__ import annotations

import json

import pytest

from radis_utils.evaluate import answering, mt_bench as mt
from radis_utils.evaluate.judge import Judge
from tests.benchmark_helpers import LoopbackJudge, benchmarks_dir, free_port_url, tiny_chat  # noqa: F401


def run(tiny_chat, benchmarks_dir, out, judge=None, limit=2):
    return mt.run_mt_bench(*tiny_chat, benchmarks_dir=benchmarks_dir, out_dir=out, limit=limit, judge=judge,
                           max_new_tokens=6, batch_size=2, model_id="tiny-radis")


def test_answer_file_is_fastchats_and_turn_two_sees_turn_one(tiny_chat, benchmarks_dir, tmp_path):
    score, details = run(tiny_chat, benchmarks_dir, tmp_path)
    assert score is None and "RADIS_JUDGE_BASE_URL" in details["skipped"] and details["n"] == 2
    path = tmp_path / "fastchat" / "data" / "mt_bench" / "model_answer" / "tiny-radis.jsonl"
    assert details["answers"] == str(path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["question_id"] for r in lines] == [81, 82]
    for r in lines:
        assert set(r) == {"question_id", "answer_id", "model_id", "choices", "tstamp"} and r["model_id"] == "tiny-radis"
        assert r["choices"][0]["index"] == 0 and len(r["choices"][0]["turns"]) == 2
    for rel in ("data/mt_bench/question.jsonl", "data/mt_bench/reference_answer/gpt-4.jsonl", "data/judge_prompts.jsonl"):
        assert (tmp_path / "fastchat" / rel).is_file()  # FastChat reads these relative to its cwd
    assert details["official_commands"][0] == f"cd {tmp_path / 'fastchat'}"
    assert "--model-list tiny-radis" in details["official_commands"][2] and "--first-n 2" in details["official_commands"][2]


def test_turn_two_is_asked_after_the_models_own_turn_one(tiny_chat, benchmarks_dir, tmp_path):
    from radis_utils import benchmark_files as bf

    model, tok = tiny_chat
    math = [q for q in bf.read_mtbench_questions(benchmarks_dir) if q["category"] == "math"][:2]  # greedy
    answers = mt.answer_questions(model, tok, math, tmp_path, max_new_tokens=6, batch_size=2, model_id="tiny")
    q = math[0]
    t1, t2 = answers[q["question_id"]]
    again = answering.chat_replies(model, tok, [[{"role": "user", "content": q["turns"][0]},
                                                 {"role": "assistant", "content": t1},
                                                 {"role": "user", "content": q["turns"][1]}]], 6, 1)
    assert t2 == again[0]
    assert answers == mt.answer_questions(model, tok, math, tmp_path, 6, 2, "tiny")  # resumed from progress


def test_sampled_categories_are_seeded(tiny_chat, benchmarks_dir, tmp_path):
    from radis_utils import benchmark_files as bf

    writing = [q for q in bf.read_mtbench_questions(benchmarks_dir) if q["category"] == "writing"][:2]
    assert mt.TEMPERATURES["writing"] == 0.7
    runs = [mt.answer_questions(*tiny_chat, writing, tmp_path / str(i), 6, 2, "tiny") for i in range(2)]
    assert runs[0] == runs[1] and (tmp_path / "0" / "turn1-t0.7.progress.json").is_file()


def test_model_id_must_name_a_file():
    with pytest.raises(ValueError, match="FastChat takes the model name from the answer file"):
        mt.check_model_id("org/model")
    with pytest.raises(ValueError, match="both turns"):
        mt.write_answers(__import__("pathlib").Path("/nonexistent/x.jsonl"), "m", {81: ["only one"]})


def test_judge_requests_use_fastchats_prompts(benchmarks_dir):
    from radis_utils import benchmark_files as bf

    questions = {q["question_id"]: q for q in bf.read_mtbench_questions(benchmarks_dir)}
    refs, prompts = bf.read_mtbench_references(benchmarks_dir), bf.read_judge_prompts(benchmarks_dir)
    name, messages = mt.judge_request(questions[81], 1, ["A1", "A2"], refs, prompts)  # writing
    assert name == "single-v1" and messages[0]["content"] == prompts["single-v1"]["system_prompt"]
    assert questions[81]["turns"][0] in messages[1]["content"] and "A1" in messages[1]["content"]
    name, messages = mt.judge_request(questions[111], 2, ["A1", "A2"], refs, prompts)  # math: with reference
    assert name == "single-math-v1-multi-turn" and refs[111][1] in messages[-1]["content"]
    assert messages[-1]["content"].index("A1") < messages[-1]["content"].index("A2")


def test_judged_through_a_loopback_server(tiny_chat, benchmarks_dir, tmp_path):
    with LoopbackJudge(*tiny_chat, max_requests=8) as server:
        score, details = run(tiny_chat, benchmarks_dir, tmp_path, Judge(server.base_url, "tiny-judge"))
    assert len(server.requests) == 4  # 2 questions x 2 turns
    judged = json.loads((tmp_path / "mt_bench" / "judgments.json").read_text())
    assert set(judged) == {"81:1", "81:2", "82:1", "82:2"} and judged["81:2"]["prompt"] == "single-v1-multi-turn"
    # a 32-wide random model writes no [[rating]]: reported as such, not as a number
    assert details["judged"] + details["unparsed"] == 4
    assert (score is None) == (details["judged"] == 0)


def test_unreachable_judge_skips_and_keeps_the_answers(tiny_chat, benchmarks_dir, tmp_path):
    score, details = run(tiny_chat, benchmarks_dir, tmp_path, Judge(free_port_url(), "m", timeout_s=5))
    assert score is None and details["skipped"].startswith("MT-Bench judge skipped: judge m @ http://127.0.0.1")
    assert (tmp_path / "fastchat" / "data" / "mt_bench" / "model_answer" / "tiny-radis.jsonl").is_file()
    assert not list(tmp_path.rglob("*.tmp"))
