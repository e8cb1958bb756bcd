"""Every GPU row of the performance appendix in one prepared command (≤ 8 min on one H100/H200).

    python -m benchmarks.gpu                                   # one GPU: records in benchmarks/records/
    python -m benchmarks.gpu --only lora-mistral_7b_v02,batching
    python -m benchmarks.gpu --dry-run --records-dir /tmp/gpu  # CPU, tiny shapes, the same code path
    python -m benchmarks.gpu --smoke                           # first: every chapter on the GPU (benchmarks.gpu_smoke)

Rows, in this order (``ROWS``); each checks what it needs first and is skipped with one line
when that is missing (no CUDA, no bitsandbytes, no vLLM, no flash-attn, no ``smol`` profile):

- ``lora-<arch>`` (Llama-2-7B and Mistral-7B-v0.2 shapes, random weights from
  ``benchmarks/archs/``): bf16 LoRA r=16 on all linear layers at the a100 batch 16 × 512,
  without and with gradient checkpointing: tokens/s, MFU, peak memory (``benchmarks.lora_step``).
- ``batching``: one epoch of ALMA-length conversations (``benchmarks/alma_lengths.json``) as
  random padded, length-grouped padded and padding-free batches (``benchmarks.batching``).
- ``generation``: HF batched vs vLLM offline on the Mistral-7B shape, new tokens/s per batch
  size (``benchmarks.generation``; vLLM runs eager, so its start fits the budget).
- ``qlora``: nf4 + double quantization + checkpointing at batch 4 × 512 and the qlora
  profile's batch: peak memory and tokens/s.
- ``smol``: the ``smol`` profile's pipeline at its own size (synthesis, the four methods'
  training, evaluation), wall time per stage.

Each row runs in its own process (GPU memory is returned between rows; a crash or a hang costs
one row) under a time cap inside the 8-minute budget, and writes its records as it finishes
them; a run record (``gpu_run-<device>.json``) says what each row did and how long it took.
Every record holds the command, device, versions and, where issue 17 sets one, the goal, whether
it is met and by how much (``goals.GOALS``). ``--dry-run`` runs the same rows in this process on
the CPU at tiny shapes and never writes into ``benchmarks/records/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from benchmarks.common import HERE, RECORDS_DIR, command_line, figure, make_record, print_figures, write_record

BUDGET_S = 480.0
OPTIONAL = ("bitsandbytes", "vllm", "flash_attn")


@dataclass(frozen=True)
class Plan:
    """The sizes of one run: the GPU run at paper scale, or the dry run at tiny size."""

    device: str
    dtype: str
    step_archs: tuple[str, ...]
    arch: str  # batching, generation, QLoRA
    batch: int
    seq: int
    steps: int
    warmup: int
    batching_megabatches: int  # epoch = 4 × batch × this many conversations (full-size groups at 50)
    batching_max_length: int
    batching_ckpt: bool  # checkpointing in the batching row: a random batch of 16 pads to ~770 tokens
    qlora_batches: tuple[int, ...]
    gen_batch_sizes: tuple[int, ...]
    gen_max_new_tokens: int
    gen_rounds: int
    smol_profile: str
    smol_overrides: dict[str, Any] = field(default_factory=dict)
    caps: dict[str, float] = field(default_factory=dict)
    budget_s: float = BUDGET_S


GPU_PLAN = Plan(
    device="cuda", dtype="bfloat16", step_archs=("llama2_7b", "mistral_7b_v02"), arch="mistral_7b_v02",
    batch=16, seq=512, steps=6, warmup=3, batching_megabatches=8, batching_max_length=1024,
    batching_ckpt=True, qlora_batches=(4,), gen_batch_sizes=(1, 16, 64, 256), gen_max_new_tokens=128, gen_rounds=1,
    smol_profile="smol",
    caps={"lora-llama2_7b": 70, "lora-mistral_7b_v02": 70, "batching": 90, "generation": 170, "qlora": 130,
          "smol": 300})
DRY_PLAN = Plan(
    device="cpu", dtype="float32", step_archs=("tiny",), arch="tiny", batch=4, seq=64, steps=2, warmup=1,
    batching_megabatches=1, batching_max_length=96, batching_ckpt=True, qlora_batches=(4,), gen_batch_sizes=(1, 4),
    gen_max_new_tokens=4, gen_rounds=1, smol_profile="smol",
    smol_overrides={"data__max_train_pairs": 4, "data__max_test_pairs": 2, "eval__general_items": 1,
                    "eval__max_new_tokens": 4, "synthesis__max_new_tokens": 4, "train__max_steps": 1,
                    "eval__benchmark_limit": 1, "eval__general_max_new_tokens": 4,
                    "train__per_device_batch": 4, "train__effective_batch": 4, "train__seeds": [0]},
    caps={}, budget_s=300.0)


def rows(plan: Plan) -> list[str]:
    """The row names of a plan, in running order."""
    return [*(f"lora-{a}" for a in plan.step_archs), "batching", "generation", "qlora", "smol"]


@dataclass
class Context:
    """What a row needs besides the plan: where records go, a scratch folder shared by the rows
    (the saved random-weight model), the command line to record, and whether this is a dry run."""

    records_dir: Path
    workdir: Path
    command: str
    dry_run: bool
    alma_dir: str | None = None
    written: list[str] = field(default_factory=list)

    def write(self, record: dict[str, Any], quiet: bool = False) -> None:
        """Write ``record`` atomically (marked as a dry run or not); print its figures unless ``quiet``."""
        record["settings"]["dry_run"] = self.dry_run
        record["versions"] = {**record["versions"], **optional_versions()}
        path = write_record(record, self.records_dir)
        if path.name not in self.written:
            self.written.append(path.name)
        if not quiet:
            print_figures(record)
            print(f"wrote {path}", flush=True)


class Skip(Exception):
    """A row that cannot run here; the message is its one line."""


# --- prerequisites --------------------------------------------------------------------------------

def available() -> dict[str, bool]:
    """Which optional packages can be imported (without importing them) and whether CUDA is there."""
    import importlib.util

    import torch

    found = {name: importlib.util.find_spec(name) is not None for name in OPTIONAL}
    return {"cuda": torch.cuda.is_available(), **found}


def optional_versions() -> dict[str, str]:
    """Versions of the optional GPU packages ('-' when absent) and the CUDA torch was built for."""
    from importlib import metadata

    import torch

    out = {"torch_cuda": torch.version.cuda or "-"}
    for name in ("bitsandbytes", "vllm", "flash-attn"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "-"
    return out


def missing(row: str, plan: Plan, have: dict[str, bool]) -> str | None:
    """Why ``row`` cannot run at all here (one line), or ``None``; optional sides of a row (vLLM,
    flash-attn) are only noted by the row itself."""
    if plan.device == "cuda" and not have["cuda"]:
        return "no CUDA GPU is visible to torch (run it on one GPU, or use --dry-run on a CPU)"
    if row == "qlora" and not have["bitsandbytes"]:
        return "bitsandbytes is not installed (pip install 'radis-book[gpu]')"
    if row == "smol":
        from radis_utils.config import profile_names

        if plan.smol_profile not in profile_names():
            return f"profile {plan.smol_profile!r} is not defined in radis_utils/profiles.yaml"
    return None


# --- running rows -----------------------------------------------------------------------------------

def run_row(row: str, plan: Plan, ctx: Context) -> dict[str, Any]:
    """Run one row in this process: ``{"row", "status", "line", "seconds", "records"}``."""
    from benchmarks import gpu_rows

    start = time.perf_counter()
    why = missing(row, plan, available())
    status, line = "skipped", why
    if why is None:
        fn: Callable[[Plan, Context], str] = gpu_rows.row_function(row)
        try:
            line, status = fn(plan, ctx), "done"
        except Skip as err:
            status, line = "skipped", str(err)
        except Exception as err:  # noqa: BLE001  a failed row is reported; the other rows still run
            import traceback

            traceback.print_exc()
            status, line = "failed", f"{type(err).__name__}: {err}"[:400]
    print(f"[{row}] {status}: {line}", flush=True)
    return {"row": row, "status": status, "line": line, "seconds": round(time.perf_counter() - start, 1),
            "records": list(ctx.written)}


def run_isolated(row: str, plan: Plan, ctx: Context, cap: float) -> dict[str, Any]:
    """Run one row in a child process (its own process group) killed after ``cap`` seconds."""
    status_file = ctx.workdir / f"status-{row}.json"
    status_file.unlink(missing_ok=True)  # only this run's child may answer
    cmd = child_command(row, ctx, status_file)
    start = time.perf_counter()
    env = {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True", **os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, cwd=str(HERE.parent), env=env)
    tail: list[str] = []
    reader = threading.Thread(target=_echo, args=(proc, row, tail), daemon=True)
    reader.start()
    try:
        proc.wait(timeout=cap)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
    _kill_group(proc)
    reader.join(timeout=5)
    seconds = round(time.perf_counter() - start, 1)
    if status_file.is_file():
        result = json.loads(status_file.read_text(encoding="utf-8"))
        result["seconds"] = seconds
        return result
    line = (f"stopped at its {cap:.0f} s cap" if timed_out
            else f"the row's process exited with code {proc.returncode}: {tail[-1] if tail else 'no output'}")
    print(f"[{row}] {'timed out' if timed_out else 'failed'}: {line}", flush=True)
    done = sorted(p.name for p in ctx.records_dir.glob("*.json") if p.stat().st_mtime >= time.time() - seconds)
    return {"row": row, "status": "timed out" if timed_out else "failed", "line": line, "seconds": seconds,
            "records": done}


def child_command(row: str, ctx: Context, status_file: Path) -> list[str]:
    """The command line of the child process that runs ``row`` and writes its status to ``status_file``."""
    return [sys.executable, "-m", "benchmarks.gpu", "--row", row, "--records-dir", str(ctx.records_dir),
            "--workdir", str(ctx.workdir), "--status-file", str(status_file), "--record-command", ctx.command,
            *(["--dry-run"] if ctx.dry_run else []), *(["--alma-dir", ctx.alma_dir] if ctx.alma_dir else [])]


def _echo(proc: subprocess.Popen, row: str, tail: list[str]) -> None:
    for line in proc.stdout or ():
        print(f"  {row} | {line}", end="", flush=True)
        tail[:] = [*tail[-19:], line.rstrip()]


def _kill_group(proc: subprocess.Popen) -> None:
    """End the row's process and whatever it started (vLLM's engine processes hold GPU memory)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def run_all(plan: Plan, ctx: Context, only: Sequence[str] | None, isolate: bool) -> dict[str, Any]:
    """Every row (or ``only`` these) within the plan's budget, then the run record."""
    start = time.perf_counter()
    have = available()
    print("prerequisites: " + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in have.items()), flush=True)
    results = []
    for row in rows(plan):
        if only and row not in only:
            continue
        left = plan.budget_s - (time.perf_counter() - start)
        why = missing(row, plan, have)
        if why is None and left < 20:
            why = f"the {plan.budget_s:.0f} s budget is spent ({left:.0f} s left)"
        if why is not None:
            print(f"[{row}] skipped: {why}", flush=True)
            results.append({"row": row, "status": "skipped", "line": why, "seconds": 0.0, "records": []})
            continue
        cap = min(plan.caps.get(row, plan.budget_s), left - 5)
        ctx.written = []
        results.append(run_isolated(row, plan, ctx, cap) if isolate else run_row(row, plan, ctx))
    total = round(time.perf_counter() - start, 1)
    return run_record(plan, ctx, results, total, have)


def run_record(plan: Plan, ctx: Context, results: list[dict[str, Any]], total: float,
               have: dict[str, bool]) -> dict[str, Any]:
    """The record of the whole run: one figure per row (its wall time, or why it did not run)."""
    from benchmarks.goals import check

    figures = [figure(f"{r['row']}_seconds", f"row {r['row']}: wall time ({r['status']})",
                      r["seconds"] if r["status"] == "done" else None, "s",
                      "" if r["status"] == "done" else f"not measured — {r['status']}: {r['line']}")
               for r in results]
    figures.append(figure("total_seconds", "the whole command: wall time", total, "s"))
    if all(r["status"] == "skipped" for r in results) and ctx.records_dir.resolve() == RECORDS_DIR.resolve():
        print("nothing ran, so no run record goes into benchmarks/records/ (pass --records-dir to keep one)")
        return {"rows": results}
    record = make_record("gpu_run", "gpu_run", ctx.command, figures,
                         {"plan": json.loads(json.dumps(dataclasses.asdict(plan))), "available": have},
                         rows=results, goal=check("gpu_budget", total, plan.budget_s))
    ctx.write(record)
    return record


# --- command line ---------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true",
                        help="CPU, tiny shapes, about a minute (never into benchmarks/records/)")
    parser.add_argument("--records-dir", default=None, help="default: benchmarks/records/ (dry run: a new temp folder)")
    parser.add_argument("--only", default=None, help="comma-separated rows: " + ", ".join(rows(GPU_PLAN)))
    parser.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                        help="each row in its own process (default: yes, except with --dry-run)")
    parser.add_argument("--budget-s", type=float, default=None, help=f"default {BUDGET_S:.0f} s")
    parser.add_argument("--alma-dir", default=None, help="ALMA's data for the smol row (default: the profile's)")
    parser.add_argument("--smoke", action="store_true",
                        help="every chapter at the tiny GPU profiles, checked to have run on the GPU "
                             "(≤ 5 min; benchmarks.gpu_smoke); with --dry-run on the CPU")
    parser.add_argument("--row", default=None, help=argparse.SUPPRESS)  # a child process runs one row
    parser.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--status-file", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--record-command", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    plan = DRY_PLAN if args.dry_run else GPU_PLAN
    if args.budget_s:
        plan = dataclasses.replace(plan, budget_s=args.budget_s)
    only = [r.strip() for r in args.only.split(",")] if args.only else None
    unknown = sorted(set(only or ()) - set(rows(plan)))
    if unknown:
        parser.error(f"--only: unknown rows {', '.join(unknown)}; known: {', '.join(rows(plan))}")
    records_dir = Path(args.records_dir) if args.records_dir else (
        Path(tempfile.mkdtemp(prefix="gpu-dry-run-")) if args.dry_run else RECORDS_DIR)
    if args.dry_run and records_dir.resolve() == RECORDS_DIR.resolve():
        parser.error("--dry-run never writes into benchmarks/records/: pass another --records-dir")
    from radis_utils.runbook import kernel_environment
    from radis_utils.runtime import QUIET_ENV

    # no progress bars in the log; nothing is downloadable on the GPU machine: fail at once, not on a timeout
    quiet_offline = {QUIET_ENV: "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with kernel_environment(quiet_offline):  # the rows' processes inherit it; restored afterwards
        if args.smoke:
            from benchmarks import gpu_smoke

            budget = args.budget_s or (gpu_smoke.DRY_BUDGET_S if args.dry_run else gpu_smoke.BUDGET_S)
            return gpu_smoke.run_smoke(args.dry_run, records_dir, command_line("benchmarks.gpu", argv), budget)
        return _run(args, plan, only, records_dir, argv)


def _run(args: argparse.Namespace, plan: Plan, only: list[str] | None, records_dir: Path,
         argv: list[str]) -> dict[str, Any]:
    from radis_utils.config import load_profile
    from radis_utils.runtime import apply_runtime

    apply_runtime(load_profile("ci" if args.dry_run else "a100"))  # seeds, quiet loading (ci: 1 CPU thread)
    command = args.record_command or command_line("benchmarks.gpu", argv)
    if args.row:  # a child: one row, its status for the parent
        ctx = Context(records_dir, Path(args.workdir), command, args.dry_run, args.alma_dir)
        result = run_row(args.row, plan, ctx)
        if args.status_file:
            from radis_utils.records import write_json

            write_json(Path(args.status_file), result)
        return result
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as tmp:
        ctx = Context(records_dir, Path(tmp), command, args.dry_run, args.alma_dir)
        isolate = (not args.dry_run) if args.isolate is None else args.isolate
        record = run_all(plan, ctx, only, isolate)
    print(f"records in {records_dir}")
    return record


if __name__ == "__main__":  # run the importable module's main, so its classes are the ones the rows use
    from benchmarks.gpu import main as _main

    sys.exit(0 if _main().get("ok", True) else 1)  # a failed smoke fails the command
