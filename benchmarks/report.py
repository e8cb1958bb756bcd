"""Tables for the appendix chapter (``notebooks/08_performance.ipynb``), built from the records.

The chapter reads ``benchmarks/records/*.json``; ``collect`` runs the CPU-sized commands into a
scratch folder when their records are missing, so the chapter always has something measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from benchmarks.common import RECORDS_DIR, read_records

#: The paper-scale training rows (one GPU each) and the commands that measure them.
PAPER_SCALE_STEPS: tuple[tuple[str, str], ...] = (
    ("lora_step-llama2_7b-lora-b16-s512", "--arch llama2_7b --batch 16 --seq 512"),
    ("lora_step-mistral_7b_v02-lora-b16-s512", "--arch mistral_7b_v02 --batch 16 --seq 512"),
    ("lora_step-mistral_7b_v02-lora-ckpt-b16-s512", "--arch mistral_7b_v02 --batch 16 --seq 512 --grad-ckpt"),
    ("lora_step-llama2_7b-qlora-b8-s512", "--arch llama2_7b --qlora --seq 512"),
    ("lora_step-mistral_7b_v02-qlora-b8-s512", "--arch mistral_7b_v02 --qlora --seq 512"),
)
PAPER_SCALE_GENERATION = "--arch mistral_7b_v02 --batch-sizes 1,8,32,128,256 --max-new-tokens 256"
#: What the chapter runs (into a scratch folder) when no record of that name exists.
CPU_RUNS: tuple[tuple[str, str, list[str]], ...] = (
    ("lora_step", "lora_step-tiny-lora-b16-s512", ["--arch", "tiny"]),
    ("lora_step", "lora_step-tiny-qlora-b8-s512", ["--arch", "tiny", "--qlora"]),
    ("generation", "generation-tiny", ["--arch", "tiny", "--batch-sizes", "1,8,32"]),
)


def collect(scratch_dir: str | Path, run_missing: bool = True,
            records_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Every record in ``records_dir`` (default ``benchmarks/records/``) and ``scratch_dir``; the
    CPU-sized commands of ``CPU_RUNS`` are run into ``scratch_dir`` first if their record is missing."""
    import importlib

    records_dir = Path(records_dir or RECORDS_DIR)
    scratch_dir = Path(scratch_dir)
    have = {r["name"] for d in (records_dir, scratch_dir) if d.is_dir() for r in read_records(d)}
    for module, name, argv in CPU_RUNS:
        if run_missing and name not in have:
            importlib.import_module(f"benchmarks.{module}").main([*argv, "--records-dir", str(scratch_dir)])
    return [r for d in (records_dir, scratch_dir) if d.is_dir() for r in read_records(d)]


def _value(record: dict[str, Any], key: str) -> Any:
    return next((f["value"] for f in record["figures"] if f["key"] == key), None)


def _note(record: dict[str, Any], key: str) -> str:
    return next((f["note"] for f in record["figures"] if f["key"] == key), "")


def token_efficiency_table(records: Sequence[dict[str, Any]]) -> Any:
    """Real/processed tokens per profile and batching, one column per token-efficiency record."""
    import pandas as pd

    from radis_utils.config import load_profile

    ci_batch = load_profile("ci").train.per_device_batch
    rows = []
    for rec in (r for r in records if r["benchmark"] == "token_efficiency"):
        s = rec["settings"]
        data = f"{s['features']:,} ALMA conversations" + (f" (subset of {s['limit']:,})" if s.get("limit") else "")
        for run in rec["loaders"]:
            rows.append({"data": data, "profile": run["profile"], "per-device batch": run["per_device_batch"],
                         "batches": "length-grouped (trainer)" if run["grouped"] else "plain random",
                         "real / processed": f"{100 * run['ratio']:.1f} %",
                         "goal ≥ 95 %": ("met" if run["ratio"] >= rec["goal"] else "not met") if run["grouped"] else ""})
        if rec.get("ci_run"):
            ci = rec["ci_run"]
            rows.append({"data": f"ci organism ({ci['method']}, {ci['steps']} steps)", "profile": "ci",
                         "per-device batch": ci_batch, "batches": "length-grouped (train.train)",
                         "real / processed": f"{100 * ci['token_efficiency']:.1f} %",
                         "goal ≥ 95 %": "met" if ci["token_efficiency"] >= rec["goal"] else "not met"})
    return pd.DataFrame(rows)


def _fmt(value: Any, digits: str = ",.0f") -> str:
    return "—" if value is None else format(value, digits)


def _count(n: int) -> str:
    return f"{n / 1e9:.3f} B" if n >= 1e9 else f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n:,}"


def _gib(v: float) -> str:
    return f"{v:.2f} GiB" if v >= 0.1 else f"{v * 1024:.1f} MiB"


def lora_table(records: Sequence[dict[str, Any]]) -> Any:
    """One row per LoRA-step configuration: counts, FLOPs/token, and what was measured where.

    A configuration measured on a GPU hides its unmeasured (``meta``) record; the paper-scale
    rows that were never run show the command that measures them.
    """
    import pandas as pd

    steps = [r for r in records if r["benchmark"] == "lora_step"]
    measured = {r["name"] for r in steps if r.get("measured")}
    kept = [r for r in steps if r.get("measured") or r["name"] not in measured]
    rows = []
    for rec in sorted(kept, key=lambda r: (r["settings"]["arch"] == "tiny", r["name"])):
        s, m = rec["settings"], rec.get("measured")
        mfu = _value(rec, "mfu")
        rows.append({
            "arch": s["arch"], "variant": s["variant"], "batch × seq": f"{s['batch']} × {s['seq']}",
            "device": rec["device"] if m else "none (meta: shapes only)",
            "N (matmul)": _count(rec["flops"]["N"]), "N_lora": _count(rec["flops"]["N_lora"]),
            "GFLOP / token": f"{rec['flops']['flops_per_token'] / 1e9:.4g}",
            "weights + adapter state (analytic)": _gib(_value(rec, "static_memory_gib")),
            "tokens/s": _fmt(m and m["tokens_per_s"]),
            "MFU": "—" if mfu is None else f"{100 * mfu:.1f} %",
            "peak memory": "—" if not m else _gib(m["peak_memory_gib"])
                                              + ("" if s["device"] == "cuda" else " (process RSS)"),
            "note": "" if m else _note(rec, "tokens_per_s"),
        })
    return pd.DataFrame(rows)


def generation_series(records: Sequence[dict[str, Any]]) -> dict[str, tuple[list[int], list[float]]]:
    """``{"<arch>, <engine> (<device>)": (batch sizes, new tokens/s)}`` of every measured generation record."""
    series = {}
    for rec in (r for r in records if r["benchmark"] == "generation"):
        for engine in rec["settings"]["engines"]:
            rows = [row for row in rec["rows"] if row["engine"] == engine]
            if rows:
                series[f"{rec['settings']['arch']}, {engine} ({rec['device']})"] = (
                    [row["batch_size"] for row in rows], [row["new_tokens_per_s"] for row in rows])
    return series


def generation_table(records: Sequence[dict[str, Any]]) -> Any:
    """New tokens/s per engine and batch size (a note where a side was not measured)."""
    import pandas as pd

    rows = []
    for rec in (r for r in records if r["benchmark"] == "generation"):
        s = rec["settings"]
        for engine in s["engines"]:
            got = {row["batch_size"]: row for row in rec["rows"] if row["engine"] == engine}
            row = {"arch": s["arch"], "engine": engine, "device": rec["device"] if got else "—"}
            for b in s["batch_sizes"]:
                row[f"batch {b}"] = _fmt(got[b]["new_tokens_per_s"]) if b in got else "—"
            row["note"] = "" if got else rec["notes"].get(engine, "not measured")
            rows.append(row)
    return pd.DataFrame(rows).fillna("—")


def flop_table(records: Sequence[dict[str, Any]], seq: int = 512) -> Any:
    """The FLOP formula's terms per architecture (one ``lora_step`` record each, at ``seq``)."""
    import pandas as pd

    seen, rows = set(), []
    for rec in (r for r in records if r["benchmark"] == "lora_step" and r["settings"]["seq"] == seq):
        arch = rec["settings"]["arch"]
        if arch in seen:
            continue
        seen.add(arch)
        f = rec["flops"]
        rows.append({"arch": arch, "4·N": 4 * f["N"], "6·N_lora": 6 * f["N_lora"], "12·L·h·s": f["attention"],
                     "LoRA FLOPs/token": f["flops_per_token"], "full FT 6·N + 12·L·h·s": f["full_ft_flops_per_token"],
                     "LoRA / full FT": round(f["flops_per_token"] / f["full_ft_flops_per_token"], 3)})
    return pd.DataFrame(rows).set_index("arch")


def _measured(record: dict[str, Any]) -> bool:
    if record["benchmark"] == "lora_step":
        return bool(record.get("measured"))
    if record["benchmark"] == "generation":
        return bool(record.get("rows"))
    return True


def commands(records: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """``{"measured": [...], "need a GPU": [...]}``: the command of every record, and the
    paper-scale commands that no record has measured yet."""
    measured = {r["name"] for r in records if _measured(r)}
    done = sorted({r["command"] for r in records if _measured(r) and "--records-dir" not in r["command"]})
    todo = [f"python -m benchmarks.lora_step {a}" for name, a in PAPER_SCALE_STEPS if name not in measured]
    if "generation-mistral_7b_v02" not in measured:
        todo.append(f"python -m benchmarks.generation {PAPER_SCALE_GENERATION}")
    return {"measured": done, "need a GPU": todo}


def training_cost(records: Sequence[dict[str, Any]], arch: str = "mistral_7b_v02", epochs: float = 3.0,
                  peak_tflops: float = 312.0) -> dict[str, float] | None:
    """Model FLOPs of ``epochs`` over the ALMA conversations (no rationales) and the ideal time at
    ``peak_tflops`` (A100 bf16), from the token-efficiency and FLOP records; ``None`` if either is missing."""
    eff = next((r for r in records if r["benchmark"] == "token_efficiency" and not r["settings"].get("limit")), None)
    step = next((r for r in records if r["benchmark"] == "lora_step" and r["settings"]["arch"] == arch
                 and r["settings"]["variant"] == "lora"), None)
    if eff is None or step is None:
        return None
    tokens = eff["loaders"][0]["real_tokens"]
    flops = epochs * tokens * step["flops"]["flops_per_token"]
    return {"tokens_per_epoch": tokens, "epochs": epochs, "flops": flops,
            "gpu_hours_at_100pct_mfu": flops / (peak_tflops * 1e12) / 3600}
