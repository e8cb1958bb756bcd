"""The study's one command: synthesis, every method and seed trained, every model evaluated and
its drift measured, in jobs that run two at a time and resume where they stopped.

A job is one unit that leaves a finished file behind (a synthesis file, an adapter's
``summary.json``, a results file, a drift file); a job whose file exists is done and is not run
again, and a job stopped half-way continues from what it kept (synthesis and replies resume per
chunk, training from its last checkpoint). Each job runs in its own process with one torch
thread (the profile's ``runtime.threads``), ``--parallel`` at a time (two on 2 cores), in an order that respects what each needs
(training after its synthesis, evaluation after its training). ``--hours`` bounds a piece of
work: no job starts after it has passed, so a piece ends within one job of it; the next call
carries on. Progress lines give the stage, jobs done of all, and an estimate of the time left
from the jobs this call has finished.

``python -m radis_utils.study.run --parallel 2 --hours 2.5``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..config import Config, load_profile
from ..train import SYNTHESIS_KIND

STUDY = "smol-study"
#: The labelled variant: rationales with an immediate end of turn forbidden (not the paper's decoding).
#: Only its synthesis runs under these settings; its file is then handed to training as another
#: rationale source (``VARIANT_SOURCE``, as chapter 07 hands other models' rationales), so the
#: variant's adapter is evaluated beside the faithful ones under the same settings and backbone.
VARIANT_OVERRIDES = {"synthesis__min_new_tokens": 1}
VARIANT_TAG = "min1"
VARIANT_SOURCE = f"no-immediate-end-{VARIANT_TAG}"
VARIANT_SEEDS: tuple[int, ...] = (0,)
BACKBONE = "backbone"
CORE = ("vanilla", "radis")  # the contrast the study spends its seeds on first
DRIFT_PROMPTS, DRIFT_TOKENS = 100, 256   # AlpacaEval's last 100 instructions, the backbone's replies capped


@dataclass(frozen=True)
class Job:
    """One unit of the study: ``stage`` (synthesis, train, evaluate, drift) of ``method`` (a
    synthesis kind for the synthesis stage) at ``seed``, faithful or the labelled ``variant``."""

    stage: str
    method: str
    seed: int = 0
    variant: bool = False

    @property
    def key(self) -> str:
        return f"{self.stage}:{self.method}:{self.seed}:{int(self.variant)}"

    def __str__(self) -> str:
        return f"{self.stage} {self.method}{'' if self.stage == 'synthesis' else f' seed {self.seed}'}" \
               f"{f' ({VARIANT_TAG})' if self.variant else ''}"

    @classmethod
    def parse(cls, key: str) -> "Job":
        stage, method, seed, variant = key.split(":")
        return cls(stage, method, int(seed), variant == "1")


def study_config(variant: bool = False, profile: str = STUDY, **overrides: object) -> Config:
    """The study profile (with ``overrides``, as ``load_profile`` takes them), or the settings its
    labelled variant's rationales are synthesized under."""
    return load_profile(profile, **overrides, **(VARIANT_OVERRIDES if variant else {}))


def plan(cfg: Config) -> list[tuple[Job, tuple[Job, ...]]]:
    """Every job of the study with the jobs it needs first, in the order they are started: the
    backbone's evaluation and the syntheses, then model by model (trained, evaluated, its drift),
    the core contrast (``CORE``, every seed) before the other methods and the labelled variant,
    so that a study stopped part-way has whole models, the core ones first."""
    kinds = sorted({SYNTHESIS_KIND[m] for m in cfg.train.methods if m in SYNTHESIS_KIND},
                   key=lambda k: k != SYNTHESIS_KIND["radis"])
    synth = {k: Job("synthesis", k) for k in kinds}
    variant_synth = Job("synthesis", "rationale", variant=True)
    base_eval, base_drift = Job("evaluate", BACKBONE), Job("drift", BACKBONE)
    out: list[tuple[Job, tuple[Job, ...]]] = [(base_eval, ()), (base_drift, ())]
    out += [(j, ()) for j in synth.values()] + [(variant_synth, ())]
    core = [m for m in CORE if m in cfg.train.methods]
    trained = [(m, s, False) for s in cfg.train.seeds for m in core]
    trained += [(m, s, False) for s in cfg.train.seeds for m in cfg.train.methods if m not in core]
    trained += [("radis", s, True) for s in VARIANT_SEEDS]
    for method, seed, variant in trained:
        train = Job("train", method, seed, variant)
        need = (variant_synth,) if variant else ((synth[SYNTHESIS_KIND[method]],) if method in SYNTHESIS_KIND else ())
        out += [(train, need), (Job("evaluate", method, seed, variant), (train, base_eval)),
                (Job("drift", method, seed, variant), (train, base_drift))]
    return out


def finished_file(job: Job, cfg: Config) -> Path:
    """The file whose existence means ``job`` is done."""
    from .. import synthesis, train
    from ..evaluate.suite import results_path

    tag = VARIANT_TAG if job.variant else ""
    if job.stage == "synthesis":
        return synthesis.records_path(cfg, job.method, VARIANT_SOURCE if job.variant else None).with_suffix(".done")
    if job.stage == "train":
        return train.adapter_dir(cfg, job.method, job.seed, tag) / "summary.json"
    if job.stage == "evaluate":
        return results_path(cfg, job.method, job.seed, tag)
    return drift_path(cfg, job)


def log_path(cfg: Config) -> Path:
    """``runs/<profile>/study-jobs.jsonl``: one line per job run (seconds, exit code), for the record."""
    return cfg.runs_dir / "study-jobs.jsonl"


def append_line(path: Path, line: str) -> None:
    """Append one line (flushed and synced: a log of finished jobs survives a killed run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def drift_path(cfg: Config, job: Job) -> Path:
    """``runs/<profile>/drift/<name>.json``, named as the model's results file is."""
    from ..evaluate.suite import results_path

    name = results_path(cfg, job.method, job.seed, VARIANT_TAG if job.variant else "").stem
    return cfg.runs_dir / "drift" / f"{name}.json"


def schedule(jobs: Sequence[tuple[Job, tuple[Job, ...]]], is_done: Callable[[Job], bool],
             start: Callable[[Job], subprocess.Popen], parallel: int, hours: float | None,
             say: Callable[[str], None] = print, poll_s: float = 2.0,
             on_finish: Callable[[Job, float, int], None] = lambda job, seconds, code: None) -> dict[str, list[str]]:
    """Run the jobs not done yet, ``parallel`` at a time, each once what it needs is done; start
    none after ``hours``. Returns the jobs ``finished``, ``failed`` and ``left`` (by name);
    ``on_finish(job, seconds, exit code)`` hears of each job as it ends."""
    began = time.time()
    todo = [(j, need) for j, need in jobs if not is_done(j)]
    total, done_before = len(jobs), len(jobs) - len(todo)
    running: dict[Job, tuple[subprocess.Popen, float]] = {}
    finished: list[Job] = []
    failed: list[Job] = []
    spent: list[float] = []
    while todo or running:
        for job, (proc, t0) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[job]
            (finished if proc.returncode == 0 else failed).append(job)
            spent.append(time.time() - t0)
            on_finish(job, spent[-1], proc.returncode)
            left = len(todo) + len(running)
            eta = (sum(spent) / len(spent)) * left / max(1, parallel)
            say(f"study: {job} {'done' if proc.returncode == 0 else f'FAILED (exit {proc.returncode})'} in "
                f"{time.time() - t0:.0f} s; {done_before + len(finished)} of {total} jobs done; "
                f"~{eta / 60:.0f} min left at this call's pace")
        out_of_time = hours is not None and time.time() - began > hours * 3600
        blocked = {j for j in failed}
        ready = [(j, need) for j, need in todo
                 if all(is_done(n) for n in need) and not (set(need) & blocked)]
        while ready and len(running) < parallel and not out_of_time:
            job, need = ready.pop(0)
            todo.remove((job, need))
            say(f"study: start {job}")
            running[job] = (start(job), time.time())
        if not running and (out_of_time or not ready):
            break
        time.sleep(poll_s)
    return {"finished": [str(j) for j in finished], "failed": [str(j) for j in failed],
            "left": [str(j) for j, _ in todo]}


def run_job(job: Job, profile: str = STUDY, **overrides: object) -> None:
    """One job, in this process (what ``--job`` runs)."""
    from .. import data, evaluate, synthesis, train
    from ..records import write_text
    from ..runtime import apply_runtime

    cfg = study_config(False, profile, **overrides)
    apply_runtime(cfg)
    tag = VARIANT_TAG if job.variant else ""
    if job.stage == "synthesis":
        kind_cfg = study_config(job.variant, profile, **overrides)
        path, _ = synthesis.synthesize_for_profile(kind_cfg, job.method, data.training_examples(kind_cfg))
        if job.variant:  # handed over as another rationale source
            write_text(synthesis.records_path(cfg, job.method, VARIANT_SOURCE), path.read_text(encoding="utf-8"))
        write_text(finished_file(job, cfg), "")
    elif job.stage == "train":
        train.train(cfg, job.method, job.seed, source=VARIANT_SOURCE if job.variant else None, tag=tag)
    elif job.stage == "evaluate":
        evaluate.evaluate(cfg, job.method, job.seed, tag)
    else:
        drift_job(cfg, job)


def drift_job(cfg: Config, job: Job) -> None:
    """The backbone's greedy replies to ``DRIFT_PROMPTS`` held-out prompts (the backbone's job), or a
    trained model's NLL on them (``evaluate.drift``), written to ``drift_path``."""
    from .. import models, train
    from ..config import resolve_path
    from ..evaluate import drift
    from ..records import read_json, write_json

    folder = cfg.runs_dir / "drift"
    prompts = drift.drift_prompts(resolve_path(cfg.eval.benchmarks_dir), DRIFT_PROMPTS)
    tokenizer = models.load_tokenizer(cfg)
    if job.method == BACKBONE:
        model = models.load_model(cfg)
        replies = drift.backbone_replies(model, tokenizer, prompts, folder / "replies.progress.json", DRIFT_TOKENS,
                                         cfg.eval.batch_size, engine=cfg.eval.engine)
    else:
        replies = read_json(drift_path(cfg, Job("drift", BACKBONE)))["replies"]
        tag = VARIANT_TAG if job.variant else ""
        model = models.load_adapter(cfg, train.adapter_dir(cfg, job.method, job.seed, tag), merge=True)
    name = drift_path(cfg, job).stem
    scored = drift.reply_nll(model, tokenizer, prompts, replies, 8, folder / f"{name}.progress.json", name)
    write_json(drift_path(cfg, job), {"model": name, "prompts": DRIFT_PROMPTS, "max_new_tokens": DRIFT_TOKENS,
                                      "mean_nll": drift.mean_nll(scored), "items": scored,
                                      **({"replies": replies} if job.method == BACKBONE else {})}, indent=1)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m radis_utils.study.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default=STUDY)
    ap.add_argument("--parallel", type=int, default=2, help="jobs at a time (one torch thread each)")
    ap.add_argument("--hours", type=float, default=None, help="start no job after this many hours")
    ap.add_argument("--job", help="run one job in this process (STAGE:METHOD:SEED:VARIANT)")
    args = ap.parse_args(argv)
    if args.job:
        run_job(Job.parse(args.job), args.profile)
        return 0
    cfg = study_config(False, args.profile)
    began = time.time()

    def start(job: Job) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "radis_utils.study.run", "--profile", args.profile,
                                 "--job", job.key])

    def logged(job: Job, seconds: float, code: int) -> None:
        line = {"job": job.key, "seconds": round(seconds, 1), "exit": code, "parallel": args.parallel,
                "ended": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        append_line(log_path(cfg), json.dumps(line))

    report = schedule(plan(cfg), lambda j: finished_file(j, cfg).is_file(), start,
                      args.parallel, args.hours, on_finish=logged)
    append_line(log_path(cfg), json.dumps({"piece": {"seconds": round(time.time() - began, 1),
                                                     "finished": len(report["finished"]), "failed": len(report["failed"]),
                                                     "left": len(report["left"]), "parallel": args.parallel,
                                                     "ended": time.strftime("%Y-%m-%d %H:%M:%S %Z")}}))
    print(f"study: {len(report['finished'])} jobs finished in this call, {len(report['failed'])} failed, "
          f"{len(report['left'])} left" + (f" (next: {report['left'][0]})" if report["left"] else ""))
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
