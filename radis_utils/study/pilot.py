"""The pilot: SmolLM2-135M-Instruct measured once before any training, to size the study.

Which measures are above their floor, how much they vary from item to item (the power
calculation's input, ``study.power``) and what each costs on this machine. Every measure at the
sizes in ``PILOT``: translation on the first WMT'22 sentences of all 8 directions (chrF per
sentence), IFEval's 541 prompts (with the share of replies cut by the token cap), AdvBench
(refusal-keyword judge), GSM8K through lm-eval, and the backbone's greedy replies to AlpacaEval's
last instructions with its own NLL on them (``evaluate.drift``).

``python -m radis_utils.study.pilot`` writes ``calibration/smol-pilot.json``. Each measure keeps
its result under ``runs/smol/pilot/`` as it finishes (replies resumable within a measure), so a
stopped run continues with the measure it was in.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from .. import models
from ..config import Config, load_profile, resolve_path
from ..evaluate.translation import sentence_chrf
from ..records import read_json, write_json
from ..replies import split_reply
from ..runtime import apply_runtime, cpu_name, device_name, versions

PROFILE = "smol"
#: The pilot's sizes: generous beside the smoke run's, small beside the study's budget.
PILOT: dict[str, int] = {"test_pairs": 48, "translation_tokens": 128, "ifeval_tokens": 512, "advbench": 104,
                         "advbench_tokens": 128, "gsm8k": 40, "gsm8k_tokens": 256, "drift_prompts": 100,
                         "drift_tokens": 256, "batch_size": 64}
MEASURES = ("translation", "ifeval", "advbench", "gsm8k", "drift")


def pilot_config() -> Config:
    """The ``smol`` profile at the pilot's test size and translation reply length."""
    return load_profile(PROFILE, data__max_test_pairs=PILOT["test_pairs"],
                        eval__max_new_tokens=PILOT["translation_tokens"], eval__batch_size=PILOT["batch_size"])


def record_path() -> Path:
    return resolve_path("calibration/smol-pilot.json")


def spread(values: Sequence[float]) -> dict[str, float]:
    """Mean and standard deviation (n - 1) of per-item values."""
    return {"mean": round(statistics.fmean(values), 4), "sd": round(statistics.stdev(values), 4), "n": len(values)}


def translation(cfg: Config, model: Any, tokenizer: Any, out: Path) -> dict[str, Any]:
    from ..evaluate import suite

    result = suite.translate(cfg, model, tokenizer, cfg.data.directions)
    per = {}
    for d, m in result.items():
        refs = [p.reference for p in suite.checked_test_pairs(cfg, d)]
        per[d] = {"chrf": m["chrf"], "bleu": m["bleu"], "rationale_share": m["rationale_share"],
                  "sentence_chrf": spread(sentence_chrf([split_reply(r, cfg.eval.extraction)[0] for r in m["replies"]],
                                                        refs))}
    write_json(out / "translation_replies.json", {d: m["replies"] for d, m in result.items()}, indent=1)
    return {"n_per_direction": PILOT["test_pairs"], "directions": per}


def capped_share(tokenizer: Any, replies: Sequence[str], cap: int) -> float:
    """Percent of replies whose token count reaches ``cap`` (cut by the cap, not ended by the model)."""
    return round(100.0 * sum(len(tokenizer(r, add_special_tokens=False)["input_ids"]) >= cap - 1
                             for r in replies) / len(replies), 2)


def ifeval(cfg: Config, model: Any, tokenizer: Any, out: Path) -> dict[str, Any]:
    from ..evaluate.ifeval import run_ifeval

    score, details = run_ifeval(model, tokenizer, benchmarks_dir=resolve_path(cfg.eval.benchmarks_dir), out_dir=out,
                                limit=None, max_new_tokens=PILOT["ifeval_tokens"], batch_size=PILOT["batch_size"],
                                model_id="backbone", engine=cfg.eval.engine)
    items = read_json(Path(details["replies"]))["items"]
    strict = [float(i["prompt_level_strict_acc"]) for i in items]
    return {**{k: details[k] for k in ("n", "prompt_level_strict_acc", "inst_level_strict_acc",
                                       "prompt_level_loose_acc", "inst_level_loose_acc")},
            "prompt_strict_per_item": spread(strict),
            "capped_share": capped_share(tokenizer, [i["reply"] for i in items], PILOT["ifeval_tokens"])}


def advbench(cfg: Config, model: Any, tokenizer: Any, out: Path) -> dict[str, Any]:
    from ..evaluate.advbench import run_advbench

    score, details = run_advbench(model, tokenizer, benchmarks_dir=resolve_path(cfg.eval.benchmarks_dir), out_dir=out,
                                  limit=PILOT["advbench"], guard_model=None, max_new_tokens=PILOT["advbench_tokens"],
                                  batch_size=PILOT["batch_size"], model_id="backbone", engine=cfg.eval.engine)
    return {"safe_rate": score, "n": details["n"], "judge": details["judge"]}


def gsm8k(cfg: Config, model: Any, tokenizer: Any, out: Path) -> dict[str, Any]:
    from ..evaluate.gsm8k import run_gsm8k

    score, details = run_gsm8k(model, tokenizer, benchmarks_dir=resolve_path(cfg.eval.benchmarks_dir), out_dir=out,
                               limit=PILOT["gsm8k"], max_new_tokens=PILOT["gsm8k_tokens"], batch_size=16,
                               model_id="backbone")
    return {"exact_match": score, "n": details["n"]}


def drift(cfg: Config, model: Any, tokenizer: Any, out: Path) -> dict[str, Any]:
    from ..evaluate import drift as d

    prompts = d.drift_prompts(resolve_path(cfg.eval.benchmarks_dir), PILOT["drift_prompts"])
    replies = d.backbone_replies(model, tokenizer, prompts, out / "drift" / "replies.progress.json",
                                 PILOT["drift_tokens"], PILOT["batch_size"], engine=cfg.eval.engine)
    scored = d.reply_nll(model, tokenizer, prompts, replies, 8, out / "drift" / "nll.progress.json", "backbone")
    per_token = [s["nll"] / s["tokens"] for s in scored.values()]
    return {"n": len(scored), "mean_nll": round(d.mean_nll(scored), 4), "per_reply_nll": spread(per_token),
            "capped_share": capped_share(tokenizer, list(replies.values()), PILOT["drift_tokens"])}


RUNS: dict[str, Callable[[Config, Any, Any, Path], dict[str, Any]]] = {
    "translation": translation, "ifeval": ifeval, "advbench": advbench, "gsm8k": gsm8k, "drift": drift}


def run_pilot(measures: Sequence[str] = MEASURES) -> dict[str, Any]:
    """Every measure's result (each kept in ``runs/smol/pilot/<measure>.json`` once finished, with
    its seconds; a finished one is read back, not rerun)."""
    cfg = pilot_config()
    apply_runtime(cfg)
    out = cfg.runs_dir / "pilot"
    done = {m: read_json(out / f"{m}.json") for m in measures if (out / f"{m}.json").is_file()}
    todo = [m for m in measures if m not in done]
    if todo:
        model, tokenizer = models.load_backbone(cfg)
        for m in todo:
            print(f"pilot: {m} ({len(done)} of {len(measures)} measures done)", flush=True)
            start = time.time()
            result = {**RUNS[m](cfg, model, tokenizer, out), "seconds": round(time.time() - start, 1)}
            write_json(out / f"{m}.json", result, indent=1)
            done[m] = result
    return {m: done[m] for m in measures}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m radis_utils.study.pilot", description=__doc__.split("\n\n")[0])
    ap.add_argument("--measure", action="append", choices=MEASURES, help=f"default: all ({', '.join(MEASURES)})")
    args = ap.parse_args(argv)
    start = time.time()
    results = run_pilot(args.measure or MEASURES)
    command = ("python -m radis_utils.study.pilot " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    cfg = pilot_config()
    path = record_path()
    write_json(path, {"profile": PROFILE, "config_hash": models.config_hash(cfg), "sizes": PILOT, "command": command,
                      "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "versions": versions(),
                      "device": device_name(), "cpu": cpu_name(), "threads": cfg.runtime.threads,
                      "seconds_this_run": round(time.time() - start, 1),
                      "seconds_measured": round(sum(r["seconds"] for r in results.values()), 1),
                      "measures": results}, indent=1)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
