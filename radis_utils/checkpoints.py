"""Exact and checked resume for ``train``: a seeded batch order and a ledger in every checkpoint.

A run killed at a checkpoint and started again must end where an uninterrupted run ends:

- ``SeededLengthGroupedSampler`` draws Transformers' length-grouped order from a generator
  seeded by ``(seed, epoch)``, so a resumed epoch replays the order of the uninterrupted one
  (the stock sampler draws from the global generator, whose state differs after a resume).
- ``Ledger`` writes ``radis_run.json`` into each checkpoint: the settings the run was started
  with (``train.train_key``) and, per session, its steps, seconds, tokens and loss sums. A resume
  refuses a checkpoint of other settings (``resume_point``); the finished run's summary adds the
  sessions up (``merge_sessions``), so it covers every step, not only the last session's.
- ``KeepMidpoint`` saves one more checkpoint at half the run's steps and keeps a copy in
  ``<adapter>/midpoint/`` (the Trainer rotates ``checkpoints/``), for fig. 4 at mid-training.

The sampler and the two callbacks subclass Transformers' trainer classes, so they live in
``radis_utils.trainer`` (imported only when a run trains); this module keeps the plain reading
and checking of checkpoints, which every chapter can import without loading the trainer stack.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from .records import settings_diff

LEDGER = "radis_run.json"
MIDPOINT = "midpoint"  # <adapter>/midpoint/checkpoint-N: the run's state at half its steps
MARKER = "trainer_state.json"  # written last by the Trainer: a checkpoint holding it is complete


class ResumeError(ValueError):
    """A checkpoint that cannot be resumed as asked (the message names it and the fix)."""


def session_entry(first_step: int, last_step: int, seconds: float, counters: Mapping[str, float]) -> dict[str, Any]:
    """One session's line of the ledger: steps ``first_step+1 .. last_step`` and what they cost."""
    return {"steps": [first_step, last_step], "seconds": round(seconds, 3),
            "ended": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **{k: float(v) for k, v in counters.items()}}


def midpoint_checkpoint(adapter_dir: str | Path) -> Path | None:
    """The adapter's kept ``midpoint/checkpoint-N`` (with its optimizer state), or ``None``."""
    return last_checkpoint(Path(adapter_dir) / MIDPOINT, "optimizer.pt")


def step_of(checkpoint: Path | None) -> int:
    """``N`` of ``checkpoint-N`` (0 for none)."""
    return int(checkpoint.name.split("-")[-1]) if checkpoint else 0


def last_checkpoint(folder: Path, marker: str = MARKER) -> Path | None:
    """The latest ``checkpoint-N`` in ``folder`` that holds ``marker`` (a complete one), or ``None``."""
    ckpts = [p for p in folder.glob("checkpoint-*") if (p / marker).is_file()]
    return max(ckpts, key=step_of) if ckpts else None


def set_aside_unledgered(folder: Path) -> list[Path]:
    """Rename every ``checkpoint-N`` of ``folder`` that lacks a ledger (a kill between the Trainer's
    files and ``LEDGER``; its settings cannot be checked) to ``.unledgered-checkpoint-N``, with a
    warning naming it: the run starts from the beginning and nothing is deleted."""
    import warnings

    moved = []
    for ckpt in sorted(folder.glob("checkpoint-*"), key=step_of):
        if not (ckpt / LEDGER).is_file():
            aside = ckpt.with_name(f".unledgered-{ckpt.name}")
            ckpt.rename(aside)
            moved.append(aside)
            warnings.warn(f"{ckpt}: no {LEDGER} (the run was stopped while saving it), so its settings cannot "
                          f"be checked; set aside as {aside.name} and training starts from the beginning",
                          stacklevel=2)
    return moved


def resume_point(folder: Path, key: Mapping[str, Any]) -> tuple[Path | None, list[dict]]:
    """The latest complete checkpoint with a ledger, and its sessions; refuses other settings.
    Checkpoints without a ledger are set aside first (``set_aside_unledgered``).

    ``ResumeError`` names the ledger file, the settings that differ and the fix.
    """
    set_aside_unledgered(folder)  # the ledger is written after the Trainer's own files
    last = last_checkpoint(folder, LEDGER)
    if last is None:
        return None, []
    path = last / LEDGER
    try:
        ledger = json.loads(path.read_text(encoding="utf-8"))
        stored, sessions = ledger["key"], list(ledger["sessions"])
    except (ValueError, KeyError, TypeError) as err:
        raise ResumeError(f"{path}: unreadable ledger ({err}); delete {folder} to train from the start") from None
    diff = settings_diff(stored, json.loads(json.dumps(dict(key))))
    if diff:
        raise ResumeError(f"{path}: this checkpoint was trained with other settings ({'; '.join(diff[:6])}"
                          f"{' ...' if len(diff) > 6 else ''}); resume with the settings it was started with, "
                          f"or delete {folder} to train from the start with the new ones")
    return last, sessions


def merge_sessions(sessions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Whole-run totals of the ledger: loss over all steps, tokens, seconds (``None``, never 0, if unknown)."""
    total = {k: sum(float(s.get(k, 0)) for s in sessions)
             for k in ("seconds", "real_tokens", "processed_tokens", "loss_sum", "micro_batches")}
    seconds, batches = total["seconds"], total["micro_batches"]
    return {
        "train_seconds": round(seconds, 1) if seconds else None,
        "train_loss": round(total["loss_sum"] / batches, 4) if batches else None,
        "tokens_per_s": round(total["real_tokens"] / seconds, 1) if seconds and total["real_tokens"] else None,
        "token_efficiency": (round(total["real_tokens"] / total["processed_tokens"], 4)
                             if total["processed_tokens"] else None),
        "real_tokens": int(total["real_tokens"]),
        "sessions": [dict(s) for s in sessions],
    }
