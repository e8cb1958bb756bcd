"""Synthesis of training targets: rationales (RaDis), own translations (Seq-KD), paraphrases (SDFT).

Rationale synthesis (paper eq. 1), Seq-KD's own translations and SDFT's paraphrases all come
from here (generation itself: ``radis_utils.engines``). ``synthesize`` writes one
record per example (schema and store: ``radis_utils.records``), a chunk at a time, and a
re-run resumes where the last one stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
import warnings
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from . import records as rec
from .engines import Completion, Decoding, Engine, LazyEngine, make_engine
from .replies import seqkd_rule, split_reply
from .prompts import (
    SDFT_TEMPLATE, chat_prompt, chat_template_of, continuation_prompt, default_system_turn, end_of_turn_tokens,
    llama_factory_template, sdft_request,
)
from .runtime import progress

KINDS = rec.KINDS

#: SDFT's filter (sail-sg/sdft ``eval/gen_distilled_data.py``): a rewrite that contains one of these
#: (case-insensitive) or starts with ``SDFT_REJECT_PREFIX`` talks about the task instead of doing
#: it, and the example keeps its reference ``y``.
SDFT_REJECT_PHRASES: tuple[str, ...] = (
    "reference answer", "your response", "my response", "your own response", "now it's your turn",
)
SDFT_REJECT_PREFIX = "Your turn"


# --- prompts per target -------------------------------------------------------------------

def build_prompt(tokenizer: Any, ex: Any, kind: str, sdft_template: str = SDFT_TEMPLATE) -> str:
    """Generation prompt of one example for target ``kind`` (rationale | seqkd | sdft)."""
    if kind == "rationale":
        return continuation_prompt(tokenizer, ex.instruction, ex.reference)
    if kind == "seqkd":
        return chat_prompt(tokenizer, ex.instruction)
    if kind == "sdft":
        return chat_prompt(tokenizer, sdft_request(ex.instruction, ex.reference, sdft_template))
    raise ValueError(f"unknown target kind {kind!r}; valid: {', '.join(KINDS)}")


def check_examples(examples: Sequence[Any], kind: str, tokenizer: Any, sdft_template: str = SDFT_TEMPLATE,
                   ) -> tuple[list[tuple[Any, str]], list[dict[str, str]]]:
    """``(example, prompt)`` for valid examples and ``{id, field, error}`` for invalid ones."""
    if kind not in KINDS:
        raise ValueError(f"unknown target kind {kind!r}; valid: {', '.join(KINDS)}")
    chat_template_of(tokenizer)  # a tokenizer-wide problem: never skippable
    valid, invalid, seen = [], [], set()
    for pos, ex in enumerate(examples):
        ex_id = getattr(ex, "id", None)
        bad = None
        if not isinstance(ex_id, str) or not ex_id:
            bad = ("id", f"example #{pos} has no id")
        elif ex_id in seen:
            bad = ("id", "duplicate id")
        else:
            for field in ("direction", "instruction", "source", "reference"):
                value = getattr(ex, field, None)
                if not isinstance(value, str) or not value.strip():
                    bad = (field, "missing or empty")
                    break
        if bad is None:
            try:
                valid.append((ex, build_prompt(tokenizer, ex, kind, sdft_template)))
            except ValueError as err:  # incl. ChatTemplateError about this example's reference
                bad = ("reference", str(err))
        if bad is not None:
            invalid.append({"id": str(ex_id if ex_id else f"#{pos}"), "field": bad[0], "error": bad[1]})
        seen.add(ex_id)
    return valid, invalid


# --- post-processing ----------------------------------------------------------------------

def cut_at_end_of_turn(text: str, tokenizer: Any) -> str:
    """``text`` up to the first EOS / end-of-turn token it contains, right-stripped."""
    for token in end_of_turn_tokens(tokenizer):
        text = text.split(token, 1)[0]
    return text.rstrip()


def cap_tokens(text: str, tokenizer: Any, limit: int | None) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` tokens (exact characters via offsets), and whether it was."""
    if limit is None:
        return text, False
    fast = getattr(tokenizer, "is_fast", False)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=fast)
    if len(enc["input_ids"]) <= limit:
        return text, False
    if limit == 0:
        return "", True
    if not fast:  # slow tokenizers have no offsets: decode the kept tokens
        return tokenizer.decode(enc["input_ids"][:limit], skip_special_tokens=True).rstrip(), True
    return text[:enc["offset_mapping"][limit - 1][1]].rstrip(), True


def is_sdft_rejected(text: str, phrases: Sequence[str] = SDFT_REJECT_PHRASES, reference: str = "",
                     min_chrf: float | None = None) -> bool:
    """SDFT's filter: empty, or talks about the task (``SDFT_REJECT_PHRASES``, ``SDFT_REJECT_PREFIX``), or
    (with ``min_chrf``, SDFT's answer check for tasks with a checkable answer) strays from ``y``."""
    low = text.lower()
    if not text.strip() or text.startswith(SDFT_REJECT_PREFIX) or any(p in low for p in phrases):
        return True
    if min_chrf is not None:
        import sacrebleu

        return sacrebleu.sentence_chrf(text.strip(), [reference.strip()]).score < min_chrf
    return False


def postprocess(kind: str, done: Completion, ex: Any, tokenizer: Any,
                max_rationale_tokens: int | None = None, sdft_min_chrf: float | None = None) -> tuple[str, list[str]]:
    """``(text, flags)`` of one target: end tokens cut, rationale capped, SDFT filtered."""
    text = cut_at_end_of_turn(done.text, tokenizer)
    flags = [] if done.finished else ["truncated"]
    if kind == "rationale":
        # keep leading whitespace: it tells how r joins y (records.join_rationale)
        text, capped = cap_tokens(text, tokenizer, max_rationale_tokens)
        if capped and "truncated" not in flags:
            flags.append("truncated")
        if not text.strip():
            text, flags = "", flags + ["empty_rationale"]
    elif kind == "sdft" and is_sdft_rejected(text, reference=ex.reference, min_chrf=sdft_min_chrf):
        text, flags = ex.reference.strip(), flags + ["sdft_fallback"]
    else:
        text = text.strip()
        if not text:
            flags.append("empty_output")
    return text, flags


# --- synthesis ----------------------------------------------------------------------------

def chunk_seed(seed: int, chunk: int) -> int:
    """Sampling seed of one chunk: fixed by ``(seed, chunk)``, unrelated across neighbours."""
    return int(hashlib.sha256(f"{seed}:{chunk}".encode()).hexdigest()[:8], 16)


def synthesize(examples: Sequence[Any], kind: str, engine: Engine, tokenizer: Any, out_path: str | Path,
               *, model_name: str, decoding: Decoding, chunk_size: int = 256,
               max_rationale_tokens: int | None = None, sdft_min_chrf: float | None = None,
               skip_invalid: bool = False,
               sdft_template: str = SDFT_TEMPLATE) -> dict[str, Any]:
    """Generate ``kind`` targets for ``examples`` into ``out_path`` (JSON Lines); returns a report.

    Every example is checked before any generation (errors name id and field; with
    ``skip_invalid`` such rows are skipped and listed in ``report["skipped"]``). Examples are
    cut into fixed chunks of ``chunk_size`` in order; chunk ``k`` is sampled with
    ``chunk_seed(seed, k)`` and appended with one write + fsync. A re-run skips the ids already
    in the file and regenerates only unfinished chunks (writing just their missing ids), so
    an interrupted run plus its resume equals an uninterrupted one. Sampled texts depend on
    ``chunk_size`` and the engine's batch size too: keep both fixed across runs and resumes.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    valid, invalid = check_examples(examples, kind, tokenizer, sdft_template)
    if invalid and not skip_invalid:
        shown = "; ".join(f"id {b['id']}: field '{b['field']}': {b['error']}" for b in invalid[:5])
        raise ValueError(f"{len(invalid)} invalid example(s), nothing generated: {shown}"
                         f"{' ...' if len(invalid) > 5 else ''} (pass skip_invalid=True to skip them)")
    if invalid:
        shown = "; ".join(f"{b['id']} ({b['field']}: {b['error']})" for b in invalid[:10])
        warnings.warn(f"skipping {len(invalid)} invalid example(s), listed in report['skipped']: {shown}"
                      f"{' ...' if len(invalid) > 10 else ''}", stacklevel=2)
    out_path = Path(out_path)
    with rec.exclusive(out_path, f"the {kind} records file"):
        decoding_dict = record_decoding(decoding, engine.name, kind, max_rationale_tokens, sdft_template,
                                        sdft_min_chrf)
        return _synthesize_locked(valid, invalid, len(examples), kind, engine, tokenizer, out_path,
                                  model_name, decoding, decoding_dict, chunk_size, max_rationale_tokens,
                                  sdft_min_chrf)


def record_decoding(decoding: Decoding, engine: str, kind: str, max_rationale_tokens: int | None = None,
                    sdft_template: str = SDFT_TEMPLATE, sdft_min_chrf: float | None = None) -> dict[str, Any]:
    """A record's ``decoding`` field: the sampling settings, the engine, and the post-processing
    settings of its kind (rationale cap; SDFT's template and filter), all part of its ``key``."""
    out: dict[str, Any] = {**decoding.to_dict(), "engine": engine}
    if kind == "rationale":
        out["max_rationale_tokens"] = max_rationale_tokens
    elif kind == "sdft":
        out.update(sdft_template=sdft_template, sdft_min_chrf=sdft_min_chrf)
    return out


def _synthesize_locked(valid: list[tuple[Any, str]], invalid: list[dict[str, str]], n_examples: int, kind: str,
                       engine: Engine, tokenizer: Any, out_path: Path, model_name: str, decoding: Decoding,
                       decoding_dict: dict[str, Any], chunk_size: int, max_rationale_tokens: int | None,
                       sdft_min_chrf: float | None) -> dict[str, Any]:
    """``synthesize`` past its checks, holding the file's lock."""
    size_before = out_path.stat().st_size if out_path.exists() else 0
    existing = rec.repair(out_path)
    repaired = size_before - (out_path.stat().st_size if out_path.exists() else 0)
    _check_compatible(existing, out_path, kind, {ex.id: ex for ex, _ in valid}, model_name, decoding_dict)
    done = {r["id"]: r for r in existing}
    wanted = {ex.id for ex, _ in valid}
    resumed = len(wanted & done.keys())
    generated, new_tokens, elapsed = 0, 0, 0.0
    for k in progress(range(0, len(valid), chunk_size), desc=f"synthesis {kind}", unit="chunk"):
        chunk = valid[k:k + chunk_size]
        if all(ex.id in done for ex, _ in chunk):
            continue
        start = time.perf_counter()
        seeded = dataclasses.replace(decoding, seed=chunk_seed(decoding.seed, k // chunk_size))
        outs = engine.generate([p for _, p in chunk], seeded)
        elapsed += time.perf_counter() - start
        if len(outs) != len(chunk):
            raise RuntimeError(f"engine {engine.name!r} returned {len(outs)} outputs for {len(chunk)} prompts")
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        ran_on = getattr(engine, "device", "-")
        batch = []
        for (ex, _), out in zip(chunk, outs):
            if ex.id in done:
                continue
            text, flags = postprocess(kind, out, ex, tokenizer, max_rationale_tokens, sdft_min_chrf)
            record = {"id": ex.id, "direction": ex.direction, "instruction": ex.instruction,
                      "source": ex.source, "reference": ex.reference, "target_kind": kind,
                      "text": text, "model": model_name, "decoding": decoding_dict,
                      "created": created, "flags": flags, "device": ran_on}
            batch.append({**record, "key": rec.content_key(record)})
            new_tokens += out.new_tokens
        rec.append_records(out_path, batch)
        done.update((r["id"], r) for r in batch)
        generated += len(batch)
    mine = [done[i] for i in wanted]
    return {
        "path": str(out_path), "kind": kind, "examples": n_examples, "valid": len(valid),
        "generated": generated, "resumed": resumed, "skipped": invalid,
        "repaired_bytes": repaired,
        "nonempty_share": sum(bool(r["text"].strip()) for r in mine) / len(mine) if mine else 0.0,
        "flags": dict(Counter(f for r in mine for f in r["flags"])),
        "elapsed_s": round(elapsed, 3),
        "examples_per_s": round(generated / elapsed, 2) if elapsed else None,
        "new_tokens_per_s": round(new_tokens / elapsed, 1) if elapsed else None,
    }


def _check_compatible(existing: list[dict[str, Any]], path: Path, kind: str, examples: dict[str, Any],
                      model: str, decoding: dict[str, Any]) -> None:
    """Refuse to resume into a file whose records answer other examples, another target, model or
    decoding: each record of a wanted id must carry the ``content_key`` this run would write."""
    for line, old in enumerate(existing, start=1):
        ex = examples.get(old["id"])
        if old["target_kind"] != kind:
            raise ValueError(f"{path}:{line}: field 'target_kind' is {old['target_kind']!r} but this run "
                             f"asks {kind!r}; write to a fresh file")
        if ex is None:
            continue
        wanted = {"instruction": ex.instruction, "source": ex.source, "reference": ex.reference,
                  "model": model, "decoding": decoding}
        if old.get("key", rec.content_key(old)) != rec.content_key(wanted):
            diff = rec.settings_diff({k: old[k] for k in rec.KEY_FIELDS}, wanted)
            raise ValueError(f"{path}:{line}: record {old['id']!r} was made for another example or other "
                             f"settings ({'; '.join(diff[:4]) or 'its key differs'}); resume only with the "
                             "same data, instructions, model and decoding, or delete the file to synthesise again")


def source_model_slug(name: str) -> str:
    """Folder name for a backbone: ``owner/model`` -> ``owner--model``; a local path -> its name."""
    name = name.rstrip("/")
    if "/" in name and Path(name).expanduser().exists():
        name = Path(name).name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name.replace("/", "--")).strip("-") or "model"


def records_path(cfg: Any, kind: str, source: str | None = None) -> Path:
    """``runs/<profile>/synthesis/<source-model-slug>/<kind>.jsonl`` (source: the profile's backbone;
    the organism's folder carries its config hash, so two organisms never share records; the
    no-immediate-end variant, ``synthesis.min_new_tokens`` > 0, writes ``<kind>-min<N>.jsonl``)."""
    source = source or cfg.model.backbone
    if source == "organism":
        from .organism import organism_config

        source = f"organism-{organism_config(cfg).config_hash()}"
    variant = f"-min{cfg.synthesis.min_new_tokens}" if getattr(cfg.synthesis, "min_new_tokens", 0) else ""
    return cfg.runs_dir / "synthesis" / source_model_slug(source) / f"{kind}{variant}.jsonl"


def synthesize_for_profile(cfg: Any, kind: str, examples: Sequence[Any], model: Any = None,
                           tokenizer: Any = None, engine: LazyEngine | None = None,
                           **kwargs: Any) -> tuple[Path, dict[str, Any]]:
    """``synthesize`` with the profile's backbone, engine and decoding into
    ``runs/<profile>/synthesis/<source-model-slug>/<kind>.jsonl``; returns ``(path, report)``.

    Without ``model``, the backbone is loaded (or vLLM started) only if something is left to
    generate: a finished file is read back without loading anything. ``engine``: one built by
    ``profile_engine`` and shared by several kinds (``synthesize_kinds``)."""
    from . import models

    if tokenizer is None:
        tokenizer = models.load_tokenizer(cfg)
    engine = engine or profile_engine(cfg, model, tokenizer)
    path = records_path(cfg, kind)
    kwargs.setdefault("sdft_template", cfg.synthesis.sdft_template or SDFT_TEMPLATE)
    kwargs.setdefault("chunk_size", cfg.synthesis.chunk_size)
    kwargs.setdefault("max_rationale_tokens", cfg.synthesis.max_rationale_tokens)
    kwargs.setdefault("sdft_min_chrf", cfg.synthesis.sdft_min_chrf)
    report = synthesize(examples, kind, engine, tokenizer, path,
                        model_name=cfg.model.backbone, decoding=Decoding.from_config(cfg.synthesis), **kwargs)
    return path, {**report, "device": engine.device}


def profile_engine(cfg: Any, model: Any, tokenizer: Any) -> LazyEngine:
    """The profile's engine, built on its first ``generate``: ``hf`` on ``model`` (loaded then when
    ``None``), or vLLM, which loads the backbone itself from its folder or hub id."""
    from . import models

    def build() -> Engine:
        if cfg.synthesis.engine == "vllm":
            return make_engine(cfg, models.resolve_backbone(cfg), tokenizer)
        return make_engine(cfg, models.load_model(cfg) if model is None else model, tokenizer)

    return LazyEngine(cfg.synthesis.engine, build)


def synthesize_kinds(cfg: Any, kinds: Sequence[str], examples: Sequence[Any], model: Any = None,
                     tokenizer: Any = None) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Every kind through one engine, closed at the end (one vLLM instance for all kinds: each
    reserves most of the GPU, so a second one beside it would not start)."""
    from . import models

    tokenizer = tokenizer if tokenizer is not None else models.load_tokenizer(cfg)
    engine = profile_engine(cfg, model, tokenizer)
    try:
        return {kind: synthesize_for_profile(cfg, kind, examples, model, tokenizer, engine=engine) for kind in kinds}
    finally:
        engine.close()


#: Why the organism's export names no LLaMA-Factory template.
ORGANISM_EXPORT_NOTE = (
    "The model organism chats in a format made up for this book (`<s><|user|> x <|assistant|> y </s>` "
    "over its own word-level tokenizer), which none of LLaMA-Factory's registered templates writes; "
    "it is trained by `radis_utils.train`. To use this file with LLaMA-Factory anyway, register a "
    "template that reproduces that format, or export a profile with a real chat backbone.")


def export_llama_factory(cfg: Any, records: Sequence[dict[str, Any]], out_dir: str | Path, name: str,
                         tokenizer: Any) -> Path:
    """``records.export_llama_factory`` with its README naming LLaMA-Factory's ``template:`` for the
    profile's backbone (from the tokenizer's chat template; none for the organism)."""
    if cfg.model.backbone == "organism":
        template, note = None, ORGANISM_EXPORT_NOTE
    else:
        template = llama_factory_template(chat_template_of(tokenizer))
        note = ("Its chat template matches none that this book recognises (ChatML, Qwen, Llama-2, "
                "Llama-3, Mistral, Gemma): pick the LLaMA-Factory template that writes the same format.")
    rule = seqkd_rule(cfg)
    system = None if cfg.model.backbone == "organism" else default_system_turn(tokenizer)
    return rec.export_llama_factory(records, out_dir, name, template=template, backbone=cfg.model.backbone,
                                    note=note, own=lambda text: split_reply(text, rule)[0], system=system)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m radis_utils.synthesis --profile smol --export-llama-factory``: a profile's
    synthesized records (chapter 03's files) as a LLaMA-Factory dataset, as chapter 03 writes it."""
    import argparse

    from . import models
    from .config import load_profile

    parser = argparse.ArgumentParser(prog="python -m radis_utils.synthesis", description=main.__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True)
    parser.add_argument("--export-llama-factory", action="store_true", required=True,
                        help="write <kind>_<profile>.json, dataset_info.json and a README (radis_<profile> for rationales)")
    parser.add_argument("--kind", choices=KINDS, default="rationale")
    parser.add_argument("--out", type=Path, default=None, help="default: runs/<profile>/synthesis/llama_factory/")
    args = parser.parse_args(argv)
    cfg = load_profile(args.profile)
    path = records_path(cfg, args.kind)
    if not path.is_file():
        parser.exit(2, f"{path}: no {args.kind} records; run chapter 03 at PROFILE={args.profile!r} first\n")
    name = f"{'radis' if args.kind == 'rationale' else args.kind}_{cfg.profile}"
    out = export_llama_factory(cfg, rec.read_records(path), args.out or cfg.runs_dir / "synthesis" / "llama_factory",
                               name, models.load_tokenizer(cfg))
    print(f"wrote {out}, dataset_info.json and {out.with_suffix('.README.md').name} beside it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
