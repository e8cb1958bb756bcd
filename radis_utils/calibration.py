"""Calibration in the open: what was tuned on the organism, and the checks over worlds.

Every setting of the ``ci`` recipe that was chosen by looking at results is listed in ``TUNED``
with what it was tuned against; chapter 00 prints the list with the values now in effect.
All of it was tuned on organism world 0 only, so the other worlds (other invented languages,
people, countries and operands; the same recipe) are held out. ``python -m
radis_utils.calibration`` runs the whole ``ci`` pipeline (organism, the three syntheses, every
method and seed, evaluation, fig. 4's gradients) once per world seed, world 0 in the book's own
``runs/ci/`` and the others under ``runs/calibration/world<k>/``, and writes the record
``calibration/<profile>.json`` (committed: it takes ~15 min of CPU per world, more than CI
has). ``--add`` runs only the worlds it names and adds them to the committed record, so a
record can grow in pieces and on several machines; each world keeps where and how it was built
(``built``: CPU, time, command) and its config hash, so a reader can tell when it no longer
describes the code's settings (``record_problems``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from . import data, evaluate, gradients, models, synthesis, train
from .config import Config, load_profile, project_root, resolve_path
from .records import read_json, write_json
from .runtime import apply_runtime, cpu_name, device_name, versions
from .summary import load_gradient_results, load_method_results

WORLD_SEEDS: tuple[int, ...] = tuple(range(12))


@dataclass(frozen=True)
class Tuned:
    """One setting chosen by looking at results: its config path, the paper's value, and against what."""

    setting: str
    paper: str
    against: str


#: The settings of the ``ci`` recipe that were chosen by looking at results, all on world 0
#: (training seeds 0 and 1). Everything else is the paper's value or a size choice.
TUNED: tuple[Tuned, ...] = (
    Tuned("train.learning_rate", "1e-4",
          "raised 3e-3 -> 4e-3 with world 7 until the project's first four checks held (vanilla RP <= 60, RaDis RP >= 85, "
          "RaDis gain >= 0.8 x vanilla, Seq-KD gain <= 0.5 x RaDis); not re-tuned for today's thresholds (chapter 00)"),
    Tuned("train.epochs", "3", "set with world 6 so that stage 2 moves the organism within CPU minutes (chapter 05)"),
    Tuned("train.effective_batch", "128", "set with world 6, with the epochs (64: 32 steps per epoch on 2,000 pairs)"),
    Tuned("train.lora_dropout", "0.05", "0 with world 6: the few steps of the organism's stage 2"),
    Tuned("organism world (WORLD_VERSION)", "-",
          "world 7's consistent false friends were designed so that vanilla fine-tuning forgets as the paper's "
          "does (those first checks); world 8 made the scored items disjoint from stage 2 and the test set harder "
          "(today's threshold vanilla chrF <= 95), not tuned against the method checks; world 9 adds SDFT's request "
          "to base training (the 'guided' task, 10 % of dialogues). In its first version every reference "
          "agreed with the model's own words, and world 0's SDFT rewrites kept y's translation in 181 of 2,000 (the "
          "model's own in 1,375); so half of its translation references now disagree with the model's words (a "
          "word or two, drawn by frequency rank, never the right one) and the reply follows them (GUIDED_CONFLICT "
          "0.5), judged on that copy rate before any SDFT score. The swapped-in word was first drawn uniformly; it is "
          "drawn by rank to see whether rare words' extra exposure raised vanilla chrF, and it did not (world 0, "
          "seed 0: 97.65 uniform, 97.0 by rank, 92.6 without the guided task). The test set was not re-tuned"),
    Tuned("gradients.PRIMARY", "fig. 4: fully trained adapters, Adam-preconditioned (LESS) features",
          "mid-training and LESS fixed before the measurement; every other point and preconditioner "
          "is reported beside it (chapter 08)"),
)


def setting_value(cfg: Config, setting: str) -> str:
    """The value in effect for one ``TUNED`` setting (a ``section.key`` path, else a named constant)."""
    section, _, key = setting.partition(".")
    if hasattr(cfg, section) and key and hasattr(getattr(cfg, section), key):
        return str(getattr(getattr(cfg, section), key))
    if setting.startswith("organism world"):
        from .organism.world import WORLD_VERSION

        return str(WORLD_VERSION)
    if setting == "gradients.PRIMARY":
        return ", ".join(f"{k} {v}" for k, v in gradients.PRIMARY.items())
    raise KeyError(f"calibration.TUNED: no value for {setting!r}")


def tuned_rows(cfg: Config) -> list[dict[str, str]]:
    """``TUNED`` as table rows, each with the value ``cfg`` uses."""
    return [{"setting": t.setting, "ours": setting_value(cfg, t.setting), "paper": t.paper,
             "tuned against (world 0 only)": t.against} for t in TUNED]


# --- one world ----------------------------------------------------------------------------

def world_config(profile: str, world_seed: int) -> Config:
    """``profile`` on organism world ``world_seed``: world 0 is the profile itself (``runs/<profile>/``),
    another world writes under ``runs/calibration/world<k>/<profile>/``."""
    base = load_profile(profile)
    if world_seed == base.organism.get("world_seed", 0):
        return base
    return load_profile(profile, organism={**base.organism, "world_seed": world_seed},
                        runtime__runs_dir=f"{base.runtime.runs_dir}/calibration/world{world_seed}")


def run_world(cfg: Config) -> dict[str, Any]:
    """The whole pipeline of one world, each stage cached on disk as the chapters cache it; then
    ``world_summary``. Fig. 4 uses chapter 08's defaults (the profile's ``eval.gradient_items``)."""
    apply_runtime(cfg)
    examples = data.training_examples(cfg)
    synthesis.synthesize_kinds(cfg, synthesis.KINDS, examples, tokenizer=models.load_tokenizer(cfg))
    for seed in cfg.train.seeds:
        for method in cfg.train.methods:
            train.train(cfg, method, seed)
    evaluate.evaluate(cfg, evaluate.BACKBONE)
    for seed in cfg.train.seeds:
        for method in cfg.train.methods:
            evaluate.evaluate(cfg, method, seed)
        gradients.seed_similarity(cfg, seed, per_direction=cfg.eval.gradient_items)
    return world_summary(cfg)


def world_summary(cfg: Config) -> dict[str, Any]:
    """One world's numbers from its results files: per method and seed chrF and RP, the pre-registered
    ``evaluate.ACCEPTANCE`` values on the seed mean, and fig. 4's check (``gradients.acceptance``)."""
    backbone, by_method = load_method_results(cfg)
    if backbone is None or not by_method:
        raise FileNotFoundError(f"{cfg.runs_dir / 'results'}: no results of this world yet; run it first")
    grads = load_gradient_results(cfg)
    fig4 = gradients.acceptance(grads) if grads else None
    return {
        "world_seed": cfg.organism.get("world_seed", 0), "config_hash": models.config_hash(cfg),
        "runs_dir": _relative(cfg.runs_dir), "backbone": {"chrf": evaluate.headline(backbone)},
        "methods": {m: [{"seed": r["seed"], "chrf": evaluate.headline(r), "rp": r.get("rp")} for r in rs]
                    for m, rs in by_method.items()},
        "acceptance_values": {k: round(v, 4) for k, v in evaluate.acceptance_values(backbone, by_method).items()},
        "fig4": None if fig4 is None else {"mean_share": fig4["mean_share"], "radis_positive": fig4["radis_positive"],
                                           "seqkd_negative": fig4["seqkd_negative"]},
    }


def _relative(path: Path) -> str:
    """``path`` relative to the checkout when inside it (records stay valid in another clone)."""
    try:
        return str(path.relative_to(project_root()))
    except ValueError:
        return str(path)


# --- over worlds --------------------------------------------------------------------------

def aggregate(worlds: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per acceptance value (and fig. 4's two shares): each world's value, the mean, min, max and
    spread (max - min) over the worlds that have it."""
    def values(world: Mapping[str, Any]) -> dict[str, float]:
        out = dict(world["acceptance_values"])
        if world.get("fig4") and all(v is not None for v in world["fig4"]["mean_share"].values()):
            out.update({f"fig4_{m}_share": s for m, s in world["fig4"]["mean_share"].items()})
        return out

    per_world = [values(w) for w in worlds]
    keys = list(dict.fromkeys(k for v in per_world for k in v))
    out = {}
    for key in keys:
        got = [v[key] for v in per_world if key in v]
        out[key] = {"worlds": [v.get(key) for v in per_world], "mean": sum(got) / len(got),
                    "min": min(got), "max": max(got), "spread": max(got) - min(got), "n": len(got)}
    return out


def checks(aggregated: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The pre-registered thresholds (``evaluate.ACCEPTANCE`` and fig. 4's ``gradients.THRESHOLD``) on the
    mean over worlds, with the spread; a check whose value no world has is left out."""
    rules = {**evaluate.ACCEPTANCE,
             **{name: (f"fig4_{m}_share", ">=", gradients.THRESHOLD) for m, name in gradients.CHECKS.items()}}
    out = {}
    for name, (key, op, limit) in rules.items():
        if key in aggregated:
            a = aggregated[key]
            out[name] = {"mean": round(a["mean"], 3), "spread": round(a["spread"], 3), "threshold": limit,
                         "worlds": [None if v is None else round(v, 3) for v in a["worlds"]],
                         "holds": evaluate.threshold_holds(op, a["mean"], limit)}
    return out


def world_rows(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per world and model: chrF and RP (mean over the world's training seeds), and the
    CPU the world was built on (``"-"`` where the record does not say)."""
    rows = []
    for w in record["worlds"]:
        cpu = w.get("built", {}).get("cpu", "-")
        rows.append({"world": w["world_seed"], "built on": cpu, "model": "backbone", "chrF": w["backbone"]["chrf"],
                     "RP": 100.0})
        for method, runs in w["methods"].items():
            rps = [r["rp"] for r in runs]
            rows.append({"world": w["world_seed"], "built on": cpu, "model": method, "seeds": len(runs),
                         "chrF": round(sum(r["chrf"] for r in runs) / len(runs), 2),
                         "RP": round(sum(rps) / len(rps), 2) if None not in rps else None})
    return rows


def current_record(cfg: Config) -> dict[str, Any] | None:
    """The record of ``cfg``'s profile when it describes ``cfg``: an organism profile whose
    settings give the record's world-0 config hash, with every world current (``record_problems``
    empty); else ``None``."""
    if cfg.data.source != "organism":
        return None
    record = read_record(cfg.profile)
    if record is None or record_problems(record):
        return None
    zero = next((w for w in record["worlds"] if w["world_seed"] == cfg.organism.get("world_seed", 0)), None)
    return record if zero is not None and zero["config_hash"] == models.config_hash(cfg) else None


def record_path(profile: str) -> Path:
    """``calibration/<profile>.json`` in the checkout."""
    return resolve_path(f"calibration/{profile}.json")


def write_record(profile: str, worlds: Sequence[Mapping[str, Any]], command: str, seconds: float) -> Path:
    """The calibration record: each world's summary, the aggregate and the checks (atomic write)."""
    aggregated = aggregate(worlds)
    path = record_path(profile)
    write_json(path, {"profile": profile, "command": command, "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                      "versions": versions(), "device": device_name(), "seconds": round(seconds, 1),
                      "worlds": list(worlds), "aggregate": aggregated, "checks": checks(aggregated)}, indent=1)
    return path


def read_record(profile: str, path: Path | None = None) -> dict[str, Any] | None:
    """The committed record of ``profile``, or ``None`` when there is none."""
    path = path or record_path(profile)
    return read_json(path) if path.is_file() else None


def record_problems(record: Mapping[str, Any]) -> list[str]:
    """Why the record no longer describes this checkout's settings: one line per world whose
    config hash differs from what ``world_config`` gives now (empty: the record is current)."""
    out = []
    for world in record["worlds"]:
        now = models.config_hash(world_config(record["profile"], world["world_seed"]))
        if now != world["config_hash"]:
            out.append(f"world {world['world_seed']}: recorded under config {world['config_hash']}, the settings "
                       f"now give {now}: rerun `python -m radis_utils.calibration --profile {record['profile']}`")
    return out


def built_here(command: str) -> dict[str, str]:
    """Where and how a world was built: this CPU (``runtime.cpu_name``), the time, the command."""
    return {"cpu": cpu_name(), "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": command}


def merged_worlds(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The worlds of ``old`` with those of ``new`` added (a world seed in both: ``new``'s), by world seed."""
    by_seed = {w["world_seed"]: dict(w) for w in old}
    by_seed.update({w["world_seed"]: dict(w) for w in new})
    return [by_seed[k] for k in sorted(by_seed)]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="ci")
    ap.add_argument("--world-seed", type=int, action="append", help=f"default: {list(WORLD_SEEDS)}")
    ap.add_argument("--jobs", type=int, default=1, help="worlds run at once, one process each (1 torch thread each)")
    ap.add_argument("--no-record", action="store_true", help="run the worlds, do not write the record")
    ap.add_argument("--add", action="store_true", help="add these worlds to the committed record (keep its others)")
    args = ap.parse_args(argv)
    seeds = args.world_seed or list(WORLD_SEEDS)
    old = read_record(args.profile) if args.add else None
    if args.add and old is None:
        ap.error(f"--add: no record at {record_path(args.profile)} to add to; run without --add first")
    start = time.time()
    if args.jobs > 1 and len(seeds) > 1:  # each world in its own process; the record is written below
        procs: list[subprocess.Popen] = []
        for seed in seeds:
            while len([p for p in procs if p.poll() is None]) >= args.jobs:
                time.sleep(2)
            procs.append(subprocess.Popen([sys.executable, "-m", "radis_utils.calibration", "--profile", args.profile,
                                           "--world-seed", str(seed), "--no-record"]))
        failed = [s for s, p in zip(seeds, procs) if p.wait() != 0]
        if failed:
            print(f"calibration: world(s) {failed} failed (their output is above)", file=sys.stderr)
            return 1
    command = ("python -m radis_utils.calibration " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    worlds = []
    for seed in seeds:
        cfg = world_config(args.profile, seed)
        print(f"world {seed}: {cfg.runs_dir}", flush=True)
        worlds.append({**run_world(cfg), "built": built_here(command)})
    if not args.no_record:
        seconds = time.time() - start
        if old is not None:
            worlds, seconds = merged_worlds(old["worlds"], worlds), old.get("seconds", 0.0) + seconds
            command = f"{old['command']}; {command}"
        path = write_record(args.profile, worlds, command, seconds)
        for name, c in read_record(args.profile, path)["checks"].items():
            print(f"{'holds ' if c['holds'] else 'MISSED'} {name}: mean {c['mean']} (spread {c['spread']}; "
                  f"worlds {c['worlds']})")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
