"""One client for the LLM judge of MT-Bench and AlpacaEval: an OpenAI-compatible endpoint.

The endpoint comes from the environment: ``RADIS_JUDGE_BASE_URL`` (e.g.
``https://api.openai.com/v1`` or a local server's ``http://127.0.0.1:8000/v1``),
``RADIS_JUDGE_MODEL`` (the judge's model name there) and, if it needs one,
``RADIS_JUDGE_API_KEY``. Requests are plain ``POST <base>/chat/completions`` (``urllib``; no
``openai`` package, so neither FastChat's openai<1 nor alpaca_eval's openai>=1 is needed).
An endpoint that does not answer is ``JudgeUnavailable``; the benchmarks turn it into a skip.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

ENV_BASE_URL, ENV_MODEL, ENV_API_KEY = "RADIS_JUDGE_BASE_URL", "RADIS_JUDGE_MODEL", "RADIS_JUDGE_API_KEY"
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
    timeout_s: float = 120.0

    def describe(self) -> str:
        """``model @ base_url`` (the key is never shown)."""
        return f"{self.model} @ {self.base_url}"


def judge_from_env(env: Mapping[str, str] | None = None) -> Judge | None:
    """The judge the environment configures, or ``None`` when base URL or model is unset."""
    env = os.environ if env is None else env
    base, model = env.get(ENV_BASE_URL, "").strip(), env.get(ENV_MODEL, "").strip()
    if not base or not model:
        return None
    return Judge(base.rstrip("/"), model, env.get(ENV_API_KEY, "").strip() or None)


def completions_url(base_url: str) -> str:
    """``<base>/chat/completions``, adding ``/v1`` when the base URL has no version segment."""
    base = base_url.rstrip("/")
    return f"{base}/chat/completions" if re.search(r"/v\d+$", base) else f"{base}/v1/chat/completions"


def chat(judge: Judge, messages: Sequence[Mapping[str, str]], max_tokens: int = 1024,
         temperature: float = 0.0) -> str:
    """The judge's reply to ``messages`` (greedy by default); ``JudgeUnavailable`` on any failure."""
    body = json.dumps({"model": judge.model, "messages": list(messages), "max_tokens": max_tokens,
                       "temperature": temperature}).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    if judge.api_key:
        headers["Authorization"] = f"Bearer {judge.api_key}"
    url = completions_url(judge.base_url)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=judge.timeout_s) as response:
            reply = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as err:
        detail = err.read().decode("utf-8", "replace")[:200]
        raise JudgeUnavailable(f"judge {judge.describe()}: HTTP {err.code} from {url} ({detail})") from None
    except (OSError, ValueError) as err:  # refused, timed out, DNS, or a body that is not JSON
        raise JudgeUnavailable(f"judge {judge.describe()}: no usable answer from {url} ({err})") from None
    try:
        content = reply["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise JudgeUnavailable(f"judge {judge.describe()}: {url} did not answer like an "
                               f"OpenAI chat completion: {str(reply)[:200]}") from None
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
