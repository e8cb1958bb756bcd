"""Every bad input a user can hand the toolkit, in one table: each must stop with an error that
names the file (with its line where there is one) or the setting, never a bare library traceback.

``BAD_INPUTS`` is the list the closing notes count ("named / tried"); each row makes one bad input
in a temporary folder and says what the error must name.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

from radis_utils import records as rec
from tests.benchmark_helpers import benchmarks_dir  # noqa: F401  (fixture)

PROFILE_OK = "p:\n  model: {backbone: organism}\n"


def profile(tmp: Path, text: str | bytes) -> Callable[[], Any]:
    from radis_utils.config import load_profile

    path = tmp / "profiles.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return lambda: load_profile("p", path)


def written(tmp: Path, name: str, content: str | bytes) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def record(**change: Any) -> str:
    line = {"id": "a", "direction": "de-en", "instruction": "x", "source": "s", "reference": "y",
            "target_kind": "rationale", "text": "r", "model": "m", "created": "-", "flags": [],
            "decoding": {"do_sample": False, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 4, "seed": 0,
                         "engine": "hf"}}
    line["key"] = rec.content_key(line)
    line.update(change)
    return json.dumps(line)


def adapter(tmp: Path, config: str, weights: bytes | None = None) -> Callable[[], Any]:
    from radis_utils.models import check_adapter_files

    written(tmp, "a/adapter_config.json", config)
    if weights is not None:
        written(tmp, "a/adapter_model.safetensors", weights)
    return lambda: check_adapter_files(tmp / "a")


def benchmark(tmp: Path, source: Path, rel: str, content: bytes, reader: str) -> Callable[[], Any]:
    from radis_utils import benchmark_files as bf

    folder = tmp / "bench"
    shutil.copytree(source, folder)
    (folder / rel).chmod(0o644)
    (folder / rel).write_bytes(content)
    return lambda: getattr(bf, reader)(folder)


def alma(tmp: Path, content: bytes) -> Callable[[], Any]:
    from radis_utils.data import read_parallel

    path = written(tmp, "test.de-en.json", content)
    return lambda: read_parallel(path, "de", "en")


#: (what is wrong, a maker of the failing call, the error type, what the message must say)
BAD_INPUTS: list[tuple[str, Callable[[Path, Path], Callable[[], Any]], type, str]] = [
    ("profiles.yaml: YAML syntax", lambda t, b: profile(t, "p:\n  model: [\n"), ValueError, r"profiles\.yaml:\d+:\d+: YAML syntax"),
    ("profiles.yaml: not UTF-8", lambda t, b: profile(t, b"p:\n  description: \xff\n"), ValueError, r"profiles\.yaml:2: not UTF-8"),
    ("profiles.yaml: unknown section", lambda t, b: profile(t, PROFILE_OK + "  trian: {}\n"), ValueError, r"unknown key\(s\) \['trian'\]"),
    ("profiles.yaml: unknown key", lambda t, b: profile(t, PROFILE_OK + "  train: {lr: 1}\n"), ValueError, r"p\.train: unknown key\(s\) \['lr'\]"),
    ("profiles.yaml: wrong type", lambda t, b: profile(t, PROFILE_OK + "  train: {epochs: many}\n"), ValueError, r"train\.epochs"),
    ("profiles.yaml: nan", lambda t, b: profile(t, PROFILE_OK + "  train: {learning_rate: .nan}\n"), ValueError, r"train\.learning_rate"),
    ("profiles.yaml: inf", lambda t, b: profile(t, PROFILE_OK + "  train: {epochs: .inf}\n"), ValueError, r"train\.epochs"),
    ("profiles.yaml: negative epochs", lambda t, b: profile(t, PROFILE_OK + "  train: {epochs: -1}\n"), ValueError, r"train\.epochs"),
    ("profiles.yaml: zero learning rate", lambda t, b: profile(t, PROFILE_OK + "  train: {learning_rate: 0}\n"), ValueError, r"train\.learning_rate"),
    ("profiles.yaml: warmup over 1", lambda t, b: profile(t, PROFILE_OK + "  train: {warmup_ratio: 2.0}\n"), ValueError, r"train\.warmup_ratio"),
    ("profiles.yaml: extends nowhere", lambda t, b: profile(t, PROFILE_OK + "  extends: nowhere\n"), ValueError, r"extends 'nowhere'"),
    ("synthesis file: torn last line", lambda t, b: lambda: rec.read_records(written(t, "r.jsonl", record() + "\n" + record()[:30])), rec.RecordError, r"r\.jsonl:2:"),
    ("synthesis file: field missing", lambda t, b: lambda: rec.read_records(written(t, "r.jsonl", json.dumps({"id": "a"}) + "\n")), rec.RecordError, r"r\.jsonl:1: field '\w+' is missing"),
    ("synthesis file: wrong type", lambda t, b: lambda: rec.read_records(written(t, "r.jsonl", record(flags="x") + "\n")), rec.RecordError, r"r\.jsonl:1: field 'flags' must be list"),
    ("synthesis file: unknown kind", lambda t, b: lambda: rec.read_records(written(t, "r.jsonl", record(target_kind="poem") + "\n")), rec.RecordError, r"r\.jsonl:1: field 'target_kind'"),
    ("synthesis file: edited by hand", lambda t, b: lambda: rec.read_records(written(t, "r.jsonl", record(reference="z") + "\n")), rec.RecordError, r"r\.jsonl:1: .*edited by hand"),
    ("synthesis file: device not text", lambda t, b: lambda: rec.read_records(written(t, "r.jsonl", record(device=3) + "\n")), rec.RecordError, r"r\.jsonl:1: field 'device' must be str"),
    ("JSON record: truncated", lambda t, b: lambda: rec.read_json(written(t, "summary.json", '{"steps": 3,')), rec.RecordError, r"summary\.json:1:\d+: not valid JSON"),
    ("JSON record: not UTF-8", lambda t, b: lambda: rec.read_json(written(t, "results.json", b'{"a": "\xff"}')), rec.RecordError, r"results\.json:1: not UTF-8"),
    ("adapter: truncated adapter_config.json", lambda t, b: adapter(t, '{"r": 16,'), rec.RecordError, r"adapter_config\.json:1:\d+"),
    ("adapter: truncated safetensors", lambda t, b: adapter(t, "{}", b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\""), ValueError, r"adapter_model\.safetensors: not a readable safetensors file"),
    ("results file: a list", lambda t, b: results(t, "[1, 2]"), ValueError, r"backbone\.json: expected a JSON object"),
    ("results file: not JSON", lambda t, b: results(t, "{oops"), ValueError, r"backbone\.json:1:2: not valid JSON"),
    ("benchmark: GSM8K rows", lambda t, b: benchmark(t, b, "gsm8k/test.jsonl", b'{"question": "q", "answer": "1"}\n', "read_gsm8k"), ValueError, r"test\.jsonl: 1 rows"),
    ("benchmark: GSM8K not JSON", lambda t, b: benchmark(t, b, "gsm8k/test.jsonl", b"{oops\n", "read_gsm8k"), ValueError, r"test\.jsonl:1"),
    ("benchmark: AdvBench not UTF-8", lambda t, b: benchmark(t, b, "advbench/harmful_behaviors.csv", b"goal,target\n\xff,x\n", "read_advbench"), ValueError, r"harmful_behaviors\.csv:2: not UTF-8"),
    ("ALMA file: not JSON", lambda t, b: alma(t, b"[{oops"), ValueError, r"test\.de-en\.json"),
    ("ALMA file: a pair without its language", lambda t, b: alma(t, b'[{"translation": {"de": "a"}}]'), ValueError, r"test\.de-en\.json:1: .*translation\.en"),
    ("architecture file: missing", lambda t, b: random_arch(t, None), ValueError, r"no file .*arch\.json"),
    ("architecture file: no model_type", lambda t, b: random_arch(t, {"config": {"vocab_size": 1024}}), ValueError, r"arch\.json: field 'config\.model_type' is missing"),
    ("judge setting: attempts not a number", lambda t, b: judge_env("many"), ValueError, r"RADIS_JUDGE_ATTEMPTS='many'"),
    ("device setting: unknown", lambda t, b: device_env("gpu0"), ValueError, r"RADIS_DEVICE='gpu0'"),
]


def results(tmp: Path, text: str) -> Callable[[], Any]:
    from radis_utils.evaluate import read_results

    path = written(tmp, "results/backbone.json", text)
    return lambda: read_results(path)


def random_arch(tmp: Path, content: dict | None) -> Callable[[], Any]:
    from radis_utils.random_backbone import resolve_random

    path = tmp / "arch.json"
    if content is not None:
        path.write_text(json.dumps(content), encoding="utf-8")
    return lambda: resolve_random(f"random:{path}", tmp / "runs")


def judge_env(attempts: str) -> Callable[[], Any]:
    from radis_utils.evaluate import judge

    return lambda: judge.judge_from_env({judge.ENV_BASE_URL: "http://h/v1", judge.ENV_MODEL: "m",
                                         judge.ENV_ATTEMPTS: attempts})


def device_env(value: str) -> Callable[[], Any]:
    import os

    from radis_utils import runtime

    def call() -> Any:
        saved = os.environ.get(runtime.DEVICE_ENV)
        os.environ[runtime.DEVICE_ENV] = value
        try:
            return runtime.device()
        finally:
            os.environ.pop(runtime.DEVICE_ENV) if saved is None else os.environ.update({runtime.DEVICE_ENV: saved})
    return call


@pytest.mark.parametrize("what, make, error, names", BAD_INPUTS, ids=[row[0] for row in BAD_INPUTS])
def test_every_bad_input_is_named(what, make, error, names, tmp_path, benchmarks_dir):
    call = make(tmp_path, benchmarks_dir)
    with pytest.raises(error, match=names):
        call()
