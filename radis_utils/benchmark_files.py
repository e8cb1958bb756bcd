"""The benchmark files of paper table 3 and IFEval: readers that check their shape, and a download command.

``benchmark_files.json`` lists every file (path in the benchmark folder, source URLs pinned to a
commit, SHA-256, bytes) and, for the data files, the shape the readers check: format (JSON
Lines, JSON list, CSV), row count and required keys. A missing file or one of another shape is a
``BenchmarkFileError`` naming the file and the shape expected.

``python -m radis_utils.benchmark_files download --to DIR`` fetches them from their sources and
checks every SHA-256 (``data.fetch_verified``); ``verify`` checks a folder without fetching.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

from .config import resolve_path
from .data import DataError, fetch_verified, read_text

MANIFEST = Path(__file__).with_name("benchmark_files.json")
DEFAULT_DIR = "../shared/data/benchmarks"

GSM8K = "gsm8k/test.jsonl"
MT_BENCH_QUESTIONS = "mt_bench/question.jsonl"
MT_BENCH_REFERENCES = "mt_bench/reference_answer/gpt-4.jsonl"
MT_BENCH_JUDGE_PROMPTS = "mt_bench/judge_prompts.jsonl"
ADVBENCH = "advbench/harmful_behaviors.csv"
#: AlpacaEval's 805 instructions with the outputs of its two baselines (2.0 and 1.0).
IFEVAL = "ifeval/input_data.jsonl"
ALPACA_EVAL_BASELINES = {"gpt4_1106_preview": "alpaca_eval/gpt4_1106_preview_model_outputs.json",
                         "text_davinci_003": "alpaca_eval/text_davinci_003_model_outputs.json"}


class BenchmarkFileError(DataError):
    """A benchmark file that is missing or not of the expected shape (the message names both)."""


def manifest() -> dict[str, Any]:
    """The ``files`` table of ``benchmark_files.json``: ``{relative path: {urls, sha256, bytes, shape?}}``."""
    return json.loads(MANIFEST.read_text(encoding="utf-8"))["files"]


def describe_shape(shape: dict[str, Any]) -> str:
    """A shape in words, e.g. 'a JSON Lines file of 80 rows with keys question_id, category, turns'."""
    kind = {"jsonl": "a JSON Lines file", "json": "a JSON list", "csv": "a CSV file"}[shape["format"]]
    what = "columns" if shape["format"] == "csv" else "keys"
    extra = f", each 'turns' a list of {shape['turns']} strings" if "turns" in shape else ""
    return f"{kind} of {shape['rows']} rows with {what} {', '.join(shape['keys'])}{extra}"


def _rows(path: Path, fmt: str) -> list[Any]:
    """The rows of ``path`` as parsed objects; a parse error, or bytes that are not UTF-8, name the file (and line)."""
    text = read_text(path)
    if fmt == "csv":
        return list(csv.DictReader(text.splitlines()))
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise BenchmarkFileError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(data, list):
            raise BenchmarkFileError(f"{path}: expected a JSON list, got {type(data).__name__}")
        return data
    rows = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise BenchmarkFileError(f"{path}:{line_no}: not a JSON line ({err.msg})") from None
    return rows


def read_checked(folder: str | Path, rel: str) -> list[dict[str, Any]]:
    """The rows of benchmark file ``rel`` under ``folder``, after checking the manifest's shape."""
    shape = manifest()[rel]["shape"]
    path = Path(folder) / rel
    expected = f"expected {describe_shape(shape)}"
    if not path.is_file():
        raise BenchmarkFileError(f"{path}: file not found; {expected}. Get the files with "
                                 f"`python -m radis_utils.benchmark_files download --to {Path(folder)}`")
    rows = _rows(path, shape["format"])
    if shape["format"] == "csv":
        header = next(csv.reader(read_text(path).splitlines()), [])
        if header != shape["keys"]:
            raise BenchmarkFileError(f"{path}: header is {','.join(header)!r}; {expected}")
    if len(rows) != shape["rows"]:
        raise BenchmarkFileError(f"{path}: {len(rows)} rows, {expected}")
    for i, row in enumerate(rows):
        where = f"{path}:{i + 2}" if shape["format"] == "csv" else f"{path} (row {i + 1})"
        missing = [k for k in shape["keys"] if not isinstance(row, dict) or k not in row]
        if missing:
            found = ", ".join(map(str, row)) if isinstance(row, dict) else type(row).__name__
            raise BenchmarkFileError(f"{where}: lacks {', '.join(missing)} (found: {found}); {expected}")
        if shape["format"] == "csv" and (None in row or None in row.values()):
            raise BenchmarkFileError(f"{where}: not {len(shape['keys'])} fields; {expected}")
        turns = row.get("turns")
        if "turns" in shape and not (isinstance(turns, list) and len(turns) == shape["turns"]
                                     and all(isinstance(t, str) and t for t in turns)):
            raise BenchmarkFileError(f"{where}: 'turns' is {turns!r:.60}; {expected}")
    return rows


def read_gsm8k(folder: str | Path) -> list[dict[str, str]]:
    """GSM8K's test split: 1,319 ``{"question", "answer"}`` (answers end in ``#### <number>``)."""
    return read_checked(folder, GSM8K)


def read_mtbench_questions(folder: str | Path) -> list[dict[str, Any]]:
    """MT-Bench's 80 questions: ``question_id``, ``category``, two ``turns`` (39 with a ``reference``)."""
    return read_checked(folder, MT_BENCH_QUESTIONS)


def read_mtbench_references(folder: str | Path) -> dict[int, list[str]]:
    """GPT-4's reference answers (30 questions) as ``{question_id: [turn 1, turn 2]}``."""
    rows = read_checked(folder, MT_BENCH_REFERENCES)
    return {r["question_id"]: list(r["choices"][0]["turns"]) for r in rows}


def read_judge_prompts(folder: str | Path) -> dict[str, dict[str, Any]]:
    """FastChat's 8 judge prompts by name (``single-v1``, ``single-math-v1``, ``pair-v2``, ...)."""
    return {r["name"]: r for r in read_checked(folder, MT_BENCH_JUDGE_PROMPTS)}


def read_advbench(folder: str | Path) -> list[dict[str, str]]:
    """AdvBench's 520 harmful behaviours as ``{"goal", "target"}``."""
    return [{"goal": r["goal"], "target": r["target"]} for r in read_checked(folder, ADVBENCH)]


def read_ifeval(folder: str | Path) -> list[dict[str, Any]]:
    """IFEval's 541 prompts: ``key``, ``prompt``, ``instruction_id_list`` and one ``kwargs`` dict per
    instruction (the ids themselves are checked against the checker's registry by ``evaluate.ifeval``)."""
    rows = read_checked(folder, IFEVAL)
    path = Path(folder) / IFEVAL
    for i, row in enumerate(rows):
        ids, kwargs = row["instruction_id_list"], row["kwargs"]
        if not (isinstance(ids, list) and ids and all(isinstance(x, str) for x in ids)):
            raise BenchmarkFileError(f"{path} (row {i + 1}, key {row['key']}): 'instruction_id_list' is {ids!r:.60}; "
                                     "expected a non-empty list of instruction ids")
        if not (isinstance(kwargs, list) and len(kwargs) == len(ids) and all(isinstance(k, dict) for k in kwargs)):
            raise BenchmarkFileError(f"{path} (row {i + 1}, key {row['key']}): 'kwargs' is {kwargs!r:.60}; "
                                     f"expected a list of {len(ids)} objects, one per instruction")
    return rows


def read_alpaca_eval(folder: str | Path, baseline: str = "gpt4_1106_preview") -> list[dict[str, str]]:
    """AlpacaEval's 805 instructions with ``baseline``'s outputs (``ALPACA_EVAL_BASELINES``)."""
    if baseline not in ALPACA_EVAL_BASELINES:
        raise KeyError(f"unknown AlpacaEval baseline {baseline!r}; known: {', '.join(ALPACA_EVAL_BASELINES)}")
    return read_checked(folder, ALPACA_EVAL_BASELINES[baseline])


def verify(folder: str | Path) -> dict[str, str]:
    """``{relative path: problem}`` for every manifest file missing or of another SHA-256 ({} = all good)."""
    problems = {}
    for rel, meta in manifest().items():
        path = Path(folder) / rel
        if not path.is_file():
            problems[rel] = "missing"
        elif hashlib.sha256(path.read_bytes()).hexdigest() != meta["sha256"]:
            problems[rel] = f"SHA-256 differs from the manifest's {meta['sha256'][:12]}..."
    return problems


def download(dest: str | Path, mirror: str | None = None) -> list[Path]:
    """Fetch every benchmark file into ``dest`` from its sources (or ``mirror``, a URL laid out
    like the benchmark folder), checking SHA-256s; files already verified are kept. Returns
    the files fetched."""
    dest = Path(dest)
    fetched = []
    for rel, meta in manifest().items():
        urls = [mirror.rstrip("/") + "/" + rel] if mirror else meta["urls"]
        if fetch_verified(urls, dest / rel, meta["sha256"]):
            fetched.append(dest / rel)
    return fetched


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m radis_utils.benchmark_files download --to DIR`` (needs internet) | ``verify DIR``."""
    parser = argparse.ArgumentParser(prog="python -m radis_utils.benchmark_files")
    sub = parser.add_subparsers(dest="command", required=True)
    get = sub.add_parser("download", help="fetch the benchmark files, checking SHA-256")
    get.add_argument("--to", default="data/benchmarks", help="destination (default: data/benchmarks)")
    get.add_argument("--mirror", default=None, help="a URL laid out like the benchmark folder")
    check = sub.add_parser("verify", help="check a benchmark folder's files against the manifest")
    check.add_argument("folder", nargs="?", default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    if args.command == "download":
        dest = resolve_path(args.to)
        fetched = download(dest, args.mirror)
        print(f"{len(fetched)} file(s) downloaded, all {len(manifest())} verified in {dest}; "
              "pass that folder as the benchmark folder (benchmarks_dir)")
        return 0
    problems = verify(resolve_path(args.folder))
    for rel, why in problems.items():
        print(f"{rel}: {why}")
    print(f"{len(manifest()) - len(problems)} of {len(manifest())} files verified")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
