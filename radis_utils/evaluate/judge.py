"""One client for the LLM judge of MT-Bench and AlpacaEval: an OpenAI-compatible endpoint.

The endpoint comes from the environment: ``RADIS_JUDGE_BASE_URL`` (e.g.
``https://api.openai.com/v1`` or a local server's ``http://127.0.0.1:8000/v1``),
``RADIS_JUDGE_MODEL`` (the judge's model name there) and, if it needs one,
``RADIS_JUDGE_API_KEY``. Requests are ``POST <base>/chat/completions`` through ``httpx``, which
follows redirects but drops the key when one leads to another origin; a transient failure (a
refused or broken connection, a timeout, HTTP 429 or 5xx) is retried with exponential back-off
by ``tenacity``. Not the ``openai`` client, because FastChat pins openai<1 and alpaca_eval
openai>=1, and the project's environment must hold neither. An endpoint that still gives no
usable answer is ``JudgeUnavailable``; the benchmarks turn it into a skip.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

ENV_BASE_URL, ENV_MODEL, ENV_API_KEY = "RADIS_JUDGE_BASE_URL", "RADIS_JUDGE_MODEL", "RADIS_JUDGE_API_KEY"
#: Optional: how many tries a request gets, and the first back-off between them (seconds).
ENV_ATTEMPTS, ENV_BACKOFF = "RADIS_JUDGE_ATTEMPTS", "RADIS_JUDGE_BACKOFF_S"
#: The one line a benchmark prints when no judge is configured.
NO_JUDGE = (f"no LLM judge configured: set {ENV_BASE_URL} (an OpenAI-compatible endpoint, e.g. "
            f"https://api.openai.com/v1) and {ENV_MODEL} (e.g. gpt-4), plus {ENV_API_KEY} if it needs a key")


class JudgeUnavailable(RuntimeError):
    """The judge endpoint could not be reached or gave no usable reply (the message says which)."""


@dataclass(frozen=True)
class Judge:
    """An OpenAI-compatible chat endpoint and the judge model to ask there."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 120.0  # per read; connecting gets at most 10 s
    attempts: int = 4  # the first try and three retries of a transient failure
    backoff_s: float = 2.0  # waits of 2, 4, 8 s between them (at most 30 s)

    def describe(self) -> str:
        """``model @ base_url`` (the key is never shown)."""
        return f"{self.model} @ {self.base_url}"


def judge_from_env(env: Mapping[str, str] | None = None) -> Judge | None:
    """The judge the environment configures, or ``None`` when base URL or model is unset."""
    env = os.environ if env is None else env
    base, model = env.get(ENV_BASE_URL, "").strip(), env.get(ENV_MODEL, "").strip()
    if not base or not model:
        return None
    tries = {}
    for name, key, kind in ((ENV_ATTEMPTS, "attempts", int), (ENV_BACKOFF, "backoff_s", float)):
        if env.get(name, "").strip():
            try:
                tries[key] = kind(env[name])
            except ValueError:
                raise ValueError(f"{name}={env[name]!r}: expected a number") from None
    return Judge(base.rstrip("/"), model, env.get(ENV_API_KEY, "").strip() or None, **tries)


def completions_url(base_url: str) -> str:
    """``<base>/chat/completions``, adding ``/v1`` when the base URL has no version segment."""
    base = base_url.rstrip("/")
    return f"{base}/chat/completions" if re.search(r"/v\d+$", base) else f"{base}/v1/chat/completions"


#: Statuses worth another try: rate limited, or the server failed for now.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class _Transient(Exception):
    """A reply with a status in ``RETRY_STATUSES`` (retried; reported if it persists)."""

    def __init__(self, response: Any) -> None:
        super().__init__(response.status_code)
        self.response = response


def _post(judge: Judge, url: str, body: dict[str, Any]) -> Any:
    """The endpoint's final ``httpx.Response`` after redirects and retries of transient failures."""
    import httpx
    import tenacity

    headers = {"Authorization": f"Bearer {judge.api_key}"} if judge.api_key else {}
    timeout = httpx.Timeout(judge.timeout_s, connect=min(10.0, judge.timeout_s))
    with httpx.Client(timeout=timeout, follow_redirects=True, trust_env=False) as client:
        for attempt in tenacity.Retrying(
                stop=tenacity.stop_after_attempt(max(1, judge.attempts)),
                wait=tenacity.wait_exponential(multiplier=judge.backoff_s, max=30),
                retry=tenacity.retry_if_exception_type((httpx.TransportError, _Transient)), reraise=True):
            with attempt:
                response = client.post(url, json=body, headers=headers)
                if response.status_code in RETRY_STATUSES:
                    raise _Transient(response)
    return response


def chat(judge: Judge, messages: Sequence[Mapping[str, str]], max_tokens: int = 1024,
         temperature: float = 0.0) -> str:
    """The judge's reply to ``messages`` (greedy by default); ``JudgeUnavailable`` on any failure."""
    import httpx

    url = completions_url(judge.base_url)
    body = {"model": judge.model, "messages": list(messages), "max_tokens": max_tokens, "temperature": temperature}
    tries = f"after {judge.attempts} tries" if judge.attempts > 1 else "in one try"
    try:
        response = _post(judge, url, body)
    except _Transient as err:
        response = err.response
        raise JudgeUnavailable(f"judge {judge.describe()}: HTTP {response.status_code} from {url} {tries} "
                               f"({response.text[:200]})") from None
    except httpx.HTTPError as err:  # refused, timed out, a broken status line or a body cut short
        raise JudgeUnavailable(f"judge {judge.describe()}: no usable answer from {url} {tries} "
                               f"({type(err).__name__}: {err})") from None
    if response.status_code != 200:
        raise JudgeUnavailable(f"judge {judge.describe()}: HTTP {response.status_code} from {response.url} "
                               f"({response.text[:200]})")
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise JudgeUnavailable(f"judge {judge.describe()}: {url} did not answer like an "
                               f"OpenAI chat completion: {response.text[:200]}") from None
    return content if isinstance(content, str) else ""


def probe(judge: Judge) -> str | None:
    """``None`` when the judge answers a one-token request, else the reason it does not."""
    try:
        chat(judge, [{"role": "user", "content": "Reply with OK."}], max_tokens=1)
    except JudgeUnavailable as err:
        return str(err)
    return None


def parse_rating(text: str) -> float | None:
    """An MT-Bench 'single' judgment's rating as FastChat's ``llm_judge`` reads it: the *first*
    ``[[N]]``, else the first ``[N]``, whatever its value; ``None`` where FastChat records -1
    (and its ``show_result`` leaves the turn out)."""
    found = re.search(r"\[\[(\d+\.?\d*)\]\]", text) or re.search(r"\[(\d+\.?\d*)\]", text)
    return float(found.group(1)) if found else None


def parse_pair_verdict(text: str) -> str | None:
    """A pairwise judgment as FastChat's ``llm_judge`` reads it: ``"A"`` if ``[[A]]`` is anywhere
    in it, else ``"B"`` for ``[[B]]``, else ``"C"`` (tie) for ``[[C]]``; ``None`` (FastChat's
    "error") otherwise."""
    return next((x for x in "ABC" if f"[[{x}]]" in text), None)


def system_and_user(system: str, user: str) -> list[dict[str, Any]]:
    """A judge request: an optional system message, then the user message."""
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
