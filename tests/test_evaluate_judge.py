"""The judge client against a real OpenAI-compatible server on 127.0.0.1 serving the tiny model."""

from __future__ import annotations

import pytest

from radis_utils.evaluate import judge as j
from tests.benchmark_helpers import LoopbackJudge, free_port_url, tiny_chat  # noqa: F401  (fixture)


def test_settings_come_from_the_environment():
    assert j.judge_from_env({}) is None
    assert j.judge_from_env({j.ENV_BASE_URL: "http://h/v1"}) is None  # a model is needed too
    judge = j.judge_from_env({j.ENV_BASE_URL: "http://h/v1/", j.ENV_MODEL: "gpt-4", j.ENV_API_KEY: "sk-x"})
    assert judge == j.Judge("http://h/v1", "gpt-4", "sk-x") and "sk-x" not in judge.describe()
    assert all(name in j.NO_JUDGE for name in (j.ENV_BASE_URL, j.ENV_MODEL, j.ENV_API_KEY))


def test_completions_url():
    assert j.completions_url("https://api.openai.com/v1") == "https://api.openai.com/v1/chat/completions"
    assert j.completions_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000/v1/chat/completions"


def test_client_gets_the_served_models_reply(tiny_chat):
    model, tok = tiny_chat
    messages = j.system_and_user("You are a judge.", "Rate this answer: Paris.")
    with LoopbackJudge(model, tok, max_requests=3) as server:
        judge = j.Judge(server.base_url, "tiny-judge", api_key="sk-test")
        text = j.chat(judge, messages, max_tokens=6)
        assert j.probe(judge) is None
        expected = server.reply(messages, 6)
    assert text == expected and text  # the model's own greedy reply, through HTTP
    assert server.requests[0]["messages"] == messages and server.requests[0]["model"] == "tiny-judge"
    assert server.requests[0]["temperature"] == 0.0 and server.auth[0] == "Bearer sk-test"
    assert server.requests[1]["max_tokens"] == 1  # the probe asks for one token


def test_unreachable_and_refusing_endpoints_are_judge_unavailable(tiny_chat):
    down = j.Judge(free_port_url(), "m", timeout_s=5)
    with pytest.raises(j.JudgeUnavailable, match="no usable answer from http://127.0.0.1"):
        j.chat(down, [{"role": "user", "content": "hi"}])
    assert "no usable answer" in j.probe(down)
    with LoopbackJudge(*tiny_chat, max_requests=0) as server:
        with pytest.raises(j.JudgeUnavailable, match="HTTP 503 .*request budget spent"):
            j.chat(j.Judge(server.base_url, "m"), [{"role": "user", "content": "hi"}])
        wrong_path = j.Judge(server.base_url.removesuffix("/v1") + "/other/v1", "m")
        with pytest.raises(j.JudgeUnavailable, match="HTTP 404"):
            j.chat(wrong_path, [{"role": "user", "content": "hi"}])


def test_parsers_on_known_judgments():
    assert j.parse_rating("Good answer. Rating: [[8]]") == 8.0
    assert j.parse_rating("Rating: [[6.5]]") == 6.5
    assert j.parse_rating("I would say [7] overall") == 7.0  # FastChat's fallback form
    assert j.parse_rating("no rating here") is None
    # FastChat's own reading (fastchat/llm_judge/common.py): the first [[N]], whatever its value
    assert j.parse_rating("Draft [[3]]; on reflection [[8]]") == 3.0 and j.parse_rating("[[11]]") == 11.0
    assert j.parse_rating("[[7]] and [9]") == 7.0 and j.parse_rating("[9] then [[7]]") == 7.0
    assert j.parse_pair_verdict("A is more helpful. [[A]]") == "A"
    assert j.parse_pair_verdict("Not [[A]]; final: [[B]]") == "A"  # FastChat checks [[A]] first, anywhere
    assert j.parse_pair_verdict("[[C]] or rather [[B]]") == "B"
    assert j.parse_pair_verdict("[[C]]") == "C" and j.parse_pair_verdict("[A]") is None
    assert j.system_and_user("", "x") == [{"role": "user", "content": "x"}]
