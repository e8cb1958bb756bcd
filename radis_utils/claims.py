"""Every claim of the paper as one row: the paper's number, ours, the threshold, a 95 % interval
and the verdict of ``radis_utils.verdicts`` (its rule is the only one used).

Where the numbers come from, per profile:

- the organism (``ci``) with a current calibration record: one value per *world build* (a
  world's data, backbone and trainings on one machine's kernels; the mean of its training
  seeds, the same seed of every method paired) and a t-interval over the worlds. Seeds of one
  world share its backbone and data, so they are not independent units. A build of the same
  world on other kernels is another draw of that world (``radis_utils.machines`` measures how
  far world 0 moves), so the machine-to-machine spread is part of the world-to-world spread the
  interval is made of, and the record's worlds come from more than one machine;
- any other build (a real model, or the organism without a current record): this build's
  seeds, or with one seed a paired bootstrap over the test sentences for translation values;
  RP has no item-level interval here, so RP values with one seed are *inconclusive*, and an
  undefined RP (a backbone at 0 on every benchmark) is *not run*.

Nothing here reruns a stage: it reads the results files chapters 02 and 05-08 wrote, and the
committed records under ``calibration/``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from . import calibration, evaluate, gradients, machines, observation, paper, verdicts
from .config import Config
from .evaluate import ResultsError
from .replies import split_reply
from .summary import load_ablation_results, load_gradient_results, load_method_results

#: Per method in a run: ``(chrF, RP or None)``; the backbone under ``"backbone"``.
Run = Mapping[str, tuple[float, float | None]]


@dataclass(frozen=True)
class Claim:
    """One claim: its label, where the paper says it, and the threshold on ``key`` that grades it."""

    name: str
    where: str
    key: str
    op: str
    limit: float
    fmt: str = "{:.3g}"
    unit: str = ""  # after the interval, e.g. "RP" or "chrF"
    tuned: bool = False  # the organism's recipe was tuned while looking at this value (chapter 00)
    bounds: tuple[float, float] | None = None  # a share's interval is cut to what it can be


#: Tables 1-3 and fig. 1 (chapter 06). Thresholds: chapter 00 (pre-registered before the runs
#: they grade; the four marked ``tuned`` were looked at while the stage-2 learning rate was set).
METHOD_CLAIMS: tuple[Claim, ...] = (
    Claim("Vanilla-FT improves translation", "tables 1-2", "vanilla_gain", ">", 0.0, "{:+.2f}", "chrF"),
    Claim("Vanilla-FT loses general ability", "table 3", "vanilla_rp", "<=", 40.0, "{:.1f}", "RP", True),
    Claim("RaDis keeps general ability", "table 3", "radis_rp", ">=", 85.0, "{:.1f}", "RP", True),
    Claim("RaDis translates almost as well as Vanilla-FT", "tables 1-2", "radis_gain_ratio", ">=", 0.85,
          "{:.3f}", "gain ratio", True),
    Claim("Seq-KD gains little translation", "tables 1-2", "seqkd_vs_radis_gain", "<=", 0.4,
          "{:.3f}", "gain ratio", True),
    Claim("Seq-KD keeps general ability", "table 3", "seqkd_rp", ">=", 80.0, "{:.1f}", "RP"),
    Claim("SDFT keeps general ability", "table 3", "sdft_rp", ">=", 70.0, "{:.1f}", "RP"),
    Claim("SDFT gains less translation than RaDis", "tables 1-2", "sdft_vs_radis_gain", "<", 1.0, "{:.3f}", "gain ratio"),
    Claim("SDFT translates below the backbone (Mistral, en→X)", "table 1", "sdft_gain", "<", 0.0, "{:+.2f}", "chrF"),
    Claim("RaDis gives the best balance of translation and general ability", "fig. 1, §4.4", "balance_margin",
          ">", 0.0, "{:+.3f}"),
    Claim("RP order: Seq-KD keeps more than RaDis", "table 3", "seqkd_minus_radis_rp", ">", 0.0, "{:+.1f}", "RP"),
    Claim("RP order: RaDis keeps more than SDFT", "table 3", "radis_minus_sdft_rp", ">", 0.0, "{:+.1f}", "RP"),
)
ABLATION_CLAIM = Claim("Self-generated rationales keep the most general ability", "table 5", "self_rp_margin",
                       ">", 0.0, "{:+.1f}", "RP over the best other source")
OBSERVATION_CLAIMS: tuple[Claim, ...] = (
    Claim("Chat LLMs follow most translations with a rationale", "§3.1", "rationale_share", ">", 0.5, "{:.0%}",
          bounds=(0.0, 1.0)),
    Claim("Rationales carry diverse knowledge (table 4's categories)", "table 4", "table4_categories", ">=", 4,
          "{:.1f}", "of 8 categories in ≥ 5 % of rationales"),
)
#: Fig. 4 on both measurements: LESS's Adam features (``gradients.PRIMARY``) and raw gradients.
GRADIENT_MEASUREMENTS = {"LESS features": {}, "raw gradients": {"preconditioner": "sgd"}}
NOT_CHECKED: tuple[tuple[str, str, str], ...] = (
    ("LLaMA-3-70B's rationales beat LLaMA-2's except on safety", "table 5",
     "needs LLaMA-3-70B-Instruct and LLaMA-2-Chat as rationale writers; no hub or GPU here. Note that the "
     "paper's 'much stronger model' scores below the self-generated variant on general ability there "
     "(RP 89.5 vs 97.5 computed from table 5's benchmarks)"),
    ("RaDis is competitive with prior LLM-based MT models", "tables 1-3",
     "ParroT, BigTrans, BayLing and ALMA are 7B models with their own training data; their numbers are "
     "typed in (chapter 09), none can be run here"),
)
CATEGORY_SHARE = 0.05  # a table-4 category counts as present in ≥ 5 % of rationales (paper: all 8 are)


# --- values -------------------------------------------------------------------------------

def _gain_ratio(base: float, method: float, reference: float) -> float | None:
    return None if reference == base else evaluate.gain_ratio(base, method, reference)


def run_values(run: Run) -> dict[str, float]:
    """Every method claim's value on one run (undefined values left out)."""
    base = run["backbone"][0]
    chrf = {m: v[0] for m, v in run.items()}
    rp = {m: v[1] for m, v in run.items() if v[1] is not None and m != "backbone"}
    out: dict[str, float] = {f"{m}_rp": r for m, r in rp.items()}
    gain = {m: c - base for m, c in chrf.items()}
    for m in ("vanilla", "sdft"):
        if m in gain:
            out[f"{m}_gain"] = gain[m]
    if "vanilla" in chrf and "radis" in chrf and (g := _gain_ratio(base, chrf["radis"], chrf["vanilla"])) is not None:
        out["radis_gain_ratio"] = g
    for m in ("seqkd", "sdft"):
        if m in chrf and "radis" in chrf and (g := _gain_ratio(base, chrf[m], chrf["radis"])) is not None:
            out[f"{m}_vs_radis_gain"] = g
    if {"seqkd", "radis"} <= rp.keys():
        out["seqkd_minus_radis_rp"] = rp["seqkd"] - rp["radis"]
    if {"sdft", "radis"} <= rp.keys():
        out["radis_minus_sdft_rp"] = rp["radis"] - rp["sdft"]
    regularised = ("radis", "seqkd", "sdft")
    if "vanilla" in chrf and gain["vanilla"] != 0 and set(regularised) <= rp.keys():
        balance = {m: min(gain[m] / gain["vanilla"], rp[m] / 100) for m in regularised}
        out["balance_margin"] = balance["radis"] - max(balance["seqkd"], balance["sdft"])
    return out


def paper_values(backbone: str, side: str) -> dict[str, float]:
    """``run_values`` on the paper's own numbers: one backbone, one side's COMET average
    (``en-xx`` or ``xx-en``, tables 1-2) and table 3's RP; a lost cell leaves its values out."""
    t, g = paper.TRANSLATION.value[side][backbone], paper.GENERAL_ABILITY.value[backbone]
    run = {m: (t[m]["avg"], g[m]["rp"] if m != "backbone" else None) for m in paper.ROWS if t[m]["avg"] is not None}
    return run_values(run) if "backbone" in run else {}


def paper_text(claim: Claim) -> str:
    """The paper's value of ``claim`` per backbone and side, as computed from its tables."""
    parts = []
    for side, label in (("en-xx", "en→X"), ("xx-en", "X→en")):
        got = [paper_values(b, side).get(claim.key) for b in paper.BACKBONES]
        if any(v is not None for v in got):
            parts.append(f"{label} " + " / ".join("lost" if v is None else f"{v:.3g}" for v in got))
    if "_rp" in claim.key and parts:  # RP does not depend on the side
        return f"{claim.where}: {parts[0].split(' ', 1)[1]} (LLaMA-2 / Mistral; RP %)"
    return f"{claim.where}: " + ("; ".join(parts) + " (LLaMA-2 / Mistral; on COMET)" if parts else "-")


def world_runs(world: Mapping[str, Any]) -> list[Run]:
    """A calibration world's runs, one per training seed (every method's same seed)."""
    seeds = min(len(rs) for rs in world["methods"].values())
    return [{"backbone": (world["backbone"]["chrf"], None),
             **{m: (rs[k]["chrf"], rs[k]["rp"]) for m, rs in world["methods"].items()}} for k in range(seeds)]


def world_mean(world: Mapping[str, Any]) -> dict[str, float]:
    """The seed mean of every value of one world (or of one build), fig. 4's LESS shares included."""
    runs = [run_values(r) for r in world_runs(world)]
    shares = fig4_runs(world)
    if len(shares) == len(runs):
        runs = [{**r, **s} for r, s in zip(runs, shares)]
    keys = set.intersection(*(set(r) for r in runs)) if runs else set()
    return {k: sum(r[k] for r in runs) / len(runs) for k in keys}


def machine_margins(profile: str) -> dict[str, float]:
    """Per value: the spread (max - min) of world 0's seed mean over the builds of the committed
    ``machines`` record (other kernels, other machines); {} without a record."""
    record = machines.read_record(profile)
    if record is None:
        return {}
    builds = [world_mean(b) for b in record["builds"].values()]
    keys = set.intersection(*(set(b) for b in builds)) if len(builds) > 1 else set()
    return {k: max(b[k] for b in builds) - min(b[k] for b in builds) for k in keys}


def machine_vs_world_spread(profile: str, record: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """Per graded value: world 0's spread between builds on other kernels (``machine_margins``)
    beside the spread (max - min) and standard deviation of the record's worlds; ``None``
    without a machines record."""
    margins = machine_margins(profile)
    if not margins:
        return None
    means = [world_mean(w) for w in record["worlds"]]
    rows = []
    for key, machine in margins.items():
        values = [m[key] for m in means if key in m]
        if len(values) >= 2:
            rows.append({"value": key, "world 0 between machines": machine,
                         "between worlds (max - min)": max(values) - min(values),
                         "between worlds (sd)": verdicts.mean_sd(values)[1]})
    return rows


# --- intervals ----------------------------------------------------------------------------

def organism_intervals(record: Mapping[str, Any]) -> dict[str, verdicts.Interval]:
    """Every value over the record's world builds: a t-interval over the worlds' seed means."""
    worlds = record["worlds"]
    machines_used = len({w.get("built", {}).get("cpu", "the record's first machine") for w in worlds})
    unit = f"worlds (built on {machines_used} machine{'s' * (machines_used > 1)}; each the mean of its seeds)"
    return t_intervals([world_mean(w) for w in worlds], unit)


def fig4_runs(world: Mapping[str, Any]) -> list[dict[str, float]]:
    """Fig. 4's LESS shares per seed of a calibration world (its ``"k/n"`` counts)."""
    fig4 = world.get("fig4") or {}
    share = lambda c: int(c.split("/")[0]) / int(c.split("/")[1])
    pairs = zip(fig4.get("radis_positive", []), fig4.get("seqkd_negative", []))
    return [{"fig4_radis_LESS features": share(r), "fig4_seqkd_LESS features": share(s)}
            for r, s in pairs if "/" in r and "/" in s]


def t_intervals(runs: Sequence[Mapping[str, float]], unit: str) -> dict[str, verdicts.Interval]:
    """Every value's t-interval over the ``runs`` that have it (values of fewer than two runs are left out)."""
    out = {}
    for key in dict.fromkeys(k for r in runs for k in r):
        values = [r[key] for r in runs if key in r]
        if len(values) >= 2:
            out[key] = verdicts.t_interval(values, unit=unit)
    return out


def seed_intervals(runs: Sequence[Mapping[str, float]]) -> dict[str, verdicts.Interval]:
    """Every value over this build's seeds (needs two seeds or more)."""
    return t_intervals(runs, "training seeds of this build")


def bootstrap_translation(backbone: Mapping[str, Any], by_method: Mapping[str, Sequence[Mapping[str, Any]]],
                          references: Mapping[str, Sequence[str]], extraction: str,
                          resamples: int = 1000) -> dict[str, verdicts.Interval]:
    """One seed per method: the translation values (gains, gain ratios) by a paired bootstrap
    over the test sentences, resampled within each direction, every model on the same sentences
    (chrF of the translation cut from each stored reply by ``extraction``)."""
    from .evaluate.translation import chrf_of, chrf_statistics

    models = {"backbone": backbone, **{m: rs[0] for m, rs in by_method.items()}}
    directions = list(references)
    # sentence statistics once (sacreBLEU's own significance tests resample them the same way)
    stats = {(m, d): chrf_statistics([split_reply(r, extraction)[0] for r in res["replies"][d]], references[d])
             for m, res in models.items() for d in directions}

    def statistic(picks: Sequence[Sequence[int]]) -> dict[str, float]:
        run = {}
        for m in models:
            per = [chrf_of(stats[m, d], idx) for d, idx in zip(directions, picks)]
            run[m] = (sum(per) / len(per), None)
        return run_values(run)

    return verdicts.paired_bootstrap([len(references[d]) for d in directions], statistic, resamples)


# --- rows ---------------------------------------------------------------------------------

def row(claim: Claim, paper_said: str, interval: verdicts.Interval | None, why_not: str = "",
        point: float | None = None) -> dict[str, Any]:
    """One table row: the claim graded by ``verdicts.grade`` on ``interval``. Without one, a
    measured ``point`` is shown and the row is *inconclusive* (``why_not`` says why there is no
    interval); with neither it is *not run*."""
    out = {"claim": claim.name, "paper": paper_said, "threshold": f"{claim.op} {claim.limit:g}",
           "ours: mean [95 % interval]": "-", "verdict": verdicts.NOT_RUN, "n to decide": "",
           "tuned": "yes" if claim.tuned else "no", "interval": why_not}
    f = lambda v: claim.fmt.format(v)
    shown = lambda *parts: " ".join(p for p in parts if p)
    if interval is None:
        if point is not None:
            out.update({"ours: mean [95 % interval]": shown(f(point), claim.unit, "(no interval)"),
                        "verdict": verdicts.INCONCLUSIVE})
        return out
    if claim.bounds is not None:
        interval = dataclasses.replace(interval, lo=max(interval.lo, claim.bounds[0]),
                                       hi=min(interval.hi, claim.bounds[1]))
    verdict = verdicts.grade(interval, claim.op, claim.limit)
    out.update({"ours: mean [95 % interval]": shown(f(interval.mean), f"[{f(interval.lo)}, {f(interval.hi)}]", claim.unit),
                "verdict": verdict, "interval": interval.method})
    if verdict == verdicts.INCONCLUSIVE:
        n = verdicts.n_to_decide(interval, claim.limit)
        out["n to decide"] = f"≈ {n} {interval.unit}" if n else "none: the mean is on the threshold"
    return out


def _runs_of_build(backbone: Mapping[str, Any], by_method: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[Run]:
    seeds = min((len(rs) for rs in by_method.values()), default=0)
    return [{"backbone": (evaluate.headline(backbone), None),
             **{m: (evaluate.headline(rs[k]), rs[k].get("rp")) for m, rs in by_method.items()}} for k in range(seeds)]


def method_rows(cfg: Config) -> list[dict[str, Any]]:
    """Tables 1-3 and fig. 1: every ``METHOD_CLAIMS`` row, graded on the calibration record where
    one is current (the organism), else on this build (``build_evidence``)."""
    record = calibration.current_record(cfg)
    intervals, why, points = evidence(cfg, record)
    return [row(c, paper_text(c), intervals.get(c.key), why.get(c.key, why["*"]), points.get(c.key))
            for c in METHOD_CLAIMS]


def evidence(cfg: Config, record: Mapping[str, Any] | None) -> tuple[dict[str, verdicts.Interval], dict[str, str], dict[str, float]]:
    """``(intervals by value, why a value has none, point values without an interval)`` for the
    method claims."""
    if record is not None:
        return organism_intervals(record), {"*": "undefined on the record's runs"}, {}
    backbone, by_method = load_method_results(cfg)
    if backbone is None or not by_method:
        return {}, {"*": "not run (chapters 05-06)"}, {}
    runs = _runs_of_build(backbone, by_method)
    if len(runs) >= 2:
        return seed_intervals([run_values(r) for r in runs]), {"*": "undefined in this build"}, {}
    points = run_values(runs[0]) if runs else {}
    why = {k: "one seed and no item-level interval for RP: run more seeds" for k in points if "rp" in k}
    why["*"] = "undefined here (RP needs a benchmark the backbone scores above 0; a ratio needs a gain)"
    if "replies" not in backbone:
        return {}, why, points
    refs = {d: [p.reference for p in evaluate.suite.checked_test_pairs(cfg, d)] for d in backbone["replies"]}
    few = min(len(r) for r in refs.values())
    if few < verdicts.MIN_BOOTSTRAP:
        why.update({k: f"one seed and {few} test sentences per direction: too few for a bootstrap "
                       f"({verdicts.MIN_BOOTSTRAP} needed)" for k in points if "rp" not in k})
        return {}, why, points
    return bootstrap_translation(backbone, by_method, refs, cfg.eval.extraction), why, points


def gradient_rows(cfg: Config) -> list[dict[str, Any]]:
    """Fig. 4: RaDis's cosine positive and Seq-KD's negative in ≥ ``gradients.THRESHOLD`` of the
    units, on the mean over runs, for both measurements."""
    record = calibration.current_record(cfg)
    results = load_gradient_results(cfg)
    signs = paper.GRADIENT_SIGNS.value
    rows = []
    for label, where in GRADIENT_MEASUREMENTS.items():
        intervals: dict[str, verdicts.Interval] = {}
        points: dict[str, float] = {}
        if record is not None and not where:
            intervals = organism_intervals(record)
        elif results:
            check = gradients.acceptance(results, **where)
            per_seed = [{f"fig4_{m}_{label}": v for m, vs in check["shares"].items() for v in [vs[i]] if v is not None}
                        for i in range(len(results))]
            intervals = seed_intervals(per_seed)
            points = per_seed[0] if len(per_seed) == 1 else {}
        for method, sign, said in (("radis", "positive", signs["radis_positive"]), ("seqkd", "negative", signs["seqkd_negative"])):
            name = "RaDis" if method == "radis" else "Seq-KD"
            claim = Claim(f"{name}'s regulariser {'agrees' if sign == 'positive' else 'conflicts'} with the MT "
                          f"gradient ({label})", "fig. 4", f"fig4_{method}_{label}", ">=", gradients.THRESHOLD,
                          "{:.0%}", f"of units {sign}", bounds=(0.0, 1.0))
            why = "not run (chapter 08)" if not results and record is None else "one seed: run more seeds"
            rows.append(row(claim, f"fig. 4: {sign} in {said} of {signs['layers']} layers "
                                   f"({said / signs['layers']:.0%})", intervals.get(claim.key), why,
                            point=points.get(claim.key)))
    return rows


def ablation_row(cfg: Config) -> dict[str, Any]:
    """Table 5: self-generated rationales keep more general ability than every other source's
    (per seed: self RP minus the best other source's RP)."""
    _, by_method = load_method_results(cfg, ("radis",))
    others = load_ablation_results(cfg)
    said = "table 5 (Mistral): self-generated best on MT-Bench, AlpacaEval, AlpacaEval 2.0 and GSM8K"
    if not others or not by_method.get("radis"):
        return row(ABLATION_CLAIM, said, None, "not run (chapter 07)")
    own = by_method["radis"]
    runs = [{"self_rp_margin": own[k]["rp"] - max(rs[k]["rp"] for rs in others.values())}
            for k in range(len(own)) if own[k].get("rp") is not None and all(rs[k].get("rp") is not None for rs in others.values())]
    return row(ABLATION_CLAIM, said, seed_intervals(runs).get("self_rp_margin"),
               "one seed: run more seeds" if runs else "undefined (RP)",
               point=runs[0]["self_rp_margin"] if len(runs) == 1 else None)


def observation_rows(cfg: Config) -> list[dict[str, Any]]:
    """§3.1 and table 4 from chapter 02's file: the share of replies with a rationale (exact
    binomial interval) and how many of table 4's categories appear (bootstrap over rationales)."""
    p = paper.OBSERVATION.value
    said = [f"§3.1: {p['with_rationale']}/{p['replies']} = {p['with_rationale'] / p['replies']:.0%} (LLaMA-2-Chat)",
            "table 4: all 8 categories in 5.5-29.5 % of 200 rationales"]
    try:
        found = observation.read_results(cfg)
    except ResultsError:
        return [row(c, s, None, "not run (chapter 02)") for c, s in zip(OBSERVATION_CLAIMS, said)]
    replies = found["replies"]
    share = verdicts.binomial_interval(sum(r["rationale"] for r in replies), len(replies))
    cats = [[paper.TABLE4_CATEGORY_OF_KIND.get(k) for k in r["categories"]] for r in replies if r["rationale"]]

    def present(picks: Sequence[Sequence[int]]) -> dict[str, float]:
        chosen = [cats[i] for i in picks[0]]
        return {"table4_categories": sum(sum(c in row for row in chosen) >= CATEGORY_SHARE * len(chosen)
                                         for c in paper.OBSERVATION_CATEGORIES.value)}

    diverse = (verdicts.paired_bootstrap([len(cats)], present, unit="rationales").get("table4_categories")
               if cats else None)
    why = (f"{len(cats)} rationales: too few for a bootstrap ({verdicts.MIN_BOOTSTRAP} needed)" if cats
           else "no rationale to classify")
    point = present([list(range(len(cats)))])["table4_categories"] if cats else None
    return [row(OBSERVATION_CLAIMS[0], said[0], share),
            row(OBSERVATION_CLAIMS[1], said[1], diverse, why, point=point)]


def not_checked_rows() -> list[dict[str, Any]]:
    """The claims this project cannot check, each with why."""
    return [{"claim": name, "paper": where, "threshold": "-", "ours: mean [95 % interval]": "-",
             "verdict": verdicts.NOT_CHECKED, "n to decide": "", "tuned": "no", "interval": why}
            for name, where, why in NOT_CHECKED]


def claims(cfg: Config) -> list[dict[str, Any]]:
    """Every claim of the paper, in the book's order: observation, methods, sources, gradients,
    and those not checked."""
    return (observation_rows(cfg) + method_rows(cfg) + [ablation_row(cfg)] + gradient_rows(cfg)
            + not_checked_rows())


def counts(rows: Sequence[Mapping[str, Any]]) -> str:
    """``"3 reproduced, 5 not reproduced, ..."`` over ``verdicts.VERDICTS``."""
    got = [r["verdict"] for r in rows]
    return ", ".join(f"{got.count(v)} {v}" for v in verdicts.VERDICTS)


#: What each graded value is, in words (chapter 00's table of thresholds).
VALUE_WORDS: dict[str, str] = {
    "rationale_share": "share of the backbone's translation replies that go on after the translation",
    "table4_categories": f"table 4 categories found in ≥ {CATEGORY_SHARE:.0%} of the rationales",
    "vanilla_gain": "Vanilla-FT's translation score minus the backbone's",
    "vanilla_rp": "Vanilla-FT's RP (general ability kept, % of the backbone's)",
    "radis_rp": "RaDis's RP", "seqkd_rp": "Seq-KD's RP", "sdft_rp": "SDFT's RP",
    "radis_gain_ratio": "RaDis's translation gain over the backbone / Vanilla-FT's",
    "seqkd_vs_radis_gain": "Seq-KD's translation gain / RaDis's", "sdft_vs_radis_gain": "SDFT's translation gain / RaDis's",
    "sdft_gain": "SDFT's translation score minus the backbone's (the paper: Mistral, en→X)",
    "balance_margin": "balance = the weaker of (gain / Vanilla-FT's gain) and RP/100; RaDis's minus the best "
                      "of Seq-KD's and SDFT's",
    "seqkd_minus_radis_rp": "Seq-KD's RP minus RaDis's", "radis_minus_sdft_rp": "RaDis's RP minus SDFT's",
    "self_rp_margin": "RaDis's RP on its own rationales minus its best RP on another source's",
}


def threshold_rows() -> list[dict[str, Any]]:
    """Every graded claim with its value and threshold, as fixed before the runs (chapter 00)."""
    rows = [{"claim": c.name, "paper": c.where, "value graded": VALUE_WORDS[c.key], "threshold": f"{c.op} {c.limit:g}",
             "recipe tuned while looking at it": "yes" if c.tuned else "no"}
            for c in (*OBSERVATION_CLAIMS, *METHOD_CLAIMS, ABLATION_CLAIM)]
    for label in GRADIENT_MEASUREMENTS:
        for name, sign in (("RaDis", "positive"), ("Seq-KD", "negative")):
            rows.append({"claim": f"fig. 4 ({label}): {name}'s cosine {sign}", "paper": "fig. 4",
                         "value graded": f"share of LoRA units with a {sign} mean cosine at mid-training, mean over runs",
                         "threshold": f">= {gradients.THRESHOLD:g}", "recipe tuned while looking at it": "no"})
    return rows
