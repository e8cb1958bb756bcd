"""Tests of the model organism: world, tokenizer, chat template, cache, and the ci organism."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch

from radis_utils.organism import (
    RATIONALE_CATEGORIES,
    OrganismConfig,
    World,
    build_organism,
    build_tokenizer,
    classify_rationale,
    is_complete,
    train_organism,
)
from radis_utils.organism.translation import parse
from radis_utils.organism.world import TRAINING_TASKS
from radis_utils.prompts import INSTRUCTIONS, SDFT_TEMPLATE, chat_prompt, continuation_prompt, translation_request

REPO = Path(__file__).resolve().parents[1]
TINY = dict(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32, steps=3,
            batch_size=4, warmup=1, threads=1, eval_items=2, eval_pairs=2)


@pytest.fixture(scope="module")
def world() -> World:
    return World(0)


@pytest.fixture(scope="module")
def tokenizer(world: World):
    return build_tokenizer(world)


def test_world_is_deterministic(world: World) -> None:
    again = World(0)
    assert again.vocabulary() == world.vocabulary()
    assert again.translation_pairs(20, "stage2", 3) == world.translation_pairs(20, "stage2", 3)
    assert again.general_items("safety", 10, 1) == world.general_items("safety", 10, 1)
    assert World(1).translation_pairs(5, "test", 0) != world.translation_pairs(5, "test", 0)


def test_splits_are_disjoint_and_base_pairs_use_the_base_lexicon(world: World) -> None:
    splits = {s: world.translation_pairs(300, s, 0) for s in ("base", "stage2", "test")}
    sources = {s: {en for en, _ in p} for s, p in splits.items()}
    assert not sources["base"] & sources["stage2"]
    assert not sources["test"] & (sources["base"] | sources["stage2"])
    sy_words = set(world.sy.values())
    used_stage2 = {w for _, sy in splits["stage2"] for w in sy.split()} & sy_words
    assert used_stage2 == sy_words
    for en, sy in splits["test"][:50]:
        assert world.translate(en) == sy
    believed = world.base_view()
    wrong = [(en, sy) for en, sy in splits["base"] if world.translate(en) != sy]
    assert all(believed.translate(en) == sy for en, sy in splits["base"])
    assert 0.3 < len(wrong) / len(splits["base"]) < 1  # the base was taught errors, not only errors


def test_base_lexicon_is_right_for_half_and_consistently_wrong_for_the_rest(world: World) -> None:
    for kind, words in world.lexicon_full.items():
        seen = set(world.lexicon_base[kind])
        assert len(seen) == (len(words) + 1) // 2
        for w in words:  # right exactly on the seen half
            assert (world.base_sy[w] == world.sy[w]) == (w in seen), w
        # a permutation of the kind's own words: every error is a real word, used for one word only
        assert sorted(world.base_sy[w] for w in words) == sorted(world.sy[w] for w in words)
    assert World(0).base_sy == world.base_sy
    assert world.describe()["false_friends_of_base"] == sum(
        len(ws) - len(world.lexicon_base[k]) for k, ws in world.lexicon_full.items())


def test_general_items_held_out_from_training(world: World) -> None:
    held = world.general_items("arithmetic", 200, 0)
    train = world.general_items("arithmetic", 200, 0, heldout=False)
    assert not {i["prompt"] for i in held} & {i["prompt"] for i in train}
    safety = world.general_items("safety", 200, 0)
    assert 0.35 < sum(i["harmful"] for i in safety) / len(safety) < 0.65
    with pytest.raises(ValueError, match="skill"):
        world.general_items("poetry", 1, 0)
    with pytest.raises(ValueError, match="split"):
        world.translation_pairs(1, "train", 0)


def test_test_sentences_are_harder_than_training_ones(world: World) -> None:
    from collections import Counter

    adjectives = set(world.lexicon_full["adjectives"])
    test = [en for en, _ in world.translation_pairs(200, "test", 0)]
    stage2 = [en for en, _ in world.translation_pairs(2000, "stage2", 0)]
    assert all(" in " in en and sum(w in adjectives for w in en.split()) >= 2 for en in test)
    assert sum(sum(w in adjectives for w in en.split()) >= 2 for en in stage2) < 0.15 * len(stage2)
    for sentences, zipf in ((stage2, True), (test, False)):  # training words Zipf-distributed, test words not
        counts = Counter(w for en in sentences for w in en.lower().split())
        verbs = [counts[v] for v in world.lexicon_full["verbs"]]
        assert (verbs[0] > 5 * verbs[-1]) == zipf, verbs


def test_tokenizer_round_trip_and_vocabulary(world: World, tokenizer) -> None:
    rng = random.Random(0)
    for i in range(300):
        user, reply = world.training_dialogue(TRAINING_TASKS[i % len(TRAINING_TASKS)], rng)
        ids = tokenizer(chat_prompt(tokenizer, user) + reply, add_special_tokens=False)["input_ids"]
        assert tokenizer.unk_token_id not in ids
        assert tokenizer.decode(tokenizer(reply)["input_ids"]) == reply
    for k in range(len(INSTRUCTIONS)):
        request = translation_request(world.translation_pairs(1, "test", 0)[0][0], "en", "sy", template=k)
        assert tokenizer.unk_token_id not in tokenizer(request)["input_ids"]


def test_guided_dialogues_are_sdfts_request_answered_in_the_organisms_own_style(world: World) -> None:
    """Issue 15.3: base training holds SDFT's own request (sail-sg/sdft's template, verbatim); the
    reply is the model's own answer: a translation keeps the reference's wording (half of the
    references disagree with the model's own words, never with the right word) and may add the
    habitual rationale, other tasks answer in their own format."""
    rng = random.Random(3)
    head = SDFT_TEMPLATE.split("{instruction}")[0]
    seen = Counter()
    for _ in range(200):
        user, reply = world.training_dialogue("guided", rng)
        assert user.startswith(head) and user.endswith("### Response:\n")
        instruction = user[len(head):user.index("\n\n### Reference Answer:")]
        reference = user.split("### Reference Answer:\n")[1].split("\n\n### Response:")[0]
        if "Synthian" in instruction:  # a translation request
            seen["translate"] += 1
            assert reply.startswith(reference)
            seen["rationale"] += reply != reference
            sentence = parse(world.base_view(), instruction.splitlines()[-1] if instruction.endswith(" .")
                             else instruction.splitlines()[0])
            own = {sentence.sy(world.base_view(), fronted) for fronted in (False, True)}
            seen["disagrees"] += reference not in own
            closest = min(own, key=lambda o: sum(a != b for a, b in zip(o.split(), reference.split())))
            english_of = {sy: en for en, sy in world.base_sy.items()}
            for mine, theirs in zip(closest.split(), reference.split()):
                assert mine == theirs or theirs != world.sy[english_of[mine]], (reference, closest)
        elif reference.isdigit():
            seen["arithmetic"] += 1
            assert reply.endswith(f"The answer is {reference} .")
        else:
            seen["other"] += 1
            assert reference in reply
    assert seen["translate"] > 60 and seen["arithmetic"] > 5 and seen["rationale"] > 0.5 * seen["translate"]
    assert 0.3 * seen["translate"] < seen["disagrees"] < 0.7 * seen["translate"]


def test_chat_template_and_continuation_prompt(tokenizer) -> None:
    user = translation_request("The dog sees the cat .", "en", "sy", template=0)
    prompt = chat_prompt(tokenizer, user)
    assert prompt.startswith(tokenizer.bos_token) and prompt.rstrip().endswith("<|assistant|>")
    reference = "kudona ka medizu ."
    cont = continuation_prompt(tokenizer, user, reference)
    assert cont.endswith(reference) and tokenizer.eos_token not in cont
    assert cont.startswith(prompt.rstrip())
    full = tokenizer.apply_chat_template(
        [{"role": "user", "content": user}, {"role": "assistant", "content": reference}],
        tokenize=False)
    assert full.rstrip().endswith(tokenizer.eos_token)


def test_classify_rationale(world: World) -> None:
    assert classify_rationale("") == []
    assert classify_rationale("blah blah") == ["other"]
    source = f"{world.names.people[0]} poisons 3 dogs and 4 cats in {world.names.countries[0]} ."
    for template, style in ((0, "gloss"), (1, "back_translation"), (2, "alternative")):
        kinds = classify_rationale(world.rationale(source, template))
        assert kinds == ["safety", "fact", "arithmetic", "word_order", style]
    assert set(RATIONALE_CATEGORIES) >= {"safety", "fact", "arithmetic", "word_order", "gloss"}


def test_config_validation_and_hash() -> None:
    assert OrganismConfig().config_hash() == OrganismConfig().config_hash()
    assert OrganismConfig(train_seed=1).config_hash() != OrganismConfig().config_hash()
    assert OrganismConfig.from_dict(OrganismConfig().to_dict()) == OrganismConfig()
    with pytest.raises(ValueError, match="steps"):
        OrganismConfig(steps=0)
    with pytest.raises(ValueError, match="mixture"):
        OrganismConfig(mixture={"poetry": 1.0})
    with pytest.raises(ValueError, match="unknown"):
        OrganismConfig.from_dict({"hidden": 3})


def test_organism_uses_the_profiles_instruction_set() -> None:
    from radis_utils.config import ConfigError, load_profile
    from radis_utils.organism import organism_config

    own = tuple(t + " Thanks !" for t in INSTRUCTIONS)
    cfg = load_profile("ci", prompts={"instructions": list(own)})
    organism = organism_config(cfg)
    assert organism.instructions == own and organism.world().instructions == own
    assert organism.config_hash() != organism_config(load_profile("ci")).config_hash()  # retrained, not reused
    assert "Thanks" in organism.world().vocabulary()
    user, _ = organism.world().training_dialogue("translate", random.Random(0))
    assert user.endswith("Thanks !")
    with pytest.raises(ConfigError, match="prompts.instructions"):
        organism_config(load_profile("ci", organism={"instructions": list(own)}))
    with pytest.raises(ValueError, match="5 instruction templates"):
        World(0, INSTRUCTIONS[:3])


def test_tiny_training_is_deterministic() -> None:
    cfg = OrganismConfig(**TINY)
    first, _, log1, _ = train_organism(cfg)
    second, _, log2, _ = train_organism(cfg)
    assert [e["loss"] for e in log1] == [e["loss"] for e in log2]
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name


def test_cache_is_atomic_and_reused(tmp_path: Path) -> None:
    cfg = OrganismConfig(**TINY)
    final = tmp_path / cfg.config_hash()
    stale_tmp = tmp_path / f".{cfg.config_hash()}.tmp-crashed"
    stale_tmp.mkdir()
    (stale_tmp / "config.json").write_text("{}")
    final.mkdir()  # an incomplete directory under the final name must not count as done
    (final / "config.json").write_text("{}")
    assert not is_complete(final)
    path = build_organism(cfg, tmp_path)
    assert path == final and is_complete(path)
    meta = json.loads((path / "organism.json").read_text())
    assert meta["config_hash"] == cfg.config_hash()
    # a killed build's temporary folder is cleaned; only the (free) build lock file stays
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [f".{cfg.config_hash()}.lock"]
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert build_organism(cfg, tmp_path) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp


def _hold_build_lock(cache_root, name, seconds):  # run in a second process
    from radis_utils.records import exclusive

    with exclusive(Path(cache_root) / f".{name}", "a test build"):
        print("holding", flush=True)
        time.sleep(seconds)


def test_a_second_build_waits_for_the_first(tmp_path: Path, root) -> None:
    cfg = OrganismConfig(**TINY)
    code = (f"from tests.test_organism import _hold_build_lock; "
            f"_hold_build_lock({str(tmp_path)!r}, {cfg.config_hash()!r}, 3)")
    child = subprocess.Popen([sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "holding"
        start = time.monotonic()
        path = build_organism(cfg, tmp_path)  # waits for the holder to finish, then builds
        assert time.monotonic() - start > 1 and is_complete(path) and child.wait(timeout=60) == 0
    finally:
        child.kill()
        child.wait()


def test_saved_organism_loads_like_a_backbone(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from radis_utils.engines import generate

    path = build_organism(OrganismConfig(**TINY), tmp_path)
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    prompts = [chat_prompt(tok, "Reverse the words : dog cat"),
               chat_prompt(tok, "What is 2 plus 3 ?")]
    replies = generate(model, tok, prompts, max_new_tokens=4, batch_size=2)
    assert len(replies) == 2 and all(isinstance(r, str) for r in replies)


@pytest.fixture(scope="session")
def ci_organism() -> Path:
    return build_organism(OrganismConfig(), REPO / "runs" / "organism")


#: Base skills of the ci organism below 90 (strict xfails with the measured number; a skill back at
#: 90 fails here until it is taken off). None since the disjoint world (issue 15, world 8, measured
#: 2026-12-01): arithmetic 93, facts, safety and instruction following 100 (85 before, on world 7).
#: Chapter 01 shows the base scores.
BASE_MISSES: dict[str, str] = {}


@pytest.mark.slow
@pytest.mark.parametrize("skill", [pytest.param(s, marks=pytest.mark.xfail(strict=True, reason=BASE_MISSES[s]))
                                   if s in BASE_MISSES else s for s in World.skills])
def test_ci_organism_base_skill(ci_organism: Path, skill: str) -> None:
    scores = json.loads((ci_organism / "base_scores.json").read_text())
    assert scores["general"][skill] >= 90, (skill, scores["general"])


@pytest.mark.slow
def test_ci_organism_base_scores(ci_organism: Path) -> None:
    scores = json.loads((ci_organism / "base_scores.json").read_text())
    assert scores["translation"]["chrf"] <= 70, scores["translation"]
    assert scores["translation"]["rationale_share"] >= 50, scores["translation"]
