"""The GPU smoke: every chapter at the tiny GPU profiles, then proof that each stage ran on the GPU.

    python -m benchmarks.gpu --smoke              # one GPU, ≤ 5 min: benchmarks/records/gpu_smoke-<device>.json
    python -m benchmarks.gpu --smoke --dry-run    # the same on the CPU, into a temp folder (the tests run it)

For each profile of ``PROFILES`` (``a100-tiny``; ``qlora-tiny`` where bitsandbytes is importable)
it empties ``runs/<profile>/`` (that profile's own toy outputs), executes every chapter headless
through the book job's ``runbook.execute_chapter`` into a scratch folder, with ``RADIS_DEVICE``
set to ``cuda`` (``cpu`` in a dry run: the device policy refuses CUDA that is not there), and
then reads what the stages wrote (``STAGES``): every file must exist, say that it ran on that
device, and training must report a peak memory above zero (on a GPU: CUDA memory allocated by
torch). Nothing is downloaded: the backbones are ``random:benchmarks/archs/tiny*.json``, built on
the spot, and the data are the files the profiles point at (ALMA's and the benchmarks', under
``../shared/data`` by default). The record lists
every chapter's time and every check; the command exits 1 when one of them failed.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from benchmarks.common import HERE, figure, make_record, print_figures, write_record

PROFILES = ("a100-tiny", "qlora-tiny")
BUDGET_S = 300.0
DRY_BUDGET_S = 900.0  # two CPU cores: each chapter's kernel start alone takes seconds
CELL_TIMEOUT_S = 240
#: What each stage writes under ``runs/<profile>/`` (globs), by the chapter that writes it.
STAGES: dict[str, tuple[str, ...]] = {
    "02 observation": ("results/observation.json",),
    "03 synthesis": ("synthesis/*/rationale.jsonl", "synthesis/*/seqkd.jsonl", "synthesis/*/sdft.jsonl"),
    "05 training": tuple(f"adapters/{m}-seed*/summary.json" for m in ("vanilla", "seqkd", "sdft", "radis")),
    "06 evaluation": ("results/backbone.json",
                      *(f"results/{m}-seed*.json" for m in ("vanilla", "seqkd", "sdft", "radis"))),
    "08 gradients": ("results/gradients-seed*.json",),
}


@dataclass(frozen=True)
class Check:
    """One file a stage wrote: the devices it names and whether they (and its memory) are right."""

    stage: str
    file: str
    devices: tuple[str, ...]
    ok: bool
    why: str = ""


def profile_missing(profile: str) -> str | None:
    """Why ``profile`` cannot run here (one line), or ``None``."""
    from radis_utils.config import load_profile

    cfg = load_profile(profile)
    if cfg.model.quantization and importlib.util.find_spec("bitsandbytes") is None:
        return f"{profile}: model.quantization={cfg.model.quantization} needs bitsandbytes, which is not installed"
    return None


def file_devices(path: Path) -> tuple[list[str], float | None]:
    """The devices a stage's file names (one per record of a ``.jsonl``) and its peak memory (GiB, if any)."""
    from radis_utils.records import read_json, read_records

    if path.suffix == ".jsonl":
        return [str(r.get("device", "-")) for r in read_records(path)], None
    found = read_json(path)
    return [str(found.get("device", "-"))], found.get("peak_memory_gib")


def stage_checks(runs_dir: Path, expect: str) -> list[Check]:
    """A check per file of every stage in ``STAGES`` (a failed one where a stage wrote nothing)."""
    checks = []
    for stage, patterns in STAGES.items():
        files = []
        for pattern in patterns:
            found = sorted(runs_dir.glob(pattern))
            if not found:
                checks.append(Check(stage, pattern, (), False, f"no file matches runs/<profile>/{pattern}"))
            files += found
        for path in files:
            devices, peak = file_devices(path)
            wrong = sorted({d for d in devices if not d.startswith(expect)})
            why = f"ran on {', '.join(wrong)}, not {expect}" if wrong else ""
            if not why and stage.startswith("05") and not (peak or 0) > 0:
                why = f"peak_memory_gib is {peak!r}: no memory was measured"
            checks.append(Check(stage, str(path.relative_to(runs_dir)), tuple(sorted(set(devices))), not why, why))
    return checks


def run_profile(profile: str, root: Path, out_dir: Path, expect: str, deadline: float) -> dict[str, Any]:
    """Every chapter of ``profile`` (until ``deadline``), then its stage checks."""
    from radis_utils import runbook
    from radis_utils.config import load_profile

    cfg = load_profile(profile)
    shutil.rmtree(cfg.runs_dir, ignore_errors=True)  # the toy profile's own outputs: start from nothing
    chapters = []
    for notebook in runbook.chapters(root / "notebooks"):
        left = deadline - time.perf_counter()
        if left < 10:
            chapters.append({"chapter": notebook.name, "ok": False, "seconds": 0.0,
                             "error": "not run: the smoke's time budget is spent"})
            continue
        run = runbook.execute_chapter(notebook, out_dir / profile, profile, cwd=root, heartbeat_s=0,
                                      cell_timeout_s=int(min(CELL_TIMEOUT_S, left)))
        print(f"[{profile}] {'ok' if run.ok else 'FAILED'} {run.name} {run.seconds:.1f} s"
              + (f"\n{run.error}" if run.error else ""), flush=True)
        chapters.append({"chapter": run.name, "ok": run.ok, "seconds": round(run.seconds, 1), "error": run.error})
    checks = stage_checks(cfg.runs_dir, expect)
    for c in checks:
        print(f"[{profile}] {'ok' if c.ok else 'FAILED'} {c.stage}: {c.file} ({', '.join(c.devices) or '-'})"
              + (f": {c.why}" if c.why else ""), flush=True)
    return {"profile": profile, "status": "done", "chapters": chapters,
            "checks": [{**c.__dict__, "devices": list(c.devices)} for c in checks],
            "ok": all(c["ok"] for c in chapters) and all(c.ok for c in checks)}


def run_smoke(dry_run: bool, records_dir: Path, command: str, budget_s: float = BUDGET_S,
              profiles: Sequence[str] = PROFILES) -> dict[str, Any]:
    """The smoke over ``profiles``; writes its record into ``records_dir`` and returns it."""
    import torch

    from radis_utils.runbook import kernel_environment
    from radis_utils.runtime import DEVICE_ENV

    expect = "cpu" if dry_run else "cuda"
    if expect == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--smoke needs a CUDA GPU visible to torch (or --dry-run on a CPU)")
    start = time.perf_counter()
    deadline = start + budget_s
    results = []
    with tempfile.TemporaryDirectory(prefix="gpu-smoke-") as tmp, kernel_environment({DEVICE_ENV: expect}):
        for profile in profiles:
            why = profile_missing(profile)
            if why:
                print(f"[{profile}] skipped: {why}", flush=True)
                results.append({"profile": profile, "status": "skipped", "line": why, "ok": True})
                continue
            results.append(run_profile(profile, HERE.parent, Path(tmp), expect, deadline))
    total = round(time.perf_counter() - start, 1)
    ran = [r for r in results if r["status"] == "done"]
    figures = [figure(f"{r['profile']}_seconds", f"{r['profile']}: every chapter and its checks",
                      sum(c["seconds"] for c in r["chapters"]), "s") for r in ran]
    figures += [figure("total_seconds", "the whole smoke: wall time", total, "s"),
                figure("checks_failed", "chapters and stage files that failed their check",
                       sum(not c["ok"] for r in ran for c in [*r["chapters"], *r["checks"]]))]
    ok = bool(ran) and all(r["ok"] for r in results)
    record = make_record("gpu_smoke", "gpu_smoke", command, figures,
                         {"dry_run": dry_run, "expected_device": expect, "budget_s": budget_s,
                          "torch_cuda": torch.version.cuda or "-", "threads": os.environ.get("OMP_NUM_THREADS", "-")},
                         profiles=results, ok=ok)
    path = write_record(record, records_dir)
    print_figures(record)
    print(f"{'PASSED' if ok else 'FAILED'}: wrote {path}", flush=True)
    return record
