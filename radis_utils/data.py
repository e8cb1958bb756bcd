"""Parallel data: ALMA's three file formats, WMT'22 test sets, and the organism's pairs.

ALMA ships the same kind of record three ways (see ``../shared/data/alma/README.md``):
JSON Lines and JSON arrays of ``{"translation": {lang: text}}``, and line-aligned plain text
(``train.de-en.de`` + ``train.de-en.en``). ``read_parallel`` reads all three into ``Pair``s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from .config import Config, resolve_path
from .prompts import LANGUAGE_NAMES, pick_instruction, translation_request

MANIFEST = Path(__file__).with_name("alma_files.json")
ORGANISM_TRAIN_PAIRS = 2000  # stage-2 pairs when the profile sets no data.max_train_pairs


class DataError(ValueError):
    """A data file that is missing or malformed; the message names file, line and field."""


@dataclass(frozen=True)
class Pair:
    """One directed example: ``source`` in ``src`` translated as ``reference`` in ``tgt``."""

    src: str
    tgt: str
    source: str
    reference: str
    origin: str = ""  # "file:line" it came from

    @property
    def direction(self) -> str:
        """``src-tgt``, e.g. ``de-en``."""
        return f"{self.src}-{self.tgt}"


@dataclass(frozen=True)
class Example:
    """One directed training example: the user turn ``instruction`` (instruction line + source)
    and the ``reference`` translation. ``id`` is stable across runs (resume and joins use it)."""

    id: str
    direction: str
    template: int
    instruction: str
    source: str
    reference: str


def read_parallel(path: str | Path, src: str, tgt: str) -> list[Pair]:
    """Pairs ``src -> tgt`` from a JSON array, JSON Lines, or a plain-text file pair.

    For plain text, ``path`` is either file of the pair (``train.de-en.de``) or their common
    stem (``train.de-en``); the other file is found by swapping the language suffix.
    """
    path = Path(path)
    if path.suffix in (".json", ".jsonl"):
        if not path.is_file():
            raise DataError(f"{path}: file not found")
        return [_pair(rec, src, tgt, f"{path}:{line}") for line, rec in _json_records(path)]
    return _read_text_pair(path, src, tgt)


def read_text(path: Path) -> str:
    """A data file's text, exactly (no newline translation); non-UTF-8 bytes are a ``DataError``
    naming the file, line and column."""
    blob = path.read_bytes()
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError as err:
        line = blob.count(b"\n", 0, err.start) + 1
        column = err.start - (blob.rfind(b"\n", 0, err.start) + 1) + 1
        raise DataError(f"{path}:{line}: not UTF-8 (byte 0x{blob[err.start]:02x} at column {column}); "
                        "convert the file to UTF-8, e.g. iconv -f latin1 -t utf-8") from None


def _json_records(path: Path) -> Iterator[tuple[int, Any]]:
    text = read_text(path)
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{err.lineno}: invalid JSON array ({err.msg})") from err
        yield from ((i + 1, rec) for i, rec in enumerate(records))  # record number, not line
        return
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{line_no}: invalid JSON line ({err.msg})") from err


def _pair(record: Any, src: str, tgt: str, where: str) -> Pair:
    pair = record.get("translation") if isinstance(record, dict) else None
    if not isinstance(pair, dict):
        raise DataError(f"{where}: expected an object with a 'translation' field")
    for lang in (src, tgt):
        if not isinstance(pair.get(lang), str) or not pair[lang].strip():
            raise DataError(f"{where}: missing or empty field translation.{lang}")
    return Pair(src, tgt, pair[src].strip(), pair[tgt].strip(), where)


def _read_text_pair(path: Path, src: str, tgt: str) -> list[Pair]:
    stem = path.with_suffix("") if path.suffix.lstrip(".") in (src, tgt) else path
    files = {lang: stem.with_name(f"{stem.name}.{lang}") for lang in (src, tgt)}
    for lang, f in files.items():
        if not f.is_file():
            raise DataError(f"{f}: file not found (plain-text side '{lang}' of {stem})")
    lines = {lang: _lines(f) for lang, f in files.items()}
    if len(lines[src]) != len(lines[tgt]):
        raise DataError(
            f"{files[src]} has {len(lines[src])} lines but {files[tgt]} has {len(lines[tgt])}: "
            "plain-text pairs must be line-aligned"
        )
    pairs = []
    for i, (s, t) in enumerate(zip(lines[src], lines[tgt]), start=1):
        if not s.strip() or not t.strip():
            empty = files[src] if not s.strip() else files[tgt]
            raise DataError(f"{empty}:{i}: empty line in a line-aligned pair")
        pairs.append(Pair(src, tgt, s.strip(), t.strip(), f"{files[src]}:{i}"))
    return pairs


def _lines(path: Path) -> list[str]:
    """Lines split on newline only (``str.splitlines`` would also split on U+2028 and friends);
    a lone carriage return inside a line is an error (split or not, it would shift the pairs)."""
    text = read_text(path).replace("\r\n", "\n")
    if "\r" in text:
        at = text.index("\r")
        raise DataError(f"{path}:{text.count(chr(10), 0, at) + 1}: a lone carriage return (CR, \\r) inside the "
                        "line; pairs are split on newlines only: remove it or replace it by a space")
    return text[:-1].split("\n") if text.endswith("\n") else text.split("\n")


def parse_direction(direction: str) -> tuple[str, str]:
    """``"de-en"`` -> ``("de", "en")``; unknown codes raise with the known ones."""
    src, sep, tgt = direction.partition("-")
    if not sep or src == tgt:
        raise DataError(f"direction {direction!r} must look like 'de-en'")
    for code in (src, tgt):
        if code not in LANGUAGE_NAMES:
            raise DataError(f"direction {direction!r}: unknown language code {code!r}; "
                            f"known: {', '.join(sorted(LANGUAGE_NAMES))}")
    return src, tgt


def _alma_folder(alma_dir: str | Path, src: str, tgt: str) -> tuple[Path, str]:
    """ALMA's folder for a pair of languages (``human_written_data/XXen``) and its ``XX``."""
    other = src if tgt == "en" else tgt
    return Path(alma_dir) / "human_written_data" / f"{other}en", other


def alma_train_stem(alma_dir: str | Path, src: str, tgt: str) -> Path:
    """``human_written_data/XXen/train.XX-en``: the plain-text pair serving both directions."""
    folder, other = _alma_folder(alma_dir, src, tgt)
    return folder / f"train.{other}-en"


def alma_test_file(alma_dir: str | Path, src: str, tgt: str) -> Path:
    """``human_written_data/XXen/test.SRC-TGT.json``: WMT'22 test set for one direction."""
    folder, _ = _alma_folder(alma_dir, src, tgt)
    return folder / f"test.{src}-{tgt}.json"


def alma_valid_file(alma_dir: str | Path, src: str, tgt: str) -> Path:
    """``human_written_data/XXen/valid.XX-en.json``: WMT'21 test, ALMA's validation split (both directions)."""
    folder, other = _alma_folder(alma_dir, src, tgt)
    return folder / f"valid.{other}-en.json"


def training_pairs(cfg: Config, direction: str) -> list[Pair]:
    """Training pairs of one direction: ALMA's human-written data, or the organism's stage-2 pairs."""
    src, tgt = parse_direction(direction)
    if cfg.data.source == "organism":
        world = _organism_world(cfg)
        raw = world.translation_pairs(cfg.data.max_train_pairs or ORGANISM_TRAIN_PAIRS, "stage2",
                                      cfg.runtime.seed)
        return [Pair(src, tgt, s, r, f"organism:stage2:{i}") for i, (s, r) in enumerate(raw)]
    pairs = read_parallel(alma_train_stem(resolve_path(cfg.data.alma_dir), src, tgt), src, tgt)
    return pairs[: cfg.data.max_train_pairs] if cfg.data.max_train_pairs else pairs


def training_examples(cfg: Config) -> list[Example]:
    """The directed training set: every direction of the profile, one seeded instruction each."""
    rng = random.Random(cfg.prompts.instruction_seed)
    return [make_example(pair, f"{direction}-{i:06d}", rng, cfg.prompts.instructions)
            for direction in cfg.data.directions
            for i, pair in enumerate(training_pairs(cfg, direction))]


def make_example(pair: Pair, example_id: str, rng: random.Random, instructions: Sequence[str]) -> Example:
    """A directed example from a pair, with one instruction template drawn from ``rng``."""
    template = pick_instruction(rng, instructions)
    user = translation_request(pair.source, pair.src, pair.tgt, template, instructions)
    return Example(example_id, pair.direction, template, user, pair.source, pair.reference)


def _organism_world(cfg: Config) -> Any:
    from .organism import World, organism_config

    return World(organism_config(cfg).world_seed)


def test_pairs(cfg: Config, direction: str, n: int | None = None, seed: int = 0) -> list[Pair]:
    """Held-out pairs for ``direction``: the organism's test split, or WMT'22 from ALMA's files."""
    src, tgt = parse_direction(direction)
    if cfg.data.source == "organism":
        world = _organism_world(cfg)
        raw = world.translation_pairs(n or cfg.data.max_test_pairs or 200, "test", seed)
        return [Pair(src, tgt, s, r, f"organism:test:{i}") for i, (s, r) in enumerate(raw)]
    path = alma_test_file(resolve_path(cfg.data.alma_dir), src, tgt)
    pairs = read_parallel(path, src, tgt)
    limit = n or cfg.data.max_test_pairs
    return pairs[:limit] if limit else pairs


def valid_pairs(cfg: Config, direction: str, n: int) -> list[Pair]:
    """The first ``n`` pairs of ALMA's validation split (WMT'21) for ``direction``: what settings are
    tuned on, disjoint from training (WMT'17-'20, Flores) and test (WMT'22)."""
    if cfg.data.source == "organism":
        raise ValueError("valid_pairs: the organism has no validation split; it was tuned on world 0 "
                         "(calibration.TUNED)")
    src, tgt = parse_direction(direction)
    return read_parallel(alma_valid_file(resolve_path(cfg.data.alma_dir), src, tgt), src, tgt)[:n]


# --- download ------------------------------------------------------------------------------

def download_alma(dest: str | Path, base_url: str | None = None) -> list[Path]:
    """Fetch ALMA's human-written data into ``dest`` and check every file's SHA-256.

    Files already present with the right checksum are kept (``fetch_verified``); returns the
    files fetched.
    """
    manifest = json.loads(MANIFEST.read_text())
    base = (base_url or manifest["source"]).rstrip("/") + "/"
    dest = Path(dest)
    return [dest / rel for rel, meta in manifest["files"].items()
            if fetch_verified([base + rel], dest / rel, meta["sha256"])]


def fetch_verified(urls: Sequence[str], target: Path, sha256: str) -> bool:
    """Download ``target`` from the first of ``urls`` that answers, keeping it only if its SHA-256
    is ``sha256``; ``False`` (nothing fetched) when ``target`` already has that checksum.

    ``pooch.retrieve`` downloads (http, https, ftp; a ``file://`` mirror is copied) into a
    temporary file beside ``target`` and renames it only after the checksum holds, so nothing
    half-downloaded is ever left under its real name. A checksum mismatch is a ``DataError``.
    """
    import pooch
    import requests

    target = Path(target)
    if target.is_file() and _sha256(target) == sha256:
        return False
    pooch.get_logger().setLevel("WARNING")  # one line per file is the caller's to print
    errors = []
    for url in urls:
        local = url.startswith("file://")
        try:
            pooch.retrieve(url, known_hash=f"sha256:{sha256}", fname=target.name, path=target.parent,
                           downloader=_copy_local if local else None)
            return True
        except ValueError as err:  # pooch: the checksum of the download is not the manifest's
            if "hash" not in str(err):
                raise
            raise DataError(f"{url}: checksum of the download does not match the manifest's ({sha256[:12]}...); "
                            f"the file changed upstream or was corrupted ({err})") from None
        except (OSError, requests.RequestException) as err:
            errors.append(f"{url}: {err}")
    raise DataError(f"{target.name}: could not download from any source ({'; '.join(errors)})")


def _copy_local(url: str, output_file: Any, _pooch: Any) -> None:
    """pooch's downloader for a ``file://`` mirror (pooch itself fetches http, https, ftp and sftp)."""
    source = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
    with open(source, "rb") as src, open(output_file, "wb") as dst:
        shutil.copyfileobj(src, dst)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    """``python -m radis_utils.data download [--to DIR]``: get the real data (needs internet)."""
    parser = argparse.ArgumentParser(prog="python -m radis_utils.data")
    sub = parser.add_subparsers(dest="command", required=True)
    get = sub.add_parser("download", help="download ALMA's human-written data, checking SHA-256")
    get.add_argument("--to", default="data/alma", help="destination folder (default: data/alma)")
    get.add_argument("--base-url", default=None, help="mirror of ALMA's repository root")
    args = parser.parse_args(argv)
    fetched = download_alma(resolve_path(args.to), args.base_url)
    print(f"{len(fetched)} file(s) downloaded, all {len(json.loads(MANIFEST.read_text())['files'])} verified "
          f"in {resolve_path(args.to)}; set data.alma_dir to that folder")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
