"""The judge client against a real OpenAI-compatible server on 127.0.0.1 serving the tiny model."""

from __future__ import annotations

import pytest

from radis_utils.evaluate import judge as j
from tests.benchmark_helpers import (  # noqa: F401  (tiny_chat: a fixture)
    LoopbackJudge, ScriptedServer, completion, free_port_url, tiny_chat,
)

HI = [{"role": "user", "content": "hi"}]


def test_settings_come_from_the_environment():
    assert j.judge_from_env({}) is None
    assert j.judge_from_env({j.ENV_BASE_URL: "http://h/v1"}) is None  # a model is needed too
    judge = j.judge_from_env({j.ENV_BASE_URL: "http://h/v1/", j.ENV_MODEL: "gpt-4", j.ENV_API_KEY: "sk-x"})
    assert judge == j.Judge("http://h/v1", "gpt-4", "sk-x") and "sk-x" not in judge.describe()
    tuned = j.judge_from_env({j.ENV_BASE_URL: "http://h/v1", j.ENV_MODEL: "m", j.ENV_ATTEMPTS: "2", j.ENV_BACKOFF: "0.5"})
    assert (tuned.attempts, tuned.backoff_s) == (2, 0.5)
    with pytest.raises(ValueError, match="RADIS_JUDGE_ATTEMPTS='many': expected a number"):
        j.judge_from_env({j.ENV_BASE_URL: "http://h/v1", j.ENV_MODEL: "m", j.ENV_ATTEMPTS: "many"})
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
    down = j.Judge(free_port_url(), "m", timeout_s=5, backoff_s=0.01)
    with pytest.raises(j.JudgeUnavailable, match="no usable answer from http://127.0.0.1"):
        j.chat(down, [{"role": "user", "content": "hi"}])
    assert "no usable answer" in j.probe(down)
    with LoopbackJudge(*tiny_chat, max_requests=0) as server:
        with pytest.raises(j.JudgeUnavailable, match="HTTP 503 .*request budget spent"):
            j.chat(j.Judge(server.base_url, "m", backoff_s=0.01), [{"role": "user", "content": "hi"}])
        wrong_path = j.Judge(server.base_url.removesuffix("/v1") + "/other/v1", "m", backoff_s=0.01)
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


def test_a_transient_failure_is_retried_and_a_lasting_one_reported():
    with ScriptedServer([(500, {}, {"error": "busy"}), (429, {}, {"error": "slow down"}), completion("[[7]]")]) as srv:
        assert j.chat(j.Judge(srv.origin + "/v1", "m", backoff_s=0.01), HI) == "[[7]]"
    assert len(srv.seen) == 3
    with ScriptedServer([(503, {}, {"error": "down"})]) as srv:
        with pytest.raises(j.JudgeUnavailable, match="HTTP 503 .* after 3 tries"):
            j.chat(j.Judge(srv.origin + "/v1", "m", attempts=3, backoff_s=0.01), HI)
    assert len(srv.seen) == 3
    with ScriptedServer([(400, {}, {"error": "bad request"})]) as srv:  # not transient: asked once
        with pytest.raises(j.JudgeUnavailable, match="HTTP 400"):
            j.chat(j.Judge(srv.origin + "/v1", "m", backoff_s=0.01), HI)
    assert len(srv.seen) == 1


def test_the_key_never_follows_a_redirect_to_another_origin():
    """Two loopback servers: the endpoint redirects to another origin, which must not see the key."""
    with ScriptedServer([completion("from the other origin")]) as other:
        for status in (307, 302, 303):
            target = other.origin + "/v1/chat/completions"
            with ScriptedServer([(status, {"Location": target}, {})]) as first:
                judge = j.Judge(first.origin + "/v1", "m", api_key="sk-secret", backoff_s=0.01)
                try:
                    j.chat(judge, HI)
                except j.JudgeUnavailable:
                    pass  # 302/303 turn the POST into a GET; what matters is who saw the key
            assert first.seen[0][2] == "Bearer sk-secret"
    assert len(other.seen) == 3 and all(auth is None for _, _, auth in other.seen), other.seen
    assert other.seen[0][0] == "POST"  # 307 keeps the request, and it was answered
    with ScriptedServer([(307, {"Location": "/v1/elsewhere"}, {}), completion("same origin")]) as same:
        assert j.chat(j.Judge(same.origin + "/v1", "m", api_key="sk-secret", backoff_s=0.01), HI) == "same origin"
    assert [auth for _, _, auth in same.seen] == ["Bearer sk-secret"] * 2


@pytest.mark.parametrize("step, why", [("garbage", "RemoteProtocolError"), ("short", "RemoteProtocolError")])
def test_a_broken_reply_is_judge_unavailable_not_a_raw_exception(step, why):
    with ScriptedServer([step]) as srv:
        with pytest.raises(j.JudgeUnavailable, match=f"no usable answer .* after 2 tries .*{why}"):
            j.chat(j.Judge(srv.origin + "/v1", "m", attempts=2, backoff_s=0.01), HI)
    with ScriptedServer([(200, {}, {"no": "choices"})]) as srv:
        with pytest.raises(j.JudgeUnavailable, match="did not answer like an OpenAI chat completion"):
            j.chat(j.Judge(srv.origin + "/v1", "m"), HI)
