"""Evaluate one model (the backbone or a trained adapter) and keep the result as JSON.

``evaluate(cfg, method, seed)`` translates the profile's test sets with the same generation
code as synthesis, extracts the translation from each reply by ``eval.extraction``, scores
BLEU/chrF (and COMET when a checkpoint is available, on the GPU when there is one), scores
general ability (the organism's exact skills; for a real backbone the benchmark suite of
``benchmarks.run_general_suite`` on the profile's ``eval.benchmarks``, RP over those that ran),
and writes ``runs/<profile>/results/<method>-seed<k>.json`` atomically. A re-run reads the file;
a file written under another profile or config is refused with its name.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from .. import data, models, verdicts
from ..config import Config, resolve_path
from ..engines import generate
from ..records import RecordError, read_json, settings_diff, write_json
from ..prompts import chat_prompt, translation_request
from ..replies import EXTRACTION_RULES, split_reply
from ..runtime import model_device, versions
from .scores import gain_ratio, relative_performance, rp_over_scored
from .tables import tidy_path, write_tidy
from .translation import comet_gpus, corpus_metrics, per_direction_table, score_comet_or_skip

BACKBONE = "backbone"  # the method name of the untrained model in results files


class ResultsError(ValueError):
    """A results file that does not belong to this run (the message names the file)."""


def results_path(cfg: Config, method: str, seed: int = 0, tag: str = "") -> Path:
    """``runs/<profile>/results/<method>[-<tag>]-seed<k>.json`` (the backbone: ``backbone.json``)."""
    name = BACKBONE if method == BACKBONE else f"{method}{'-' + tag if tag else ''}-seed{seed}"
    return cfg.runs_dir / "results" / f"{name}.json"


def translation_prompts(tokenizer: Any, pairs: Sequence[Any], instructions: Sequence[str]) -> list[str]:
    """Chat prompts for test pairs; pair ``i`` uses the profile's template ``i % len(instructions)``
    (all of them, evenly)."""
    return [chat_prompt(tokenizer, translation_request(p.source, p.src, p.tgt, i % len(instructions), instructions))
            for i, p in enumerate(pairs)]


def score_replies(replies: Sequence[str], pairs: Sequence[Any], rule: str) -> dict[str, Any]:
    """BLEU/chrF of the translations cut from ``replies`` by ``rule``, and how many replies go on."""
    split = [split_reply(r, rule) for r in replies]
    metrics = corpus_metrics([t for t, _ in split], [p.reference for p in pairs], pairs[0].tgt)
    metrics["rationale_share"] = round(100.0 * sum(bool(r) for _, r in split) / len(split), 2)
    return metrics


def checked_test_pairs(cfg: Config, direction: str) -> list[Any]:
    """The direction's test pairs; an empty source or reference is an error naming the pair."""
    pairs = data.test_pairs(cfg, direction)
    for i, p in enumerate(pairs):
        if not p.source.strip() or not p.reference.strip():
            raise ResultsError(f"test set {direction} ({p.origin or f'pair {i}'}): empty source or reference; "
                               "clean the test file (every line needs text on both sides)")
    return pairs


def replies_by_direction(cfg: Config, model: Any, tokenizer: Any,
                         sets: Mapping[str, Sequence[Any]]) -> dict[str, list[str]]:
    """Greedy replies to every direction's pairs (the profile's eval settings), all directions in
    one ``generate`` call, so a batch spans directions (8 directions of 2 sentences: one batch of
    16, not 8 batches of 2)."""
    prompts = [p for d in sets for p in translation_prompts(tokenizer, sets[d], cfg.prompts.instructions)]
    replies = generate(model, tokenizer, prompts, cfg.eval.max_new_tokens, cfg.eval.batch_size, engine=cfg.eval.engine)
    out, start = {}, 0
    for d, pairs in sets.items():
        out[d], start = replies[start:start + len(pairs)], start + len(pairs)
    return out


def translate(cfg: Config, model: Any, tokenizer: Any, directions: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Greedy replies to every direction's test set (``replies_by_direction``), scored per
    direction under the profile's extraction rule."""
    sets = {d: checked_test_pairs(cfg, d) for d in directions}
    out = {}
    for d, mine in replies_by_direction(cfg, model, tokenizer, sets).items():
        pairs = sets[d]
        scores = score_replies(mine, pairs, cfg.eval.extraction)
        comet, message = comet_of_replies(cfg, pairs, mine, cfg.eval.extraction)
        if comet is not None:
            scores["comet"] = comet["comet"]
        out[d] = {**scores, "comet_note": message, "replies": mine}
    return out


def comet_of_replies(cfg: Config, pairs: Sequence[Any], replies: Sequence[str],
                     extraction: str) -> tuple[dict[str, Any] | None, str]:
    """COMET of the translations cut from ``replies`` by ``extraction`` (``score_comet_or_skip``;
    never for the organism), for freshly generated and for stored replies alike."""
    comet_model = None if cfg.data.source == "organism" else cfg.eval.comet_model
    return score_comet_or_skip(comet_model, [p.source for p in pairs], [split_reply(r, extraction)[0] for r in replies],
                               [p.reference for p in pairs], cfg.eval.batch_size, comet_gpus())


def general_ability(cfg: Config, model: Any, tokenizer: Any,
                    model_id: str = BACKBONE) -> tuple[dict[str, float], list[str]]:
    """``({skill or benchmark: score}, notes)``: the organism's skills, scored exactly; for a real
    backbone the benchmarks of ``general_suite`` that ran, and a note per skipped one."""
    if cfg.data.source != "organism":
        suite = general_suite(cfg, model, tokenizer, model_id)
        return suite["general"], suite["notes"]
    scores, notes, _ = organism_general(cfg, model, tokenizer)
    return scores, notes


def organism_general(cfg: Config, model: Any, tokenizer: Any) -> tuple[dict[str, float], list[str], dict[str, Any]]:
    """The organism's skills on the decontaminated items (``disjoint.decontaminated``): scores,
    a note on what was left out, and the scan (kept in the results file)."""
    from ..organism import organism_config, score_general
    from .disjoint import decontaminated

    world = organism_config(cfg).world()
    items, scan = decontaminated(cfg)
    scores = score_general(model, tokenizer, world, cfg.eval.general_items, seed=0, items=items)
    scores.pop("mean")
    left = {s: len(v) for s, v in scan["excluded"].items() if v}
    note = (f"disjoint evaluation: scanned the stage-2 texts of {', '.join(scan['scanned'])}; "
            + (f"left out the scored items found in them ({', '.join(f'{s} {n}' for s, n in left.items())} "
               f"of {cfg.eval.general_items} each)" if left else "no scored item found in them"))
    return scores, [note], scan


def general_suite(cfg: Config, model: Any, tokenizer: Any, model_id: str) -> dict[str, Any]:
    """A real backbone's general suite (``benchmarks.run_general_suite``, the profile's ``eval``
    settings; answer files under ``runs/<profile>/results/general/<model_id>/``): ``general``
    (the scores that ran), ``benchmarks`` (all asked), ``general_details`` (n, judge, ...), ``notes``."""
    benchmarks = list(cfg.eval.benchmarks)
    if not benchmarks:
        return {"general": {}, "benchmarks": [], "general_details": {},
                "notes": ["no general benchmarks asked (eval.benchmarks: [])"]}
    try:
        from .benchmarks import run_general_suite
    except ModuleNotFoundError as err:
        if err.name != f"{__package__}.benchmarks":
            raise
        raise ResultsError(f"profile {cfg.profile!r}: the general suite needs {__package__}.benchmarks "
                           "(GSM8K, AdvBench, MT-Bench, AlpacaEval), which this checkout lacks; update "
                           "radis_utils, or evaluate translation only with eval.benchmarks: []") from None
    out = run_general_suite(model, tokenizer, benchmarks_dir=resolve_path(cfg.eval.benchmarks_dir),
                            out_dir=cfg.runs_dir / "results" / "general" / model_id, limit=cfg.eval.benchmark_limit,
                            benchmarks=benchmarks, guard_model=cfg.eval.guard_model,
                            max_new_tokens=cfg.eval.general_max_new_tokens, batch_size=cfg.eval.batch_size,
                            model_id=f"{cfg.profile}-{model_id}", engine=cfg.eval.engine)
    return suite_fields(benchmarks, out["scores"], out["details"])


def suite_fields(benchmarks: list[str], scores: Mapping[str, Any], details: dict[str, Any]) -> dict[str, Any]:
    """A results file's general-suite fields from the suite's scores and details."""
    notes = [f"{b} skipped: {_skip_reason(details.get(b))}" for b in benchmarks if scores.get(b) is None]
    return {"general": {b: float(scores[b]) for b in benchmarks if scores.get(b) is not None},
            "benchmarks": benchmarks, "general_details": details, "notes": notes}


def _skip_reason(detail: Any) -> str:
    """Why a benchmark has no score, from its details entry (``skipped`` or ``reason``)."""
    if isinstance(detail, Mapping):
        return str(detail.get("skipped") or detail.get("reason") or "no reason given")
    return "no details given"


def evaluate_model(cfg: Config, model: Any, tokenizer: Any, model_id: str = BACKBONE) -> dict[str, Any]:
    """Translation per direction (with en->X / X->en averages) and general ability of one model."""
    per_direction = translate(cfg, model, tokenizer, cfg.data.directions)
    if cfg.data.source == "organism":
        from .disjoint import decontaminated

        general, notes = general_ability(cfg, model, tokenizer)
        scan = decontaminated(cfg)[1]  # the items general_ability scored (cached)
        extra: dict[str, Any] = {"general_excluded": scan["excluded"], "general_scanned": scan["scanned"]}
    else:
        extra = general_suite(cfg, model, tokenizer, model_id)
        general, notes = extra.pop("general"), extra.pop("notes")
    return {"translation": per_direction_table({d: {k: v for k, v in m.items() if k != "replies"}
                                                for d, m in per_direction.items()}),
            "replies": {d: m["replies"] for d, m in per_direction.items()},
            "general": general, "notes": notes, **extra}


def evaluate(cfg: Config, method: str, seed: int = 0, tag: str = "") -> dict[str, Any]:
    """Results of the backbone (``method="backbone"``) or of a finished adapter; cached on disk."""
    path = results_path(cfg, method, seed, tag)
    if path.is_file():
        result = judge_stored(cfg, path, score_stored(cfg, path))
        if not tidy_path(path).is_file():  # a file from before the tidy tables
            write_tidy(path, result)
        return result
    start = time.time()
    tokenizer = models.load_tokenizer(cfg)
    if method == BACKBONE:
        model = models.load_model(cfg)
    else:
        from ..train import adapter_dir

        folder = adapter_dir(cfg, method, seed, tag)
        check_adapter(cfg, folder, method, seed)
        model = models.load_adapter(cfg, folder, merge=cfg.model.quantization is None)  # QLoRA: on its 4-bit base
        if (folder / "tokenizer_config.json").is_file():  # the adapter's own tokenizer (profile template applied)
            tokenizer = models.load_tokenizer(cfg, str(folder))
    result = {"profile": cfg.profile, "config_hash": models.config_hash(cfg), "settings": cfg.to_dict(),
              "method": method, "seed": None if method == BACKBONE else seed, "tag": tag,
              **evaluate_model(cfg, model, tokenizer, path.stem), "extraction": cfg.eval.extraction}
    if method != BACKBONE and result["general"] and cfg.data.source != "organism":
        result["rp"], result["rp_benchmarks"] = rp_over_scored(evaluate(cfg, BACKBONE)["general"], result["general"])
    elif method != BACKBONE and result["general"]:
        base = evaluate(cfg, BACKBONE)
        if base.get("general_excluded") != result["general_excluded"]:
            raise ResultsError(f"{results_path(cfg, BACKBONE)}: the backbone was scored on other general items "
                               f"(left out: {base.get('general_excluded')}) than {method} seed {seed} "
                               f"({result['general_excluded']}); the training files changed since: delete "
                               f"{results_path(cfg, BACKBONE).parent} and evaluate again")
        result["rp"] = round(relative_performance(base["general"], result["general"]), 2)
    else:
        result["rp"] = 100.0 if result["general"] else None
    result.update(versions=versions(), device=model_device(model), elapsed_s=round(time.time() - start, 1),
                  metrics=metrics_present(result))
    write_json(path, result, indent=1)
    write_tidy(path, result)
    return result


def metrics_present(result: Mapping[str, Any]) -> list[str]:
    """The translation metrics every direction of ``result`` has (e.g. ``["bleu", "chrf"]``: no COMET)."""
    rows = [v for k, v in result["translation"].items() if not k.startswith("avg_")]
    if not rows:
        return []
    return sorted(set.intersection(*({k for k, v in r.items() if isinstance(v, (int, float)) and k != "n"}
                                     for r in rows)))


def score_stored(cfg: Config, path: Path) -> dict[str, Any]:
    """A results file, with COMET added from its stored replies where it lacks it and this
    environment can score it (no model is loaded: the replies are in the file); rewritten then.
    A file written where COMET was missing (the GPU environment) gains it when read in the
    evaluation environment (environment-eval.yml)."""
    result = read_results(path, cfg)
    replies = result.get("replies") or {}
    missing = [d for d in replies if "comet" not in result["translation"].get(d, {})]
    if not missing or cfg.data.source == "organism" or not cfg.eval.comet_model:
        return result
    extraction = result.get("extraction", cfg.eval.extraction)
    per = {d: dict(v) for d, v in result["translation"].items() if not d.startswith("avg_")}
    for d in missing:
        pairs = checked_test_pairs(cfg, d)
        if len(pairs) != len(replies[d]):
            raise ResultsError(f"{path}: {len(replies[d])} stored replies for {d} but {len(pairs)} test pairs; "
                               "the test set changed since: delete the file and evaluate again")
        comet, message = comet_of_replies(cfg, pairs, replies[d], extraction)
        if comet is None:
            return result  # this environment cannot add it either; the file stays as it is
        per[d].update(comet=comet["comet"], comet_note=message)
    result = {**result, "translation": per_direction_table(per)}
    result["metrics"] = metrics_present(result)
    write_json(path, result, indent=1)
    write_tidy(path, result)
    return result


def judge_stored(cfg: Config, path: Path, result: dict[str, Any]) -> dict[str, Any]:
    """A results file whose MT-Bench or AlpacaEval went unjudged (no judge then, or it was down),
    judged from the stored answers once a judge answers (``benchmarks.rejudge``); RP follows; rewritten."""
    from .benchmarks import rejudge, unjudged

    if cfg.data.source == "organism" or not unjudged(result.get("general") or {}, result.get("general_details") or {}):
        return result
    out = rejudge(cfg.runs_dir / "results" / "general" / path.stem, benchmarks_dir=resolve_path(cfg.eval.benchmarks_dir),
                  limit=cfg.eval.benchmark_limit, max_new_tokens=cfg.eval.general_max_new_tokens,
                  batch_size=cfg.eval.batch_size, model_id=f"{cfg.profile}-{path.stem}", engine=cfg.eval.engine)
    if out is None:
        return result
    result = {**result, **suite_fields(result["benchmarks"], out["scores"], out["details"])}
    if result.get("method") != BACKBONE:
        result["rp"], result["rp_benchmarks"] = rp_over_scored(evaluate(cfg, BACKBONE)["general"], result["general"])
    write_json(path, result, indent=1)
    write_tidy(path, result)
    return result


def check_adapter(cfg: Config, folder: Path, method: str, seed: int) -> None:
    """Refuse (``ResultsError`` naming the file and the settings) an unfinished adapter, or one
    trained with other settings than ``cfg`` asks (its ``summary.json`` key vs ``train.train_key``)."""
    from ..train import read_summary, train_key

    if not (folder / "adapter_config.json").is_file():
        return  # models.load_adapter says "train it first"
    summary = read_summary(folder)
    if summary is None:
        raise ResultsError(f"{folder}: no summary.json, so its training did not finish; run the training "
                           "again (it resumes from its last checkpoint) before evaluating")

    def without_source(key: Any) -> dict[str, Any]:  # another model's rationales (chapter 07) is allowed
        return {k: v for k, v in dict(key or {}).items() if k != "rationale_source"}

    diff = settings_diff(without_source(summary.get("key")), without_source(train_key(cfg, method, seed, None)))
    if diff:
        raise ResultsError(f"{folder}/summary.json: this adapter was trained with other settings than profile "
                           f"{cfg.profile!r} asks ({'; '.join(diff[:6])}{' ...' if len(diff) > 6 else ''}); "
                           f"evaluate it with the settings it was trained with, or delete {folder} and train again")


def read_results(path: str | Path, cfg: Config | None = None) -> dict[str, Any]:
    """A results file, checked against ``cfg`` (same profile and config hash) when given."""
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path}: no such results file; run chapter 06 (or evaluate.evaluate) first")
    try:
        result = read_json(path)
    except RecordError as err:  # damaged: named with its line, as a results error callers handle
        raise ResultsError(f"{err} (here: delete it and evaluate again)") from None
    if not isinstance(result, dict):
        raise ResultsError(f"{path}: expected a JSON object, got {type(result).__name__}; delete it and "
                           "evaluate again")
    for field in ("profile", "config_hash", "method", "translation", "general"):
        if field not in result:
            raise ResultsError(f"{path}: field '{field}' missing; delete it and evaluate again")
    if cfg is not None:
        check_provenance(path, result, cfg, "delete the file (or the results folder) to re-evaluate")
    return result


def check_provenance(path: Path, result: Mapping[str, Any], cfg: Config, remedy: str) -> None:
    """Refuse (``ResultsError`` naming ``path``) a results file written under another profile or config."""
    if (result.get("profile"), result.get("config_hash")) != (cfg.profile, models.config_hash(cfg)):
        diff = settings_diff(result["settings"], cfg.to_dict()) if isinstance(result.get("settings"), dict) else []
        shown = f" (differing: {'; '.join(diff[:6])}{' ...' if len(diff) > 6 else ''})" if diff else ""
        raise ResultsError(f"{path}: written by profile {result.get('profile')!r} with config "
                           f"{result.get('config_hash')}, but this run is {cfg.profile!r} with config "
                           f"{models.config_hash(cfg)}{shown}; {remedy}")


def extraction_effect(result: Mapping[str, Any], cfg: Config, rules: Sequence[str] = EXTRACTION_RULES) -> dict[str, dict]:
    """chrF/BLEU of one model's stored replies under every extraction rule (first direction)."""
    direction = next(iter(result["replies"]))
    pairs = data.test_pairs(cfg, direction)
    return {rule: score_replies(result["replies"][direction], pairs, rule) for rule in rules}


def headline(result: Mapping[str, Any], metric: str = "chrf") -> float:
    """One translation number per model: ``metric`` averaged over all directions."""
    rows = [v[metric] for k, v in result["translation"].items() if not k.startswith("avg_")]
    return round(sum(rows) / len(rows), 2)


#: The organism's pre-registered acceptance (ci), on the mean over seeds:
#: ``name: (value, operator, limit)``. "gain" is a method's chrF gain over the backbone.
ACCEPTANCE: dict[str, tuple[str, str, float]] = {
    "vanilla RP ≤ 40": ("vanilla_rp", "<=", 40.0),
    "RaDis RP ≥ 85": ("radis_rp", ">=", 85.0),
    "vanilla chrF ≤ 95": ("vanilla_chrf", "<=", 95.0),
    "RaDis gain ≥ 0.85 × vanilla gain": ("radis_gain_ratio", ">=", 0.85),
    "Seq-KD RP ≥ 80": ("seqkd_rp", ">=", 80.0),
    "Seq-KD gain ≤ 0.4 × RaDis gain": ("seqkd_vs_radis_gain", "<=", 0.4),
    "SDFT RP ≥ 70": ("sdft_rp", ">=", 70.0),
    "SDFT gain < RaDis gain": ("sdft_vs_radis_gain", "<", 1.0),
}
def threshold_holds(op: str, value: float, limit: float) -> bool:
    """Whether ``value op limit`` holds, for the operators of ``ACCEPTANCE`` (``verdicts.holds``)."""
    return verdicts.holds(op, value, limit)


def acceptance_values(backbone: Mapping[str, Any], by_method: Mapping[str, Sequence[Mapping[str, Any]]],
                      metric: str = "chrf") -> dict[str, float]:
    """The seed-mean values ``ACCEPTANCE`` reads, for the methods ``by_method`` holds."""
    def mean(values: Sequence[float]) -> float:
        return sum(values) / len(values)

    base = headline(backbone, metric)
    score = {m: mean([headline(r, metric) for r in rs]) for m, rs in by_method.items()}
    # RP is undefined when the backbone scored 0 on every benchmark that ran (a ratio to 0), and a
    # gain ratio when the reference gained nothing: such values are left out, not made up
    values = {f"{m}_rp": mean([r["rp"] for r in rs]) for m, rs in by_method.items()
              if all(r.get("rp") is not None for r in rs)}
    if "vanilla" in score:
        values["vanilla_chrf"] = score["vanilla"]
    if {"radis", "vanilla"} <= score.keys() and score["vanilla"] != base:
        values["radis_gain_ratio"] = gain_ratio(base, score["radis"], score["vanilla"])
    for m in ("seqkd", "sdft"):
        if {m, "radis"} <= score.keys() and score["radis"] != base:
            values[f"{m}_vs_radis_gain"] = gain_ratio(base, score[m], score["radis"])
    return values


def acceptance(backbone: Mapping[str, Any], by_method: Mapping[str, Sequence[Mapping[str, Any]]],
               metric: str = "chrf") -> dict[str, dict[str, Any]]:
    """Each ``ACCEPTANCE`` check on the seed-mean of RP and translation gains over the backbone
    (a check whose methods ``by_method`` lacks, or whose value is undefined, is left out)."""
    values = acceptance_values(backbone, by_method, metric)
    out = {}
    for name, (key, op, limit) in ACCEPTANCE.items():
        if key in values:
            out[name] = {"value": round(values[key], 3), "threshold": limit, "holds": threshold_holds(op, values[key], limit)}
    return out
