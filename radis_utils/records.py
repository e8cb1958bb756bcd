"""Synthesis records: one schema for every target, an append-only JSON Lines store, export.

One record per example (``runs/<profile>/synthesis/<model>/<kind>.jsonl``)::

    id, direction, instruction, source, reference   the example (``data.Example``), id is stable
    target_kind   rationale | seqkd | sdft
    text          the generated target after post-processing
    model         backbone name or path
    decoding      {do_sample, temperature, top_p, max_new_tokens, seed, engine, ...}
    created       ISO time (UTC)
    flags         e.g. ["empty_rationale"], ["sdft_fallback"], ["truncated"]
    key           ``content_key`` of (instruction, source, reference, model, decoding): the
                  example and settings the record answers (absent in files from before it)

Records are appended a chunk at a time with one write + flush + fsync, so a crash can only tear
the *last* line. ``repair`` (run by every synthesis run) cuts such a line away, with a warning;
a bad line anywhere else is an error naming file and line. ``read_records`` reads strictly.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

KINDS: tuple[str, ...] = ("rationale", "seqkd", "sdft")
FLAGS: tuple[str, ...] = ("empty_rationale", "empty_output", "sdft_fallback", "truncated")
DECODING_KEYS: tuple[str, ...] = ("do_sample", "temperature", "top_p", "max_new_tokens", "seed", "engine")
FIELDS: dict[str, type] = {
    "id": str, "direction": str, "instruction": str, "source": str, "reference": str,
    "target_kind": str, "text": str, "model": str, "decoding": dict, "created": str, "flags": list,
}
#: Fields a record may lack (files written before them): checked when present.
OPTIONAL_FIELDS: dict[str, type] = {"device": str}  # where the engine ran: "cuda:0 (...)", "cpu (...)"


#: What a record answers: its ``key`` is the hash of these fields.
KEY_FIELDS: tuple[str, ...] = ("instruction", "source", "reference", "model", "decoding")


class RecordError(ValueError):
    """A synthesis file or record that is malformed; the message names file, line and field."""


class RepairWarning(UserWarning):
    """A torn last line (from a crash mid-write) was cut away from a synthesis file."""


def check_record(record: Any, where: str) -> dict[str, Any]:
    """``record`` if it has every field with the right type; else ``RecordError`` at ``where``."""
    if not isinstance(record, dict):
        raise RecordError(f"{where}: expected a JSON object, got {type(record).__name__}")
    for name, kind in FIELDS.items():
        if name not in record:
            raise RecordError(f"{where}: field '{name}' is missing")
        if not isinstance(record[name], kind):
            raise RecordError(f"{where}: field '{name}' must be {kind.__name__}, got {record[name]!r:.60}")
    for name, kind in OPTIONAL_FIELDS.items():
        if name in record and not isinstance(record[name], kind):
            raise RecordError(f"{where}: field '{name}' must be {kind.__name__}, got {record[name]!r:.60}")
    if record["target_kind"] not in KINDS:
        raise RecordError(f"{where}: field 'target_kind' is {record['target_kind']!r}; "
                          f"valid: {', '.join(KINDS)}")
    missing = [k for k in DECODING_KEYS if k not in record["decoding"]]
    if missing:
        raise RecordError(f"{where}: field 'decoding' lacks {', '.join(missing)}")
    if not record["id"]:
        raise RecordError(f"{where}: field 'id' is empty")
    if "key" in record and record["key"] != content_key(record):
        raise RecordError(f"{where}: field 'key' does not match the record's "
                          f"{', '.join(KEY_FIELDS)} (was the line edited by hand?)")
    return record


def content_key(fields: Mapping[str, Any]) -> str:
    """16-hex-digit hash of a record's ``KEY_FIELDS``: which example, model and decoding it answers."""
    blob = json.dumps({k: fields[k] for k in KEY_FIELDS}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def settings_diff(stored: Any, wanted: Any, prefix: str = "") -> list[str]:
    """``["train.learning_rate: 0.004 here, 0.001 asked", ...]``: where two nested settings differ."""
    if isinstance(stored, Mapping) and isinstance(wanted, Mapping):
        out = []
        for k in sorted(set(stored) | set(wanted), key=str):
            a, b = stored.get(k, "<absent>"), wanted.get(k, "<absent>")
            out += settings_diff(a, b, f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if stored == wanted else [f"{prefix or 'value'}: {stored!r:.80} stored, {wanted!r:.80} asked"]


def _scan(path: Path) -> tuple[list[dict[str, Any]], int, tuple[int, str] | None]:
    """Records of complete good lines, the byte offset after them, and the last line's problem.

    A bad line that is not the last one raises ``RecordError`` (file:line). The returned problem
    ``(line, why)`` is for the last line only: torn (no newline) or not a valid record.
    """
    data = path.read_bytes()
    records: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    offset, line_no = 0, 0
    while offset < len(data):
        line_no += 1
        end = data.find(b"\n", offset)
        torn = end < 0
        raw = data[offset:] if torn else data[offset:end]
        where = f"{path}:{line_no}"
        try:
            if torn:
                raise RecordError(f"{where}: line has no newline (a write interrupted by a crash)")
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                raise RecordError(f"{where}: not a JSON line ({err})") from None
            check_record(record, where)
            if record["id"] in seen:
                raise RecordError(f"{where}: field 'id' {record['id']!r} repeats line {seen[record['id']]}")
        except RecordError as err:
            if torn or end + 1 == len(data):
                return records, offset, (line_no, str(err))
            raise RecordError(f"{err}. Only the last line may be torn by a crash; this file is "
                              "damaged: fix or delete that line, or start a fresh file") from None
        seen[record["id"]] = line_no
        records.append(record)
        offset = end + 1
    return records, offset, None


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a synthesis file, validated; any bad line is a ``RecordError`` (file:line)."""
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"{path}: file not found")
    records, _, problem = _scan(path)
    if problem:
        raise RecordError(f"{problem[1]}. If a crash tore this last line, re-run the synthesis "
                          "(it repairs and resumes) or call records.repair(path)")
    return records


def repair(path: str | Path) -> list[dict[str, Any]]:
    """Records of ``path`` after cutting away a torn/corrupt *last* line (warns when it does)."""
    path = Path(path)
    if not path.exists():
        return []
    records, good_end, problem = _scan(path)
    if problem:
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.truncate(good_end)
            f.flush()
            os.fsync(f.fileno())
        warnings.warn(f"{problem[1]}; truncated it away ({size - good_end} bytes; kept "
                      f"{len(records)} records, the missing ones are generated again)",
                      RepairWarning, stacklevel=2)
    return records


def append_records(path: str | Path, records: Sequence[dict[str, Any]]) -> None:
    """Append ``records`` as JSON lines with a single write, then flush and fsync."""
    if not records:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    new = not path.exists()
    with open(path, "ab", buffering=0) as f:
        view = memoryview(blob)
        while view:
            view = view[f.write(view):]
        os.fsync(f.fileno())
    if new and hasattr(os, "O_DIRECTORY"):  # make the new file's directory entry durable too
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def without_created(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records minus their ``created`` time, sorted by id: what two equal runs share."""
    return sorted(({k: v for k, v in r.items() if k != "created"} for r in records), key=lambda r: r["id"])


# --- one writer per store -------------------------------------------------------------------

class LockError(RuntimeError):
    """Another process is writing the same store (the message names it: pid, host, command)."""


@contextmanager
def exclusive(path: str | Path, what: str, wait: bool = False) -> Iterator[Path]:
    """Hold ``<path>.lock`` (``filelock``: flock on POSIX, msvcrt on Windows, its soft lock on a
    filesystem without flock) while writing ``path``; a second process stops at once with
    ``LockError`` naming the holder (``<path>.lock.holder``), or with ``wait`` blocks until it is done.

    The kernel drops a native lock when its holder exits, even on SIGKILL: a leftover file is harmless.
    """
    from filelock import FileLock, Timeout

    lock, holder = Path(f"{path}.lock"), Path(f"{path}.lock.holder")
    lock.parent.mkdir(parents=True, exist_ok=True)
    guard = FileLock(str(lock), timeout=0)
    try:
        guard.acquire()
    except NotImplementedError:  # filelock < 4 on a filesystem without flock
        raise LockError(f"{path}: cannot lock {lock}: its filesystem does not support flock (e.g. Lustre or "
                        "GPFS mounted without it): set runtime.runs_dir to a local disk, mount with flock, "
                        "or install filelock>=4, which falls back to a lock file of its own") from None
    except Timeout:
        name = holder.read_text(encoding="utf-8", errors="replace").strip() if holder.is_file() else ""
        message = (f"{path}: {what} is being written by another process "
                   f"({name or 'unknown (it has not written its name yet)'})")
        if not wait:
            raise LockError(f"{message}; wait for it to finish or stop it (the lock {lock} "
                            "frees itself when that process ends)") from None
        print(f"{message}; waiting for it to finish", file=sys.stderr, flush=True)
        guard.acquire(timeout=-1)
    try:
        write_text(holder, f"pid {os.getpid()} on {socket.gethostname()}: {_command_line()[:300]}\n")
        yield lock
    finally:
        holder.unlink(missing_ok=True)
        guard.release()


def _command_line() -> str:
    """This process's command line (``/proc`` on Linux: it includes ``python -c`` code), else argv."""
    try:
        return Path("/proc/self/cmdline").read_bytes().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return " ".join([sys.executable, *sys.argv])


# --- training data ------------------------------------------------------------------------

def join_rationale(reference: str, rationale: str) -> str:
    """``y`` followed by ``r`` as the model wrote it (paper eq. 1: ``r`` continues ``y``).

    The continuation prompt ends with ``reference.strip()``; a rationale that starts with
    whitespace (a newline, or a leading space kept by the detokenizer) follows it directly,
    otherwise one space joins them (the organism's and SentencePiece's decoded continuations).
    """
    reference = reference.strip()
    if not rationale.strip():
        return reference
    return reference + (rationale if rationale[:1].isspace() else " " + rationale)


def training_outputs(record: dict[str, Any], own: Callable[[str], str] = str.strip) -> list[str]:
    """The assistant turns the trainer learns from one record: ``y + r`` for a rationale, the rewrite
    for SDFT, and for Seq-KD both ``y`` and ``y' = own(text)`` (eq. 5; an empty ``y'`` is dropped)."""
    if record["target_kind"] == "rationale":
        return [join_rationale(record["reference"], record["text"])]
    if record["target_kind"] == "seqkd":
        return [t for t in (record["reference"].strip(), own(record["text"])) if t]
    return [record["text"]]


#: LLaMA-Factory alpaca column mapping (``dataset_info.json``).
ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output"}


def export_llama_factory(records: Sequence[dict[str, Any]], out_dir: str | Path, name: str,
                         template: str | None = None, backbone: str = "", note: str = "",
                         own: Callable[[str], str] = str.strip, system: str | None = None) -> Path:
    """Write ``<name>.json`` (alpaca: instruction/input/output) and register it in ``dataset_info.json``.

    ``instruction`` is the user turn ``x`` (instruction line + source), ``input`` is empty,
    ``output`` each of ``training_outputs`` (Seq-KD: two rows, ``y`` and ``y'`` cut by ``own``),
    and ``system`` (a column only when given) the system turn the backbone's template writes by
    default, which LLaMA-Factory's template would otherwise replace with its own, so the file holds
    exactly what the trainer trains on. An existing ``dataset_info.json`` keeps its other entries.
    ``<name>.README.md`` beside them says how to train on it: LLaMA-Factory's ``template``
    for ``backbone``, or, when ``template`` is ``None``, that there is none (``note`` says why).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    extra = {"system": system} if system else {}
    rows = [{"instruction": r["instruction"], "input": "", "output": out, **extra}
            for r in records for out in training_outputs(r, own)]
    data_file = out / f"{name}.json"
    write_json(data_file, rows)
    info_file = out / "dataset_info.json"
    info = read_json(info_file) if info_file.is_file() else {}
    info[name] = {"file_name": data_file.name, "columns": {**ALPACA_COLUMNS, **({"system": "system"} if system else {})}}
    write_json(info_file, info)
    readme = _llama_factory_readme(name, len(rows), template, backbone, note)
    if system:
        readme += (f"\nEvery row carries the system turn that the backbone's chat template writes when a chat "
                   f"has none, and that the project trained with, in the `system` column: \"{system}\".\n")
    write_text(out / f"{name}.README.md", readme)
    return data_file


def _llama_factory_readme(name: str, rows: int, template: str | None, backbone: str, note: str) -> str:
    """The README beside an export: what it holds and the training-config lines it needs."""
    head = (f"# {name}: RaDis training data for LLaMA-Factory\n\n"
            f"{rows} examples in the alpaca format (`{name}.json`, registered in `dataset_info.json`): "
            "`instruction` is the user turn, `output` the assistant turn to learn (for rationale records "
            "the reference translation, then the model's own rationale).\n\n")
    if template is None:
        return head + (f"There is no LLaMA-Factory template for this backbone ({backbone or 'unknown'}). "
                       f"{note}\n")
    return head + (f"Backbone: {backbone}. Train with its chat format, LLaMA-Factory's `{template}` "
                   "template, e.g. in the training YAML:\n\n"
                   f"```yaml\ndataset: {name}\ndataset_dir: <this folder>\ntemplate: {template}\n```\n")


def read_json(path: str | Path) -> Any:
    """The JSON file at ``path``; a file that is not UTF-8 or not JSON (truncated by a crash, edited
    by hand) raises ``RecordError`` naming the file, and the line and column where it breaks."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[:err.start].count(b"\n") + 1
        raise RecordError(f"{path}:{line}: not UTF-8 text (byte {err.start}); restore or delete the file") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise RecordError(f"{path}:{err.lineno}:{err.colno}: not valid JSON ({err.msg}); the file may be "
                          f"truncated: restore it, or delete it to redo the stage that wrote it") from None


def write_json(path: Path, data: Any, indent: int = 2) -> None:
    """Write ``data`` as JSON atomically (a temporary file, then a rename): a crash leaves the old
    file or the new one, never half of one. Creates the parent folder."""
    write_text(path, json.dumps(data, ensure_ascii=False, indent=indent) + "\n")


def write_jsonl(path: Path, rows: Sequence[Any]) -> None:
    """Write ``rows`` as JSON Lines atomically (as ``write_json``)."""
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) atomically, as ``write_json`` does; for JSON Lines and READMEs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
