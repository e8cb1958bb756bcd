"""The study's numbers, intervals and verdicts, from the files its jobs wrote (``study.run``).

Per model run (the backbone; every method and seed; the labelled variant): chrF per study
direction, IFEval's four scores, drift (mean NLL per token of the backbone's own replies), and
for the methods RP over the general measures above the floor (IFEval: the pilot found GSM8K and
AdvBench at it). The paper's claims are graded as the organism's are (``claims.METHOD_CLAIMS``,
``claims.run_values``, thresholds pre-registered in chapter 00), on intervals from
``verdicts.seed_and_item_bootstrap``: test sentences (within each direction), IFEval prompts and
drift prompts resampled together for every model, and each method's training seeds resampled
too. Nothing here loads a model; a results file from other settings is refused by name
(``evaluate.read_results``).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .. import claims, data, records, synthesis, verdicts
from ..config import Config
from ..evaluate.suite import read_results, results_path
from ..evaluate.translation import chrf_of, chrf_statistics
from ..records import read_json
from ..replies import split_reply
from .run import BACKBONE, VARIANT_SOURCE, VARIANT_SEEDS, VARIANT_TAG, drift_path, Job

VARIANT = "radis_min1"   # the labelled variant's name in tables (not a method of the paper)
RP_MEASURES = ("ifeval",)  # the general measures above the floor (calibration/smol-pilot.json)


@dataclass(frozen=True)
class ModelRun:
    """What one evaluated model left: per direction its sentences' chrF statistics, IFEval's
    per-prompt results, drift per prompt."""

    name: str
    chrf_stats: Mapping[str, Sequence[Sequence[float]]]
    ifeval: Sequence[Mapping[str, Any]]
    drift: Mapping[str, Mapping[str, float]]


def load_run(cfg: Config, method: str, seed: int = 0, variant: bool = False) -> ModelRun:
    """One model's files: its results (checked against ``cfg``), IFEval answers, drift."""
    tag = VARIANT_TAG if variant else ""
    path = results_path(cfg, method, seed, tag)
    result = read_results(path, cfg)
    stats = {}
    for d in cfg.data.directions:
        refs = [p.reference for p in data.test_pairs(cfg, d)]
        hyps = [split_reply(r, cfg.eval.extraction)[0] for r in result["replies"][d]]
        if len(hyps) != len(refs):
            raise ValueError(f"{path}: {len(hyps)} replies for {d}, the test set has {len(refs)}")
        stats[d] = chrf_statistics(hyps, refs)
    ifeval = read_json(cfg.runs_dir / "results" / "general" / path.stem / "ifeval" / "replies.json")["items"]
    drift = read_json(drift_path(cfg, Job("drift", method, seed, variant)))["items"]
    return ModelRun(path.stem, stats, ifeval, drift)


def load_all(cfg: Config) -> tuple[ModelRun, dict[str, list[ModelRun]]]:
    """The backbone and, by method (the variant as ``VARIANT``), its runs in seed order."""
    groups = {m: [load_run(cfg, m, s) for s in cfg.train.seeds] for m in cfg.train.methods}
    groups[VARIANT] = [load_run(cfg, "radis", s, variant=True) for s in VARIANT_SEEDS]
    return load_run(cfg, BACKBONE), groups


def scores_of(run: ModelRun, directions: Sequence[str], picks: Mapping[str, Sequence[int]],
              drift_keys: Sequence[str]) -> dict[str, float]:
    """chrF (mean over directions, and per direction), IFEval prompt-level strict %, drift NLL on
    the picked items."""
    per = {d: chrf_of(run.chrf_stats[d], picks[d]) for d in directions}
    ifeval = 100 * statistics.fmean(bool(run.ifeval[i]["prompt_level_strict_acc"]) for i in picks["ifeval"])
    keys = [drift_keys[i] for i in picks["drift"]]
    drift = sum(run.drift[k]["nll"] for k in keys) / sum(run.drift[k]["tokens"] for k in keys)
    return {"chrf": statistics.fmean(per.values()), **{f"chrf {d}": v for d, v in per.items()},
            "ifeval": ifeval, "drift": drift}


def statistic(backbone: ModelRun, groups: Mapping[str, Sequence[ModelRun]], directions: Sequence[str]):
    """The bootstrap's statistic: every claim value (``claims.run_values``) and every method's
    scores, on picked items and seeds. Strata: the directions, IFEval's prompts, drift's prompts."""
    drift_keys = sorted(backbone.drift)

    def compute(item_picks: Sequence[Sequence[int]], seed_picks: Mapping[str, Sequence[int]]) -> dict[str, float]:
        picks = dict(zip([*directions, "ifeval", "drift"], item_picks))
        base = scores_of(backbone, directions, picks, drift_keys)
        out = {f"backbone {k}": v for k, v in base.items()}
        run: dict[str, tuple[float, float | None]] = {BACKBONE: (base["chrf"], None)}
        for name, runs in groups.items():
            chosen = [scores_of(runs[k], directions, picks, drift_keys) for k in seed_picks[name]]
            mean = {k: statistics.fmean(s[k] for s in chosen) for k in chosen[0]}
            rp = 100 * mean["ifeval"] / base["ifeval"] if base["ifeval"] > 0 else None
            out.update({f"{name} {k}": v for k, v in mean.items()})
            if rp is not None:
                out[f"{name} rp"] = rp
            if name != VARIANT:
                run[name] = (mean["chrf"], rp)
        values = claims.run_values(run)
        if VARIANT in groups and "vanilla" in run:
            variant_run = {BACKBONE: run[BACKBONE], "vanilla": run["vanilla"],
                           "radis": (out[f"{VARIANT} chrf"], out.get(f"{VARIANT} rp"))}
            for key, v in claims.run_values(variant_run).items():
                if key.startswith("radis_"):
                    values[key.replace("radis_", f"{VARIANT}_", 1)] = v
        return {**out, **values}

    return compute


def intervals(cfg: Config, resamples: int = 1000) -> tuple[dict[str, verdicts.Interval], dict[str, int]]:
    """Every value's mean and 95 % interval over test items and seeds, and the strata sizes."""
    backbone, groups = load_all(cfg)
    directions = list(cfg.data.directions)
    strata = [len(backbone.chrf_stats[d]) for d in directions] + [len(backbone.ifeval), len(backbone.drift)]
    sizes = dict(zip([*directions, "ifeval", "drift"], strata))
    got = verdicts.seed_and_item_bootstrap(strata, {m: len(rs) for m, rs in groups.items()},
                                           statistic(backbone, groups, directions), resamples)
    return got, sizes


def rationale_shares(cfg: Config) -> dict[str, float]:
    """Share of non-empty rationales in the faithful synthesis and in the labelled variant's."""
    def share(path: Path) -> float:
        rows = records.read_records(path)
        return sum(bool(r["text"].strip()) for r in rows) / len(rows)

    return {"radis": share(synthesis.records_path(cfg, "rationale")),
            VARIANT: share(synthesis.records_path(cfg, "rationale", VARIANT_SOURCE))}


def claim_rows(found: Mapping[str, verdicts.Interval]) -> list[dict[str, Any]]:
    """``claims.METHOD_CLAIMS`` graded on the study's intervals (a value undefined here: not run)."""
    return [claims.row(c, claims.paper_text(c), found.get(c.key), "undefined on this model (e.g. no gain to "
                       "compare with)") for c in claims.METHOD_CLAIMS]


# --- the record ---------------------------------------------------------------------------

def record_path() -> Path:
    from ..config import resolve_path

    return resolve_path("calibration/smol-study.json")


def job_log(cfg: Config) -> tuple[dict[str, float], float]:
    """Seconds per stage (summed over its jobs) and the wall seconds of all pieces, from the run's
    log (``run.log_path``; a line a killed run tore is skipped)."""
    import json

    from .run import log_path

    stages: dict[str, float] = {}
    wall = 0.0
    path = log_path(cfg)
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "piece" in entry:
            wall += entry["piece"]["seconds"]
        elif entry.get("exit") == 0:
            stage = entry["job"].split(":")[0]
            stages[stage] = round(stages.get(stage, 0.0) + entry["seconds"], 1)
    return stages, round(wall, 1)


def run_scores(run: ModelRun, directions: Sequence[str]) -> dict[str, Any]:
    """One model's scores on every item: chrF per direction and mean, IFEval's four, drift."""
    from ..evaluate.ifeval import aggregate

    picks = {**{d: range(len(run.chrf_stats[d])) for d in directions}, "ifeval": range(len(run.ifeval)),
             "drift": range(len(run.drift))}
    got = scores_of(run, directions, picks, sorted(run.drift))
    return {"model": run.name, "chrf": round(got["chrf"], 2),
            **{k: round(v, 2) for k, v in got.items() if k.startswith("chrf ")},
            "ifeval": aggregate(run.ifeval), "drift_nll": round(got["drift"], 4)}


def runs_of(cfg: Config, backbone: ModelRun, groups: Mapping[str, Sequence[ModelRun]]) -> list[dict[str, Any]]:
    """Every model's scores on all items, named by method (the variant as ``VARIANT``) and seed."""
    directions = list(cfg.data.directions)
    out = [{"method": BACKBONE, "seed": None, **run_scores(backbone, directions)}]
    for method, runs in groups.items():
        seeds = VARIANT_SEEDS if method == VARIANT else cfg.train.seeds
        out += [{"method": method, "seed": seed, **run_scores(r, directions)} for seed, r in zip(seeds, runs)]
    return out


def write_record(cfg: Config, command: str, resamples: int = 1000, path: Path | None = None) -> Path:
    """``calibration/smol-study.json``: settings hash, versions, machine, sizes, stage and wall
    seconds, every run's scores, every interval, the claims' verdicts."""
    import dataclasses
    import time

    from .. import models
    from ..records import write_json
    from ..runtime import cpu_name, device_name, versions

    backbone, groups = load_all(cfg)
    found, sizes = intervals(cfg, resamples)
    stages, wall = job_log(cfg)
    record = {"profile": cfg.profile, "config_hash": models.config_hash(cfg), "command": command,
              "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "versions": versions(), "device": device_name(),
              "cpu": cpu_name(), "sizes": sizes, "seeds": {m: len(rs) for m, rs in groups.items()},
              "stage_seconds": stages, "wall_seconds": wall, "rationale_share": rationale_shares(cfg),
              "runs": runs_of(cfg, backbone, groups),
              "intervals": {k: dataclasses.asdict(v) for k, v in sorted(found.items())},
              "claims": claim_rows(found)}
    path = path or record_path()
    write_json(path, record, indent=1)
    return path


def record_problems(record: Mapping[str, Any], cfg: Config) -> list[str]:
    """Why the record no longer describes ``cfg`` (empty: it does)."""
    from .. import models

    now = models.config_hash(cfg)
    if record.get("config_hash") != now:
        return [f"recorded under config {record.get('config_hash')}, the settings now give {now}: rerun "
                "`python -m radis_utils.study.run` and `python -m radis_utils.study.analysis`"]
    return []


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import sys

    from .run import STUDY, study_config

    ap = argparse.ArgumentParser(prog="python -m radis_utils.study.analysis", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default=STUDY)
    ap.add_argument("--resamples", type=int, default=1000)
    args = ap.parse_args(argv)
    command = ("python -m radis_utils.study.analysis " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    path = write_record(study_config(False, args.profile), command, args.resamples)
    for row in read_json(path)["claims"]:
        print(f"{row['verdict']:>15}  {row['claim']}: {row['ours: mean [95 % interval]']}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
