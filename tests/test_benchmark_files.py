"""Benchmark file readers check shape (keys or columns, rows) and name the file; download checks SHA-256.

The download path runs on local ``file://`` URLs (a mirror of the shipped folder): no network.
"""

from __future__ import annotations

import json
import shutil

import pytest

from radis_utils import benchmark_files as bf
from radis_utils import data
from radis_utils.data import DataError
from tests.benchmark_helpers import benchmarks_dir  # noqa: F401  (fixture)


def test_real_files_have_their_shapes(benchmarks_dir):
    assert len(bf.read_gsm8k(benchmarks_dir)) == 1319
    questions = bf.read_mtbench_questions(benchmarks_dir)
    assert [q["question_id"] for q in questions] == list(range(81, 161))
    assert all(len(q["turns"]) == 2 for q in questions)
    refs = bf.read_mtbench_references(benchmarks_dir)
    assert sorted(refs) == list(range(101, 131)) and all(len(t) == 2 for t in refs.values())
    prompts = bf.read_judge_prompts(benchmarks_dir)
    assert {"single-v1", "single-math-v1", "single-v1-multi-turn", "pair-v2"} <= set(prompts)
    adv = bf.read_advbench(benchmarks_dir)
    assert len(adv) == 520 and adv[0]["goal"].startswith("Write a script that can exploit")
    new, old = (bf.read_alpaca_eval(benchmarks_dir, b) for b in bf.ALPACA_EVAL_BASELINES)
    assert len(new) == len(old) == 805
    assert [r["instruction"] for r in new] == [r["instruction"] for r in old]
    assert bf.verify(benchmarks_dir) == {}


def test_missing_file_names_file_and_shape(tmp_path):
    with pytest.raises(bf.BenchmarkFileError, match=r"gsm8k/test.jsonl: file not found; expected a JSON "
                       r"Lines file of 1319 rows with keys question, answer.*download --to"):
        bf.read_gsm8k(tmp_path)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_wrong_row_count_and_keys(tmp_path):
    write(tmp_path / bf.GSM8K, '{"question": "q", "answer": "#### 1"}\n' * 3)
    with pytest.raises(bf.BenchmarkFileError, match=r"test.jsonl: 3 rows, expected a JSON Lines file of 1319 rows"):
        bf.read_gsm8k(tmp_path)
    write(tmp_path / bf.GSM8K, '{"question": "q", "answer": "#### 1"}\n' * 1318 + '{"question": "q"}\n')
    with pytest.raises(bf.BenchmarkFileError, match=r"\(row 1319\): lacks answer \(found: question\)"):
        bf.read_gsm8k(tmp_path)
    write(tmp_path / bf.GSM8K, '{"question": "q", "answer": "#### 1"}\n' * 1318 + "{oops\n")
    with pytest.raises(bf.BenchmarkFileError, match=r"test.jsonl:1319: not a JSON line"):
        bf.read_gsm8k(tmp_path)


def test_mtbench_needs_two_turns(tmp_path):
    rows = [{"question_id": i, "category": "writing", "turns": ["a", "b"]} for i in range(80)]
    rows[5]["turns"] = ["only one"]
    write(tmp_path / bf.MT_BENCH_QUESTIONS, "".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(bf.BenchmarkFileError, match=r"\(row 6\): 'turns' is \['only one'\].*each 'turns' a list of 2"):
        bf.read_mtbench_questions(tmp_path)


def test_advbench_columns_and_fields(tmp_path):
    write(tmp_path / bf.ADVBENCH, "prompt,target\n" + "x,y\n" * 520)
    with pytest.raises(bf.BenchmarkFileError, match=r"header is 'prompt,target'; expected a CSV file of 520 rows "
                       r"with columns goal, target"):
        bf.read_advbench(tmp_path)
    write(tmp_path / bf.ADVBENCH, "goal,target\n" + "x,y\n" * 519 + "x,y,z\n")
    with pytest.raises(bf.BenchmarkFileError, match=r"harmful_behaviors.csv:521: not 2 fields"):
        bf.read_advbench(tmp_path)


def test_alpaca_eval_must_be_a_list(tmp_path):
    write(tmp_path / bf.ALPACA_EVAL_BASELINES["gpt4_1106_preview"], '{"instruction": "x"}')
    with pytest.raises(bf.BenchmarkFileError, match="expected a JSON list, got dict"):
        bf.read_alpaca_eval(tmp_path)
    with pytest.raises(KeyError, match="unknown AlpacaEval baseline 'gpt5'"):
        bf.read_alpaca_eval(tmp_path, "gpt5")


def test_manifest_urls_are_pinned_raw_sources():
    for rel, meta in bf.manifest().items():
        assert meta["urls"] and all(u.startswith("https://raw.githubusercontent.com/") for u in meta["urls"])
        assert all(len(u.split("/")[5]) == 40 for u in meta["urls"]), rel  # a commit, not a branch
        assert len(meta["sha256"]) == 64


def test_download_checks_sha256_and_leaves_nothing_half_written(benchmarks_dir, tmp_path, capsys):
    dest = tmp_path / "copy"
    assert bf.main(["download", "--to", str(dest), "--mirror", benchmarks_dir.as_uri()]) == 0
    assert "13 file(s) downloaded, all 13 verified" in capsys.readouterr().out
    assert bf.verify(dest) == {} and bf.download(dest, benchmarks_dir.as_uri()) == []  # kept, not fetched again
    bad = tmp_path / "bad"
    shutil.copytree(benchmarks_dir, bad)
    (bad / bf.ADVBENCH).chmod(0o644)
    (bad / bf.ADVBENCH).write_text("goal,target\n", encoding="utf-8")
    target = tmp_path / "fresh"
    with pytest.raises(DataError, match=r"harmful_behaviors.csv: checksum .* does not match"):
        bf.download(target, bad.as_uri())
    assert not (target / bf.ADVBENCH).exists()
    assert not [p for p in target.rglob("*") if p.is_file() and p.name.startswith(".")]  # no temporary left
    assert bf.main(["verify", str(target)]) == 1
    assert "advbench/harmful_behaviors.csv: missing" in capsys.readouterr().out


def test_unreachable_source_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="could not download from any source"):
        bf.download(tmp_path, (tmp_path / "nowhere").as_uri())


def test_download_over_http_through_pooch_falls_back_to_the_next_source(benchmarks_dir, tmp_path):
    """The real path: HTTP (pooch), from a loopback server laid out like the benchmark folder;
    a source that answers 404 is skipped for the next one."""
    import functools
    from http.server import SimpleHTTPRequestHandler

    from tests.benchmark_helpers import LoopbackServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    with LoopbackServer(functools.partial(Quiet, directory=str(benchmarks_dir))) as server:
        base = server.origin
        meta = bf.manifest()[bf.ADVBENCH]
        target = tmp_path / "fresh" / bf.ADVBENCH
        assert data.fetch_verified([f"{base}/no/such/file.csv", f"{base}/{bf.ADVBENCH}"], target, meta["sha256"])
        assert bf.verify(tmp_path / "fresh").get(bf.ADVBENCH) is None and target.is_file()
        assert not data.fetch_verified([f"{base}/{bf.ADVBENCH}"], target, meta["sha256"])  # verified: kept
        with pytest.raises(DataError, match="could not download from any source .*404"):
            data.fetch_verified([f"{base}/missing.csv"], tmp_path / "x.csv", meta["sha256"])
