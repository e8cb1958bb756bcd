"""Helpers for the benchmark tests: the shipped benchmark folder, the tiny chat model loaded,
and a real OpenAI-compatible judge server on the loopback interface.

``LoopbackJudge`` is an ``http.server`` on 127.0.0.1 answering ``POST /v1/chat/completions``
with the tiny model's greedy reply to the request's messages (its chat template, ``engines.generate``):
a real server and a real model, no mock. It serves at most ``max_requests`` requests and stops
when its ``with`` block ends.
"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

#: The shipped benchmark folder beside the checkout; ``RADIS_BENCHMARKS_DIR`` points elsewhere.
SHARED_BENCHMARKS = Path(os.environ.get("RADIS_BENCHMARKS_DIR") or ROOT.parent / "shared" / "data" / "benchmarks")


@pytest.fixture(scope="session")
def benchmarks_dir() -> Path:
    """``../shared/data/benchmarks`` (or ``$RADIS_BENCHMARKS_DIR``) when present; else the test skips."""
    if not SHARED_BENCHMARKS.is_dir():
        pytest.skip(f"{SHARED_BENCHMARKS} not present (the benchmark files are optional)")
    return SHARED_BENCHMARKS


@pytest.fixture(scope="session")
def tiny_chat(tiny_backbone) -> tuple[Any, Any]:
    """The ``tiny_backbone`` folder loaded as (model, tokenizer), the way a user's model loads."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    return AutoModelForCausalLM.from_pretrained(tiny_backbone).eval(), AutoTokenizer.from_pretrained(tiny_backbone)


class LoopbackServer:
    """An HTTP server on 127.0.0.1 (any free port) serving ``handler`` from a thread, for a ``with`` block."""

    def __init__(self, handler: type) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "LoopbackServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class LoopbackJudge(LoopbackServer):
    """An OpenAI-compatible chat-completions server for a local model, on 127.0.0.1 (any free port)."""

    def __init__(self, model: Any, tokenizer: Any, max_requests: int = 64, max_new_tokens: int = 8,
                 name: str = "tiny-judge") -> None:
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.max_requests, self.max_new_tokens = max_requests, max_new_tokens
        self.requests: list[dict[str, Any]] = []   # bodies received, in order
        self.auth: list[str | None] = []           # Authorization headers received
        self._lock = threading.Lock()
        super().__init__(self._handler())

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def reply(self, messages: list[dict[str, str]], max_tokens: int) -> str:
        """The model's greedy reply, as the server computes it."""
        from radis_utils.evaluate.answering import chat_replies

        return chat_replies(self.model, self.tokenizer, [messages], min(max_tokens, self.max_new_tokens), 1)[0]

    def _handler(self) -> type:
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                blob = json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                self.wfile.write(blob)

            def do_POST(self) -> None:
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with judge._lock:
                    if len(judge.requests) >= judge.max_requests:
                        return self._send(503, {"error": {"message": "request budget spent"}})
                    judge.requests.append(body)
                    judge.auth.append(self.headers.get("Authorization"))
                    text = judge.reply(body["messages"], int(body.get("max_tokens", 16)))
                used = {"prompt_tokens": 1, "completion_tokens": len(judge.tokenizer(text).input_ids)}
                self._send(200, {"id": f"cmpl-{len(judge.requests)}", "object": "chat.completion",
                                 "model": body["model"], "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                                 "usage": {**used, "total_tokens": sum(used.values())}})  # as alpaca_eval reads it

        return Handler


def judge_env(monkeypatch: pytest.MonkeyPatch, base_url: str, model: str = "tiny-judge", key: str | None = None) -> None:
    """Point ``RADIS_JUDGE_*`` at an endpoint for one test."""
    from radis_utils.evaluate import judge

    monkeypatch.setenv(judge.ENV_BASE_URL, base_url)
    monkeypatch.setenv(judge.ENV_MODEL, model)
    monkeypatch.setenv(judge.ENV_BACKOFF, "0.01")  # retries without the real back-off
    if key:
        monkeypatch.setenv(judge.ENV_API_KEY, key)
    else:
        monkeypatch.delenv(judge.ENV_API_KEY, raising=False)


def free_port_url() -> str:
    """A loopback URL on which nothing listens (a port bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


class ScriptedServer(LoopbackServer):
    """A loopback HTTP server that answers each POST with the next of ``script`` (status, headers,
    body), the last one repeating; it records every request's path and Authorization header.
    ``"garbage"`` sends a broken status line, ``"short"`` a body shorter than its Content-Length."""

    def __init__(self, script: list[Any]) -> None:
        self.script, self.seen = list(script), []
        super().__init__(self._handler())

    def _handler(self) -> type:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                server.seen.append((self.command, self.path, self.headers.get("Authorization")))
                step = server.script[min(len(server.seen), len(server.script)) - 1]
                if step == "garbage":
                    self.wfile.write(b"NOT-HTTP garbage\r\n\r\n")
                    return
                if step == "short":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"choi")
                    return
                status, headers, body = step
                blob = json.dumps(body).encode("utf-8")
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                self.wfile.write(blob)

            do_POST = do_GET = _answer

        return Handler


def completion(text: str) -> tuple[int, dict, dict]:
    """A scripted 200 chat completion answering ``text``."""
    return 200, {}, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                     "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
