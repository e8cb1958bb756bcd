from __future__ import annotations

import json

import pytest

from radis_utils.data import DataError, alma_test_file, read_parallel


def test_three_formats_read_the_same_pairs(tmp_path):
    recs = [{"translation": {"de": "Hallo Welt.", "en": "Hello world."}},
            {"translation": {"de": "Gut.", "en": "Good."}}]
    (tmp_path / "a.json").write_text(json.dumps(recs))
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    (tmp_path / "train.de-en.de").write_text("Hallo Welt.\nGut.\n")
    (tmp_path / "train.de-en.en").write_text("Hello world.\nGood.\n")
    readings = [read_parallel(tmp_path / "a.json", "de", "en"),
                read_parallel(tmp_path / "a.jsonl", "de", "en"),
                read_parallel(tmp_path / "train.de-en", "de", "en"),
                read_parallel(tmp_path / "train.de-en.en", "de", "en")]
    for pairs in readings:
        assert [(p.source, p.reference) for p in pairs] == [("Hallo Welt.", "Hello world."), ("Gut.", "Good.")]
    reverse = read_parallel(tmp_path / "a.json", "en", "de")
    assert reverse[0].source == "Hello world." and reverse[0].direction == "en-de"


def test_errors_name_file_line_and_field(tmp_path):
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"translation": {"de": "a", "en": "b"}}\n{"translation": {"de": "c"}}\n')
    with pytest.raises(DataError, match=r"b.jsonl:2: missing or empty field translation.en"):
        read_parallel(bad, "de", "en")
    broken = tmp_path / "c.jsonl"
    broken.write_text('{"translation": {"de": "a", "en": "b"}}\n{"translation": \n')
    with pytest.raises(DataError, match=r"c.jsonl:2: invalid JSON line"):
        read_parallel(broken, "de", "en")
    (tmp_path / "t.de-en.de").write_text("a\nb\n")
    (tmp_path / "t.de-en.en").write_text("a\n")
    with pytest.raises(DataError, match="2 lines but .* has 1"):
        read_parallel(tmp_path / "t.de-en", "de", "en")
    with pytest.raises(DataError, match="file not found"):
        read_parallel(tmp_path / "missing.json", "de", "en")


def test_non_utf8_files_are_named_with_line(tmp_path):
    (tmp_path / "t.de-en.de").write_bytes("eins\nzwei gr\xfc\xdfe\n".encode("latin-1"))
    (tmp_path / "t.de-en.en").write_text("one\ntwo greetings\n")
    with pytest.raises(DataError, match=r"t\.de-en\.de:2: not UTF-8 \(byte 0xfc at column 8\); convert"):
        read_parallel(tmp_path / "t.de-en", "de", "en")
    (tmp_path / "j.jsonl").write_bytes(b'{"translation": {"de": "a", "en": "b"}}\n{"translation": {"de": "\xff"}}\n')
    with pytest.raises(DataError, match=r"j\.jsonl:2: not UTF-8"):
        read_parallel(tmp_path / "j.jsonl", "de", "en")


def test_a_lone_carriage_return_inside_a_line_is_refused(tmp_path):
    (tmp_path / "t.de-en.de").write_bytes(b"eins\r\nzwei\rdrei\r\nvier\r\n")  # CRLF endings are fine
    (tmp_path / "t.de-en.en").write_text("one\ntwo three\nfour\n")
    with pytest.raises(DataError, match=r"t\.de-en\.de:2: a lone carriage return"):
        read_parallel(tmp_path / "t.de-en", "de", "en")
    (tmp_path / "t.de-en.de").write_bytes(b"eins\r\nzwei drei\r\nvier\r\n")
    assert [p.source for p in read_parallel(tmp_path / "t.de-en", "de", "en")] == ["eins", "zwei drei", "vier"]


def test_real_alma_files_when_present(alma_dir):
    pairs = read_parallel(alma_dir / "human_written_data" / "deen" / "train.de-en", "de", "en")
    assert len(pairs) == 14211
    test = read_parallel(alma_test_file(alma_dir, "en", "zh"), "en", "zh")
    assert test and all(p.source and p.reference for p in test)
    cs_json = read_parallel(alma_dir / "human_written_data" / "csen" / "train.cs-en.json", "cs", "en")
    cs_txt = read_parallel(alma_dir / "human_written_data" / "csen" / "train.cs-en", "cs", "en")
    assert len(cs_json) == len(cs_txt) == 12076


# --- directed training set, test sets, organism ----------------------------------------------

from radis_utils import data  # noqa: E402
from radis_utils.config import load_profile  # noqa: E402

ALMA_TRAIN = {"cs": 12076, "de": 14211, "ru": 15000, "zh": 15406}


def test_documented_pair_counts_and_eight_test_sets(alma_dir):
    cfg = load_profile("qlora", data={"alma_dir": str(alma_dir)})
    for lang, count in ALMA_TRAIN.items():
        assert len(data.training_pairs(cfg, f"{lang}-en")) == count
        assert len(data.training_pairs(cfg, f"en-{lang}")) == count
    for direction in cfg.data.directions:
        test = data.test_pairs(cfg, direction)
        assert len(test) > 1000 and test[0].direction == direction
    examples = data.training_examples(cfg)
    assert len(examples) == 2 * sum(ALMA_TRAIN.values()) == 113386
    assert len({e.id for e in examples}) == len(examples)


def test_training_examples_are_seeded_and_use_all_templates():
    cfg = load_profile("ci")
    a, b = data.training_examples(cfg), data.training_examples(cfg)
    assert a == b and len(a) == cfg.data.max_train_pairs
    assert {e.template for e in a} == set(range(5))
    other = data.training_examples(load_profile("ci", prompts__instruction_seed=1))
    assert [e.template for e in other] != [e.template for e in a]
    first = a[0]
    assert first.instruction.endswith("\n" + first.source) and first.direction == "en-sy"
    assert first.id == "en-sy-000000"


def test_organism_test_pairs_are_held_out_from_training():
    cfg = load_profile("ci")
    train = {e.source for e in data.training_examples(cfg)}
    test = data.test_pairs(cfg, "en-sy", 100)
    assert len(test) == 100 and not train & {p.source for p in test}


@pytest.mark.parametrize("direction, message", [("de", "must look like"), ("de-de", "must look like"),
                                                ("xx-en", "unknown language code 'xx'")])
def test_bad_directions(direction, message):
    with pytest.raises(DataError, match=message):
        data.parse_direction(direction)


def test_download_checks_every_file(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "human_written_data" / "deen").mkdir(parents=True)
    good = mirror / "human_written_data" / "deen" / "test.de-en.json"
    good.write_text('[{"translation": {"de": "a", "en": "b"}}]')
    import hashlib

    manifest = tmp_path / "manifest.json"
    entry = {"sha256": hashlib.sha256(good.read_bytes()).hexdigest(), "bytes": good.stat().st_size}
    manifest.write_text(json.dumps({"source": mirror.as_uri(), "files": {
        "human_written_data/deen/test.de-en.json": entry}}))
    monkeypatch.setattr(data, "MANIFEST", manifest)
    dest = tmp_path / "dest"
    assert len(data.download_alma(dest)) == 1
    assert data.download_alma(dest) == []  # present and verified: nothing fetched again
    good.write_text("tampered")
    (dest / "human_written_data" / "deen" / "test.de-en.json").unlink()
    with pytest.raises(DataError, match="checksum"):
        data.download_alma(dest)
    assert not list((dest / "human_written_data" / "deen").iterdir())  # nothing half-written


def test_manifest_matches_the_shared_copy(alma_dir, tmp_path):
    fetched = data.download_alma(tmp_path / "copy", base_url=alma_dir.as_uri())
    assert len(fetched) == len(json.loads(data.MANIFEST.read_text())["files"]) == 25


def test_validation_split_is_wmt21_and_disjoint_from_training_and_test(alma_dir):
    cfg = load_profile("smol", data={"alma_dir": str(alma_dir), "max_train_pairs": None, "max_test_pairs": None})
    for direction in ("de-en", "cs-en"):
        valid = data.valid_pairs(cfg, direction, 1002)
        back = data.valid_pairs(cfg, "-".join(reversed(direction.split("-"))), 1002)
        assert len(valid) == 1002 and [p.source for p in valid] == [p.reference for p in back]
        seen = {p.source for p in data.training_pairs(cfg, direction)} | {p.source for p in data.test_pairs(cfg, direction)}
        assert not seen & {p.source for p in valid}
    assert len(data.valid_pairs(cfg, "de-en", 5)) == 5
    with pytest.raises(ValueError, match="organism has no validation split"):
        data.valid_pairs(load_profile("ci"), "de-en", 5)
