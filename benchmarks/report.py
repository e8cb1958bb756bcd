"""Tables for the appendix chapter (``notebooks/10_performance.ipynb``), built from the records.

The chapter reads ``benchmarks/records/*.json``; ``collect`` runs the CPU-sized commands into a
scratch folder when their records are missing, so the chapter always has something measured.
The GPU rows (``python -m benchmarks.gpu``) show their latest record, or "not measured" with the
reason the last GPU run gave (or that no GPU was lent yet) where a row has none.
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

    A configuration run on a GPU (measured, or out of memory) hides its ``meta`` record; the
    paper-scale rows that were never run show the command that measures them.
    """
    import pandas as pd

    steps = [r for r in records if r["benchmark"] == "lora_step"]
    ran = {r["name"] for r in steps if r["settings"]["device"] != "meta"}  # measured, or tried (out of memory)
    kept = [r for r in steps if r["settings"]["device"] != "meta" or r["name"] not in ran]
    rows = []
    for rec in sorted(kept, key=lambda r: (r["settings"]["arch"] == "tiny", r["name"])):
        s, m = rec["settings"], rec.get("measured")
        mfu = _value(rec, "mfu")
        rows.append({
            "arch": s["arch"], "variant": s["variant"], "batch × seq": f"{s['batch']} × {s['seq']}",
            "device": rec["device"] if s["device"] != "meta" else "none (meta: shapes only)",
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
    """``{"measured": [...], "need a GPU": [...]}``: the command of every record, and the GPU
    command (while a row of it has no record) and paper-scale commands that nothing has measured yet."""
    measured = {r["name"] for r in records if _measured(r)}
    done = sorted({r["command"] for r in records if _measured(r) and "--records-dir" not in r["command"]})
    gpu_rows = {gpu_row_of(r) for r in gpu_records(records)}
    from benchmarks.gpu import GPU_PLAN, rows

    smoked = any(r["benchmark"] == "gpu_smoke" and r.get("ok") and not r["settings"].get("dry_run") for r in records)
    todo = [] if smoked else [f"{GPU_COMMAND} --smoke  # every chapter at a100-tiny and qlora-tiny on the GPU, ≤ 5 min"]
    todo += [f"{GPU_COMMAND}  # every GPU row at once, ≤ 8 min on one H100/H200"
             ] if set(rows(GPU_PLAN)) - gpu_rows else []
    todo += [f"python -m benchmarks.lora_step {a}" for name, a in PAPER_SCALE_STEPS if name not in measured]
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


# --- the GPU command's rows (python -m benchmarks.gpu) ------------------------------------------

GPU_COMMAND = "python -m benchmarks.gpu"
NOT_LENT = f"not measured — no GPU was lent yet; run `{GPU_COMMAND}` on one H100/H200 (≤ 8 min)"
#: Which row of the GPU command makes each goal's record.
GOAL_ROWS = {"lora_mfu": "lora", "qlora_peak_memory": "qlora", "batching_speedup": "batching",
             "vllm_speedup": "generation", "gpu_budget": "the whole command"}


def gpu_records(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records written by the GPU command itself (its dry runs left out), oldest first."""
    found = [r for r in records if r.get("command", "").startswith(GPU_COMMAND)
             and not r.get("settings", {}).get("dry_run")]
    return sorted(found, key=lambda r: r.get("created", ""))


def gpu_row_of(record: dict[str, Any]) -> str | None:
    """The GPU command's row that wrote ``record`` (``lora-<arch>``, ``batching``, ...)."""
    bench, s = record["benchmark"], record.get("settings", {})
    if bench == "lora_step":
        return "qlora" if s.get("variant") == "qlora" else f"lora-{s.get('arch')}"
    return {"batching": "batching", "generation": "generation", "pipeline": "smol"}.get(bench)


def _latest_run(records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    runs = [r for r in gpu_records(records) if r["benchmark"] == "gpu_run"]
    return runs[-1] if runs else None


def _why_not(records: Sequence[dict[str, Any]], row: str) -> str:
    """Why a GPU row has no record: what the last GPU run said about it, else that none ran yet."""
    run = _latest_run(records)
    said = next((r for r in (run or {}).get("rows", []) if r["row"] == row or r["row"].startswith(row + "-")), None)
    if said is None:
        return NOT_LENT
    return f"not measured — {said['status']} on {run['device']} ({run['created'][:10]}): {said['line']}"


def gpu_rows_table(records: Sequence[dict[str, Any]]) -> Any:
    """One line per row of the GPU command: the records it wrote and where, or why there is none."""
    import pandas as pd

    from benchmarks.gpu import GPU_PLAN, rows

    mine = gpu_records(records)
    out = []
    for row in rows(GPU_PLAN):
        got = [r for r in mine if gpu_row_of(r) == row]
        out.append({"row": row, "device": got[-1]["device"] if got else "—",
                    "measured": got[-1]["created"][:10] if got else "—",
                    "records": ", ".join(sorted({r["name"] for r in got})) if got else _why_not(records, row)})
    return pd.DataFrame(out).set_index("row")


def goals_table(records: Sequence[dict[str, Any]]) -> Any:
    """Issue 17's goals: the latest GPU measurement of each (per architecture) and whether it is met."""
    import pandas as pd

    from benchmarks.goals import GOALS

    mine = [r for r in gpu_records(records) if r.get("goal")]
    out = []
    for key, goal in GOALS.items():
        latest: dict[str, dict[str, Any]] = {}
        for rec in (r for r in mine if r["goal"]["key"] == key):
            latest[rec["settings"].get("arch", "")] = rec
        base = {"goal": goal.what, "target": f"{goal.op} {goal.target:g} {goal.unit}"}
        if not latest:
            out.append({**base, "measured": "—", "verdict": _why_not(records, GOAL_ROWS[key].split()[0]),
                        "device": "—"})
        for arch, rec in sorted(latest.items()):
            g = rec["goal"]
            out.append({**base, "goal": goal.what + (f" ({arch})" if arch else ""),
                        "measured": "—" if g["value"] is None else f"{g['value']:.4g} {goal.unit}",
                        "verdict": g["by"] if g["met"] is not None else _note_of(rec), "device": rec["device"]})
    return pd.DataFrame(out)


def _note_of(rec: dict[str, Any]) -> str:
    return next((f["note"] for f in rec["figures"] if f["value"] is None and f["note"]), "not measured")


def batching_table(records: Sequence[dict[str, Any]]) -> Any:
    """Real tokens/s and real/processed tokens per batching mode (the latest GPU record), or "not measured"."""
    import pandas as pd

    from benchmarks.batching import MODES

    recs = [r for r in gpu_records(records) if r["benchmark"] == "batching"]
    if not recs:
        return pd.DataFrame([{"batches": m.replace("_", "-"), "real tokens/s": "—", "real / processed": "—",
                              "vs random": "—", "note": _why_not(records, "batching")} for m in MODES])
    rec = recs[-1]
    value = {f["key"]: f for f in rec["figures"]}
    out = []
    for m in MODES:
        tps, eff = value[f"{m}_tokens_per_s"], value[f"{m}_token_efficiency"]
        ratio = value.get(f"{m}_vs_random", {}).get("value") if m != "random" else 1.0
        out.append({"batches": m.replace("_", "-"), "real tokens/s": _fmt(tps["value"]),
                    "real / processed": "—" if eff["value"] is None else f"{100 * eff['value']:.1f} %",
                    "vs random": "—" if ratio is None else f"{ratio:.2f}x", "note": tps["note"]})
    return pd.DataFrame(out)


def pipeline_table(records: Sequence[dict[str, Any]], profile: str = "smol") -> Any:
    """Wall time per stage of the profile's pipeline on the GPU (the latest record), or "not measured"."""
    import pandas as pd

    recs = [r for r in gpu_records(records) if r["benchmark"] == "pipeline" and r["settings"]["profile"] == profile]
    if not recs:
        return pd.DataFrame([{"stage": f"{profile} pipeline", "seconds": "—", "note": _why_not(records, "smol")}])
    return pd.DataFrame([{"stage": f["label"].split(": ", 1)[-1], "seconds": _fmt(f["value"], ",.1f"),
                          "note": f["note"]} for f in recs[-1]["figures"]])


def cpu_paths_table(records: Sequence[dict[str, Any]], benchmark: str = "cpu_paths") -> Any:
    """One row per figure of the latest record of a CPU-path ``benchmark`` (``cpu_paths``: generation
    per loop and batch size, LoRA training per setting; ``kv_cache``: the cpu loop's two cache
    layers), with the ratios and agreement its notes carry."""
    import pandas as pd

    found = sorted((r for r in records if r["benchmark"] == benchmark), key=lambda r: r["created"])
    if not found:
        return pd.DataFrame([{"setting": "not measured", "rate": "", "note": f"run `python -m benchmarks.{benchmark}`"}])
    rec = found[-1]
    return pd.DataFrame([{"setting": f["label"], "rate": "not measured" if f["value"] is None else
                          f"{f['value']:,.1f} {f['unit']}", "note": f["note"]} for f in rec["figures"]])
