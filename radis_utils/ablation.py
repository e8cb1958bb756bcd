"""Where the rationales come from (paper §5.2, table 5): RaDis trained on other models' rationales.

A *rationale source* is the profile's own backbone (``self``: chapters 03 and 05), another
organism of the same world (``organism``: fields over the profile's ``organism:`` section, e.g.
another ``train_seed`` or a larger size), or any backbone (``model``: hub id or local path).
A source writes its rationales after the *gold* reference with **its own** chat template, into
``runs/<profile>/synthesis/<source folder>/rationale.jsonl``; the profile's backbone then learns
``y ⊕ r`` with its own template through the same trainer (``train.train(..., source=folder)``)
and is scored by ``evaluate.evaluate``. Nothing here is specific to the organism except the
vocabulary check (a word-level organism tokenizer turns unknown words into ``<unk>``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from . import data, evaluate, models, synthesis, train
from .config import Config, build_config, load_profile
from .organism import build_tokenizer, organism_config
from .records import read_records, write_json
from .runtime import apply_runtime

KINDS = ("self", "organism", "model")


@dataclass(frozen=True)
class RationaleSource:
    """One source of rationales: ``self``, an organism (``organism`` fields) or a backbone (``model``)."""

    name: str
    organism: Mapping[str, Any] | None = None
    model: str | None = None
    kind: str = field(init=False)

    def __post_init__(self) -> None:
        if self.organism is not None and self.model is not None:
            raise ValueError(f"rationale source {self.name!r}: give either organism fields or a model, not both")
        kind = "organism" if self.organism is not None else "model" if self.model is not None else "self"
        object.__setattr__(self, "kind", kind)


SELF = RationaleSource("self")


def sources_for(cfg: Config, organism_sources: Mapping[str, Mapping[str, Any]],
                model_sources: Mapping[str, str]) -> list[RationaleSource]:
    """``self`` first, then the organism sources (organism profiles) or the model sources (the rest);
    a model source that cannot be loaded here (``models.unavailable``) is left out with one line."""
    if cfg.model.backbone == models.ORGANISM:
        return [SELF] + [RationaleSource(n, organism=dict(o)) for n, o in organism_sources.items()]
    found = [SELF]
    for name, model in model_sources.items():
        why = models.unavailable(model)
        if why:
            print(f"rationale source {name!r} skipped: {why}")
        else:
            found.append(RationaleSource(name, model=model))
    return found


def source_config(cfg: Config, source: RationaleSource) -> Config:
    """The config that writes ``source``'s rationales: ``cfg`` with the organism section merged with
    the source's fields, or with the backbone swapped (its own chat template, no revision pin)."""
    if source.kind == "self":
        return cfg
    raw = {k: v for k, v in cfg.to_dict().items() if k != "profile"}
    if source.kind == "organism":
        if cfg.model.backbone != models.ORGANISM:
            raise ValueError(f"rationale source {source.name!r} is an organism but profile {cfg.profile!r} "
                             f"trains {cfg.model.backbone!r}; give a model id or path instead")
        raw["organism"] = {**raw["organism"], **source.organism}
    else:
        raw["model"] = {**raw["model"], "backbone": source.model, "revision": None, "chat_template": None}
    other = build_config(cfg.profile, raw, where=f"rationale source {source.name!r}")
    if source.kind == "organism":
        organism_config(other)  # unknown organism fields fail here, with the profile named
    if source_folder(cfg, source, other) == source_folder(cfg, SELF):
        raise ValueError(f"rationale source {source.name!r} is the profile's own backbone "
                         f"({source_folder(cfg, SELF)}); change its seed, size or model")
    return other


def source_folder(cfg: Config, source: RationaleSource, other: Config | None = None) -> str:
    """The source's synthesis folder (``organism-<hash>`` or the model slug): ``train``'s ``source``."""
    other = other or source_config(cfg, source)
    return synthesis.records_path(other, "rationale").parent.name


def source_tag(cfg: Config, source: RationaleSource) -> str:
    """Adapter/results tag: ``""`` for self (chapter 05's adapters), else ``src-<folder>``."""
    return "" if source.kind == "self" else f"src-{source_folder(cfg, source)}"


def same_vocabulary(tok_a: Any, tok_b: Any) -> bool:
    """Whether two tokenizers map the same strings to the same ids."""
    return tok_a.get_vocab() == tok_b.get_vocab()


def prepare_source(cfg: Config, source: RationaleSource, examples: Sequence[Any] | None = None) -> dict[str, Any]:
    """Synthesise (or resume) ``source``'s rationales for the profile's training examples.

    Returns the ``synthesize`` report plus ``source``, ``folder`` and ``base`` (the source model's
    own scores when it is an organism). Organism sources must share the profile's vocabulary.
    """
    examples = list(data.training_examples(cfg) if examples is None else examples)
    other = source_config(cfg, source)
    if source.kind == "organism" and not same_vocabulary(*(build_tokenizer(organism_config(c).world())
                                                           for c in (other, cfg))):
        # from the worlds, which is what an organism's tokenizer is built from: the profile's own
        # organism need not be built yet (its build may run beside this one, chapter 07 ahead)
        raise ValueError(f"rationale source {source.name!r}: its tokenizer's vocabulary differs from the "
                         "profile's organism; organisms of one world (same world_seed) share it")
    tokenizer = models.load_tokenizer(other)
    path, report = synthesis.synthesize_for_profile(other, "rationale", examples, tokenizer=tokenizer)
    return {**report, "source": source.name, "kind": source.kind, "folder": path.parent.name,
            "base": base_scores(other)}


def base_scores(cfg: Config) -> dict[str, Any] | None:
    """An organism backbone's own scores from its build (``base_scores.json``); ``None`` otherwise."""
    if cfg.model.backbone != models.ORGANISM:
        return None
    scores = json.loads((Path(models.resolve_backbone(cfg)) / "base_scores.json").read_text())
    return {"general mean": scores["general"]["mean"], **{k: v for k, v in scores["general"].items() if k != "mean"},
            "translation chrF": scores["translation"]["chrf"],
            "rationale %": scores["translation"]["rationale_share"]}


def train_and_evaluate(cfg: Config, source: RationaleSource, seed: int) -> dict[str, Any]:
    """Train (or load) RaDis on ``source``'s rationales for one seed and evaluate it (cached)."""
    if source.kind == "self":
        train.train(cfg, "radis", seed)
    else:
        train.train(cfg, "radis", seed, source=source_folder(cfg, source), tag=source_tag(cfg, source))
    return evaluate.evaluate(cfg, "radis", seed, tag=source_tag(cfg, source))


def run_sources(cfg: Config, sources: Sequence[RationaleSource], seeds: Sequence[int],
                examples: Sequence[Any] | None = None) -> dict[str, dict[str, Any]]:
    """For every source: its synthesis report (``prepare``) and one results dict per seed (``results``)."""
    examples = list(data.training_examples(cfg) if examples is None else examples)
    out = {}
    for source in sources:
        prepared = prepare_source(cfg, source, examples)
        out[source.name] = {"prepare": prepared, "results": [train_and_evaluate(cfg, source, s) for s in seeds]}
    return out


def prefetch(profile: str, parameters: Mapping[str, Any]) -> list[str]:
    """Chapter 07's work for every source but ``self`` (synthesis, training, evaluation), from the
    chapter's ``parameters`` (``SEEDS``, ``ORGANISM_SOURCES``, ``MODEL_SOURCES``), in the chapter's
    order: what the main job (``runbook``) runs ahead of the chapter on a second core, so that the
    chapter finds it cached. Organism profiles only (a hub backbone may hold a whole GPU); returns
    the names of the sources done."""
    cfg = load_profile(profile)
    if cfg.model.backbone != models.ORGANISM:
        print(f"profile {profile!r} trains {cfg.model.backbone!r}, not the organism: nothing run ahead")
        return []
    apply_runtime(cfg)
    seeds = list(parameters.get("SEEDS") or cfg.train.seeds)
    sources = [s for s in sources_for(cfg, parameters.get("ORGANISM_SOURCES") or {},
                                      parameters.get("MODEL_SOURCES") or {}) if s.kind != "self"]
    examples = data.training_examples(cfg)
    for source in sources:
        prepare_source(cfg, source, examples)
    for source in sources:
        for seed in seeds:
            train_and_evaluate(cfg, source, seed)
    return [s.name for s in sources]


# --- tables -------------------------------------------------------------------------------

def result_row(results: Sequence[Mapping[str, Any]], nonempty: float | None = None) -> dict[str, Any]:
    """Seed means of chrF, BLEU, every general skill and RP, and the rationales' non-empty %."""
    def mean(values: Sequence[float]) -> float:
        return round(sum(values) / len(values), 2)

    skills = list(results[0]["general"])
    row = {"chrF": mean([evaluate.headline(r, "chrf") for r in results]),
           "BLEU": mean([evaluate.headline(r, "bleu") for r in results])}
    row.update({s: mean([r["general"][s] for r in results]) for s in skills})
    row["RP"] = mean([r["rp"] for r in results]) if all(r.get("rp") is not None for r in results) else None
    row["non-empty rationale %"] = None if nonempty is None else round(100 * nonempty, 1)
    row["seeds"] = len(results)
    return row


def ablation_table(runs: Mapping[str, Mapping[str, Any]],
                   reference: Mapping[str, Sequence[Mapping[str, Any]]] | None = None) -> Any:
    """Table 5's shape: one row per rationale source (plus ``reference`` rows, e.g. vanilla), seed means."""
    import pandas as pd

    rows = [{"rationale source": name, **result_row(run["results"], run["prepare"]["nonempty_share"])}
            for name, run in runs.items()]
    rows += [{"rationale source": name, **result_row(rs)} for name, rs in (reference or {}).items()]
    return pd.DataFrame(rows).set_index("rationale source")


def summary_path(cfg: Config) -> Path:
    """``runs/<profile>/results/ablation.json``, chapter 07's summary (``write_summary``)."""
    return cfg.runs_dir / "results" / "ablation.json"


def absence_note(cfg: Config) -> str:
    """Why there are no results of other rationale sources: chapter 07 not run, or run with the
    backbone's own rationales only (its model sources could not be loaded on this machine)."""
    path = summary_path(cfg)
    if not path.is_file():
        return "not run: execute chapter 07 first"
    try:
        sources = list(json.loads(path.read_text())["sources"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"not run: {path} cannot be read ({err}); execute chapter 07 again"
    others = [name for name in sources if name != SELF.name]
    if others:
        return f"the results of {', '.join(others)} ({path.name}) are incomplete: execute chapter 07 again"
    return (f"chapter 07 ran with the backbone's own rationales only ({path.name}): no other "
            f"rationale source could be loaded at profile {cfg.profile}")


def write_summary(cfg: Config, sources: Sequence[RationaleSource], runs: Mapping[str, Mapping[str, Any]],
                  table: Any) -> Path:
    """``summary_path(cfg)`` (atomic): each source's settings, folder, tag and synthesis share, and
    the table's rows, for a summary page. The per-seed results are the files of
    ``evaluate.results_path(cfg, "radis", seed, tag)``."""
    path = summary_path(cfg)
    out = {"profile": cfg.profile, "config_hash": models.config_hash(cfg),
           "sources": {s.name: {"kind": s.kind, "organism": dict(s.organism) if s.organism is not None else None,
                                "model": s.model, "folder": source_folder(cfg, s), "tag": source_tag(cfg, s),
                                "seeds": [r["seed"] for r in runs[s.name]["results"]],
                                "nonempty_share": runs[s.name]["prepare"]["nonempty_share"],
                                "base": runs[s.name]["prepare"]["base"]} for s in sources},
           "table": json.loads(table.to_json(orient="index"))}
    write_json(path, out, indent=1)
    return path


def per_seed_table(runs: Mapping[str, Mapping[str, Any]]) -> Any:
    """chrF, BLEU, general skills and RP of every source and seed."""
    import pandas as pd

    return pd.DataFrame([{"rationale source": name, "seed": r["seed"], "chrF": evaluate.headline(r, "chrf"),
                          "BLEU": evaluate.headline(r, "bleu"), **r["general"], "RP": r["rp"]}
                         for name, run in runs.items() for r in run["results"]]).set_index(["rationale source", "seed"])


def category_table(paths: Mapping[str, str | Path], classify: Callable[[str], list[str]]) -> Any:
    """Per source: non-empty rationales and the % of them mentioning each content category (table 4's labels)."""
    import pandas as pd
    from .observation import rationale_table

    rows = {}
    for name, path in paths.items():
        texts = [r["text"].strip() for r in read_records(path)]
        n = sum(bool(t) for t in texts)
        counts = rationale_table(texts, classify)
        rows[name] = {"non-empty": n, **{c: round(100 * k / n, 1) if n else 0.0 for c, k in counts.items()}}
    return pd.DataFrame(rows).T.fillna(0.0)


def identical_share(paths: Mapping[str, str | Path], own: str = "self") -> dict[str, float]:
    """Per source: % of examples whose rationale is exactly ``own``'s (both empty counts as identical)."""
    texts = {name: {r["id"]: r["text"].strip() for r in read_records(path)} for name, path in paths.items()}
    mine = texts[own]
    return {name: round(100 * sum(t.get(i) == r for i, r in mine.items()) / len(mine), 1)
            for name, t in texts.items() if name != own}


def verdict(per_seed: Any, own: str = "self", metrics: Sequence[str] = ("chrF", "RP")) -> list[str]:
    """One computed line per metric: does ``own`` beat every other source (seed means), and is each
    gap larger than the seed spread (max − min over seeds of the two sources)? Then a verdict line."""
    lines, wins = [], []
    names = [n for n in dict.fromkeys(per_seed.index.get_level_values(0)) if n != own]
    for metric in metrics:
        col = per_seed[metric]
        mine = col.loc[own]
        parts, beats = [], True
        for name in names:
            theirs = col.loc[name]
            gap = float(mine.mean() - theirs.mean())
            spread = max(float(mine.max() - mine.min()), float(theirs.max() - theirs.min()))
            beats &= gap > 0
            size = "beyond" if abs(gap) > spread else "within"
            parts.append(f"{name} {theirs.mean():.2f} (gap {gap:+.2f}, {size} the seed spread {spread:.2f})")
        beats = beats and bool(names)
        wins.append(beats)
        head = "beats every other source" if beats else "does NOT beat every other source"
        lines.append(f"{metric}: self-generated {mine.mean():.2f} {head}: " + "; ".join(parts))
    won = [m for m, w in zip(metrics, wins) if w]
    lines.append(f"verdict: self-generated rationales beat every other source on {len(won)} of "
                 f"{len(metrics)} metrics ({', '.join(won) or 'none'}; seed means over "
                 f"{per_seed.loc[own].shape[0]} seed(s))")
    return lines
