"""How far the organism's numbers move from one CPU to another, measured on one machine.

The organism is trained from scratch, so a last-bit difference in one kernel grows over
thousands of steps into a different model: the same code and settings give other numbers on
another CPU (PyTorch picks its vectorised kernels by the CPU's instruction set, and MKL its
GEMM branch by vendor and instruction set). Making every CPU compute the same bits would need
MKL's vendor-neutral branch (``MKL_CBWR=COMPATIBLE``), which made an organism training step
2.2-2.6x slower here (``benchmarks.organism_step``, this machine), so instead the spread is
measured and carried into the book's intervals and the calibration test's tolerance.

``python -m radis_utils.machines --profile ci`` builds world 0 (``calibration.world_config``)
once per entry of ``KERNEL_VARIANTS``, each in a fresh process with its environment (the
libraries read it when they first dispatch), and writes ``calibration/<profile>-kernels.json``:
every build's summary (as ``calibration.world_summary`` gives it), its CPU and its
``kernel_fingerprint``, beside the calibration record's own world 0 (built on another machine).
``radis_utils.claims.machine_margins`` turns it into the spread of every graded value. The
``native`` build is the book's own ``runs/<profile>/`` (cached when the book was built).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from . import calibration, verdicts
from .config import Config, load_profile, resolve_path
from .records import read_json, write_json
from .runtime import cpu_name, versions

#: Kernel settings that stand in for other CPUs on this one: ``native`` is what this CPU picks;
#: ``portable`` is PyTorch's non-vectorised kernels and MKL's vendor-neutral GEMM branch.
KERNEL_VARIANTS: dict[str, dict[str, str]] = {
    "native": {},
    "portable": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"},
}


def variant_config(profile: str, variant: str) -> Config:
    """World 0 of ``profile`` under one variant: ``native`` is the book's own run folder, another
    variant writes under ``runs/calibration/kernels-<variant>/``."""
    base = calibration.world_config(profile, 0)
    if variant == "native":
        return base
    return load_profile(profile, runtime__runs_dir=f"{base.runtime.runs_dir}/calibration/kernels-{variant}")


def record_path(profile: str) -> Path:
    """``calibration/<profile>-kernels.json`` in the checkout."""
    return resolve_path(f"calibration/{profile}-kernels.json")


def kernel_fingerprint() -> str:
    """A hash of the bits a few of the organism's kernels compute in this process (GEMMs of three
    shapes, softmax, log-softmax, RMS norm, SiLU, an embedding gradient and an AdamW step, one
    thread): two processes with the same fingerprint build the same organism, bit for bit."""
    import hashlib

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(64, 96, generator=g)
        w = torch.nn.Parameter(torch.randn(96, 160, generator=g))
        emb = torch.nn.Embedding(50, 96)
        with torch.no_grad():
            emb.weight.copy_(torch.randn(50, 96, generator=g))
        h = x + emb(torch.arange(64) % 50)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)
        y = torch.nn.functional.silu(h @ w)
        loss = torch.log_softmax(y, -1).mean() + torch.softmax(y.t() @ y, -1).sum() * 1e-3
        loss.backward()
        opt = torch.optim.AdamW([w, emb.weight], lr=1e-3)
        opt.step()
        bits = [t.detach().contiguous().view(torch.int32) for t in (y, loss, w, emb.weight)]
        return hashlib.sha256(b"".join(repr(b.flatten().tolist()).encode() for b in bits)).hexdigest()[:16]
    finally:
        torch.set_num_threads(threads)


def read_record(profile: str, path: Path | None = None) -> dict[str, Any] | None:
    """The committed record of ``profile`` (``None`` without one)."""
    path = path or record_path(profile)
    return read_json(path) if path.is_file() else None


def fingerprint_here(env: Mapping[str, str] | None = None) -> str:
    """``kernel_fingerprint`` of a fresh process with this environment (plus ``env``): the
    kernels a chapter run from here would use, whatever this process has dispatched already."""
    code = "from radis_utils.machines import kernel_fingerprint; print(kernel_fingerprint())"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **(env or {})}, check=True,
                         capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def prediction_margin(values: Sequence[float], level: float = 0.99) -> float:
    """Half-width of the ``level`` prediction interval for one more build, from the builds'
    ``values`` (Student's t; the machine is treated as one more random draw)."""
    n = len(values)
    if n < 2:
        raise ValueError("prediction_margin: needs two builds or more")
    return verdicts.t_quantile(level, n) * verdicts.mean_sd(values)[1] * (1 + 1 / n) ** 0.5


def _run_variant(profile: str, variant: str) -> dict[str, Any]:
    """This process's build of world 0 (its kernels were fixed by the environment it started with)."""
    cfg = variant_config(profile, variant)
    summary = calibration.run_world(cfg)
    return {**summary, "kernels": KERNEL_VARIANTS[variant], "cpu": cpu_name(), "fingerprint": kernel_fingerprint()}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="ci")
    ap.add_argument("--variant", choices=sorted(KERNEL_VARIANTS), help="(internal) build one variant here, "
                    "print its summary as JSON on the last line")
    ap.add_argument("--jobs", type=int, default=2, help="variants built at once, one process each")
    args = ap.parse_args(argv)
    if args.variant:
        print(json.dumps(_run_variant(args.profile, args.variant)), flush=True)
        return 0
    start, procs = time.time(), {}
    for name, env in KERNEL_VARIANTS.items():
        while len([p for p in procs.values() if p.poll() is None]) >= args.jobs:
            time.sleep(2)
        procs[name] = subprocess.Popen([sys.executable, "-m", "radis_utils.machines", "--profile", args.profile,
                                        "--variant", name], env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)
    builds: dict[str, Any] = {}
    for name, proc in procs.items():
        out, _ = proc.communicate()
        if proc.returncode != 0:
            print(f"machines: variant {name} failed (its output is above)", file=sys.stderr)
            return 1
        builds[name] = json.loads(out.strip().splitlines()[-1])
    record = calibration.read_record(args.profile)
    if record is not None:
        builds["calibration record"] = {**next(w for w in record["worlds"] if w["world_seed"] == 0),
                                        "cpu": f"the machine that wrote {calibration.record_path(args.profile).name}"}
    path = record_path(args.profile)
    command = "python -m radis_utils.machines " + " ".join(argv if argv is not None else sys.argv[1:])
    write_json(path, {"profile": args.profile, "command": command.strip(),
                      "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "versions": versions(),
                      "seconds": round(time.time() - start, 1), "builds": builds}, indent=1)
    for name, build in builds.items():
        print(f"{name} ({build['cpu']}): {build['acceptance_values']}")
    print(f"wrote {path} (radis_utils.claims.machine_margins reads the spread of every value from it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
