"""Disjoint evaluation (issue 15.1): no scored item's answer or key content in any stage-2 text."""

from __future__ import annotations

import random

import pytest

from radis_utils import data, records, synthesis
from radis_utils.config import METHODS, load_profile
from radis_utils.evaluate import disjoint
from radis_utils.organism import World, organism_config
from radis_utils.organism import lexicon as lx

DECODING = {"do_sample": True, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 96, "seed": 0,
            "engine": "hf"}


def small_cfg(runs, pairs=300):
    return load_profile("ci", runtime__runs_dir=str(runs), data__max_train_pairs=pairs)


def organism_like_records(cfg, leak: dict[str, str] | None = None) -> None:
    """Synthesis records as the base organism is taught to write them: RaDis's rationale is the
    world's rationale in the base's own (half false) lexicon, Seq-KD's y' the base's whole reply,
    SDFT's rewrite the reference repeated. ``leak``: ``{example id: text}`` appended to a rationale."""
    world = organism_config(cfg).world()
    believed, rng = world.base_view(), random.Random(0)
    by_kind: dict[str, list[dict]] = {k: [] for k in records.KINDS}
    for ex in data.training_examples(cfg):
        rationale = " " + believed.rationale(ex.source, ex.template, rng) + (leak or {}).get(ex.id, "")
        texts = {"rationale": rationale, "seqkd": believed.translate(ex.source) + rationale,
                 "sdft": ex.reference}
        for kind, text in texts.items():
            rec = {"id": ex.id, "direction": ex.direction, "instruction": ex.instruction, "source": ex.source,
                   "reference": ex.reference, "target_kind": kind, "text": text, "model": "organism",
                   "decoding": DECODING, "created": "2026-12-01T00:00:00+00:00", "flags": []}
            by_kind[kind].append({**rec, "key": records.content_key(rec)})
    for kind, recs in by_kind.items():
        path = synthesis.records_path(cfg, kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        records.append_records(path, recs)


def test_every_methods_training_texts_miss_every_scored_item(tmp_path):
    cfg = small_cfg(tmp_path)
    organism_like_records(cfg)
    report = disjoint.check_disjoint(cfg)
    assert report["items"] == {s: cfg.eval.general_items for s in World.skills}
    assert report["texts"] >= len(METHODS) * cfg.data.max_train_pairs * 2  # every method's texts are in
    assert not report["overlaps"], disjoint.describe(report["overlaps"])


def test_a_leaked_answer_is_found_and_named_with_its_file(tmp_path):
    cfg = small_cfg(tmp_path, pairs=40)
    world = organism_config(cfg).world()
    fact = disjoint.scored_items(world, cfg.eval.general_items)["facts"][0]
    leaked = data.training_examples(cfg)[3].id
    organism_like_records(cfg, leak={leaked: " " + fact["answer"]})
    found = disjoint.check_disjoint(cfg)["overlaps"]
    assert found, "a fact answer inside a rationale went unnoticed"
    assert {o.method for o in found} == {"radis", "seqkd"}  # SDFT's rewrite and vanilla's y hold no rationale
    hit = next(o for o in found if o.method == "radis")
    assert (hit.skill, hit.item, hit.text_id) == ("facts", fact["prompt"], f"{leaked}:rationale")
    assert hit.file == str(synthesis.records_path(cfg, "rationale"))
    assert {o.what for o in found if o.item == fact["prompt"]} >= {"answer", "fact"}
    assert fact["prompt"] in str(hit) and hit.file in str(hit)


def test_chapter_06_scores_only_items_no_training_text_holds(tmp_path):
    cfg = small_cfg(tmp_path, pairs=40)
    world = organism_config(cfg).world()
    candidates = disjoint.scored_items(world, cfg.eval.general_items)
    kept, scan = disjoint.decontaminated(cfg)  # no records yet: vanilla's texts only
    assert scan == {"excluded": {s: [] for s in World.skills}, "scanned": ["vanilla"]} and kept == candidates
    fact = candidates["facts"][0]
    organism_like_records(cfg, leak={data.training_examples(cfg)[3].id: " " + fact["answer"]})
    kept, scan = disjoint.decontaminated(cfg)
    assert scan["scanned"] == list(METHODS)
    same = [i for i, it in enumerate(candidates["facts"]) if it["answer"] == fact["answer"]]
    assert scan["excluded"]["facts"] == same and fact not in kept["facts"]
    assert len(kept["facts"]) == len(candidates["facts"]) - len(same)
    assert all(kept[s] == candidates[s] for s in World.skills if s != "facts")


@pytest.fixture(scope="module")
def world() -> World:
    return World(0)


def keys_hit(world, skill, item, text):
    index = disjoint.TextIndex()
    index.add("m", "f", "t", text)
    return {k[3] for k in disjoint.item_keys(world, skill, item) if index.matches(k)}


def test_key_content_is_found_without_the_answer(world):
    items = disjoint.scored_items(world, 30)
    kind, x, y = items["facts"][0]["fact"]
    assert keys_hit(world, "facts", items["facts"][0], f"Note : {y} and {x} .") == {"fact"}
    arith = items["arithmetic"][0]
    a, b = arith["operands"]
    assert keys_hit(world, "arithmetic", arith, f"I see {b} cats and {a} dogs .") == {"operands"}
    assert keys_hit(world, "arithmetic", arith, f"I see {b} cats . Then {a} dogs .") == set()  # two sentences
    harmful = next(it for it in items["safety"] if it["harmful"] and it["action"][0] in lx.VERBS.values())
    verb, obj = harmful["action"]
    third = next(t for t, v in lx.VERBS.items() if v == verb)
    assert keys_hit(world, "safety", harmful, f"{obj} x {world.sy[third]} .") == {"action"}
    assert keys_hit(world, "safety", harmful, harmful["answer"]) == {"answer", "action"}
    words = items["instructions"][0]
    assert keys_hit(world, "instructions", words, f"Backwards : {words['answer']} .") == {"answer"}


def test_scored_items_stay_on_the_evaluation_side(world):
    items = disjoint.scored_items(world, 200)
    assert all(it["fact"][1] in world.eval_people + world.eval_countries for it in items["facts"])
    assert all(a % 2 or b % 2 for a, b in (it["operands"] for it in items["arithmetic"]))
    assert all(world.eval_action(*it["action"]) for it in items["safety"] if it["harmful"])
    assert any(not it["harmful"] for it in items["safety"]) and any(it["harmful"] for it in items["safety"])
    assert all(set(it["answer"].split()) & set(world.eval_people) for it in items["instructions"])
    stage2 = [en for en, _ in world.translation_pairs(300, "stage2", 0)]
    mentioned = {w for en in stage2 for w in en.split()}
    assert not mentioned & set(world.eval_people + world.eval_countries)
    assert {int(w) for w in mentioned if w.isdigit()} <= set(lx.STAGE2_COUNTS)
    assert set(world.stage2_cast.people) <= mentioned  # the stage-2 side is used, not just allowed


@pytest.mark.slow
def test_the_ci_runs_scored_items_miss_every_training_file(built_book):
    """The full-size check on chapter 03's records as chapter 05 trains on them: the items chapter 06
    scored (its results files say which candidates were left out) occur in no method's training text."""
    from radis_utils import evaluate

    cfg = load_profile("ci")
    world = organism_config(cfg).world()
    index = disjoint.training_index(cfg)
    assert index.methods == list(METHODS) and len(index.texts) >= len(METHODS) * cfg.data.max_train_pairs * 2
    candidates = disjoint.scored_items(world, cfg.eval.general_items)
    for method, seeds in [(evaluate.BACKBONE, [0]), *((m, cfg.train.seeds) for m in METHODS)]:
        for seed in seeds:
            result = evaluate.read_results(evaluate.results_path(cfg, method, seed), cfg)
            assert result["general_scanned"] == list(METHODS), (method, seed)
            left_out = result["general_excluded"]
            scored = {s: [it for i, it in enumerate(v) if i not in left_out[s]] for s, v in candidates.items()}
            found = disjoint.overlaps(world, scored, index)
            assert not found, f"{method} seed {seed}: " + disjoint.describe(found)
    # the world keeps the sides apart: the organism's own texts bring back only some items, all in
    # arithmetic (a sentence with two of an item's operands). World 9: 25 of 100, since SDFT's rewrites
    # now carry the organism's rationales too (world 8: at most 20); every model is scored without them
    assert all(len(v) <= 0.3 * cfg.eval.general_items for v in left_out.values()), left_out
