"""Chat replies for the benchmarks, and the resumable progress file that long jobs keep."""

from __future__ import annotations

import json

import pytest

from radis_utils.engines import generate
from radis_utils.evaluate import answering as a
from tests.benchmark_helpers import tiny_chat  # noqa: F401  (fixture)


def test_resumable_resumes_after_a_stop(tmp_path):
    path = tmp_path / "p.json"
    items = {str(i): i for i in range(5)}
    calls = []

    def square(chunk):
        calls.append(list(chunk))
        if 3 in chunk and len(calls) < 3:
            raise KeyboardInterrupt  # a stop in the middle of the job
        return [x * x for x in chunk]

    with pytest.raises(KeyboardInterrupt):
        a.resumable(path, items, square, chunk=2, settings={"k": 1})
    kept = json.loads(path.read_text())
    assert kept == {"settings": {"k": 1}, "results": {"0": 0, "1": 1}}  # the first chunk, whole
    assert a.resumable(path, items, square, chunk=2, settings={"k": 1}) == {str(i): i * i for i in range(5)}
    assert calls[-2:] == [[2, 3], [4]]  # only what was missing was computed again
    assert not list(tmp_path.glob("*.tmp"))


def test_progress_under_other_settings_or_damaged_is_refused(tmp_path):
    path = tmp_path / "p.json"
    a.resumable(path, {"x": 1}, lambda c: c, chunk=1, settings={"max_new_tokens": 8})
    with pytest.raises(ValueError, match=r"p.json: progress kept under settings \{'max_new_tokens': 8\}.*delete"):
        a.resumable(path, {"x": 1}, lambda c: c, chunk=1, settings={"max_new_tokens": 16})
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"p.json:1:2: not valid JSON"):
        a.load_progress(path, {})


def test_multi_turn_chat_text_and_replies(tiny_chat):
    model, tok = tiny_chat
    conv = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"},
            {"role": "user", "content": "again"}]
    text = a.chat_text(tok, conv)
    assert text.endswith("<|im_start|>assistant\n") and text.index("hello") < text.index("hi") < text.index("again")
    replies = a.chat_replies(model, tok, [conv, conv[:1]], max_new_tokens=5, batch_size=2)
    assert replies == generate(model, tok, [text, a.chat_text(tok, conv[:1])], max_new_tokens=5, batch_size=2)


def test_replies_of_another_model_are_not_reused(tiny_chat, tmp_path):
    model, tok = tiny_chat
    convs = {"0": [{"role": "user", "content": "hello"}]}
    path = tmp_path / "replies.progress.json"
    first = a.resumable_replies(model, tok, convs, path, 4, 1, model_id="backbone")
    assert a.resumable_replies(model, tok, convs, path, 4, 1, model_id="backbone") == first
    with pytest.raises(ValueError, match="'model_id': 'backbone'.*delete the file or use another out_dir"):
        a.resumable_replies(model, tok, convs, path, 4, 1, model_id="radis-seed0")
