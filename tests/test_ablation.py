"""Rationale sources (chapter 07): configs, folders, tags, the vocabulary check, a tiny end-to-end run, tables."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from radis_utils import ablation, evaluate, records, synthesis, train
from radis_utils.ablation import SELF, RationaleSource
from radis_utils.config import load_profile
from radis_utils.organism import OrganismConfig, World, build_tokenizer
from radis_utils.observation import classify_heuristic

torch.set_num_threads(1)
DECODING = {"do_sample": False, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 6, "seed": 0, "engine": "hf",
            "max_rationale_tokens": None}


@pytest.fixture(scope="module")
def other_backbone(tmp_path_factory):
    """A second tiny chat model with another tokenizer and chat template (llama2 style): 'another model'."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from radis_utils.prompts import demo_chat_tokenizer

    world = World(0)
    corpus = [f"{en} {sy}" for en, sy in world.translation_pairs(200, "stage2", seed=0)]
    tok = demo_chat_tokenizer("llama2", corpus)
    tok.pad_token = tok.eos_token
    torch.manual_seed(1)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256))
    folder = tmp_path_factory.mktemp("other") / "other-chat"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def tiny_cfg(backbone, runs, **kw):
    settings = dict(model__backbone=str(backbone), runtime__runs_dir=str(runs), data__max_train_pairs=12,
                    data__max_test_pairs=6, synthesis__max_new_tokens=6, train__max_steps=2, train__save_steps=100,
                    train__logging_steps=1, train__per_device_batch=4, train__effective_batch=4,
                    train__max_length=96, eval__max_new_tokens=6, eval__general_items=2)
    return load_profile("ci", **{**settings, **kw})


def test_sources_follow_the_backbone_and_leave_out_what_cannot_load(tmp_path, monkeypatch, capsys):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    org, hub = {"other": {"train_seed": 11}}, {"other": str(tmp_path), "hub": "owner/chat-model",
                                               "gone": str(tmp_path / "missing")}
    ci = load_profile("ci")
    assert [s.kind for s in ablation.sources_for(ci, org, hub)] == ["self", "organism"]
    full = load_profile("a100")
    got = ablation.sources_for(full, org, hub)
    assert got == [SELF, RationaleSource("other", model=str(tmp_path))] and got[1].kind == "model"
    said = capsys.readouterr().out
    assert "'hub' skipped: owner/chat-model is not in the local Hugging Face cache and HF_HUB_OFFLINE is set" in said
    assert f"'gone' skipped: no folder {tmp_path / 'missing'}" in said
    with pytest.raises(ValueError, match="either organism fields or a model"):
        RationaleSource("x", organism={}, model="a/b")


def test_organism_source_keeps_the_world_and_the_profile_overrides():
    cfg = load_profile("ci", train={"learning_rate": 1e-3}, organism={"world_seed": 3})
    source = RationaleSource("bigger", organism={"train_seed": 11, "hidden_size": 160})
    other = ablation.source_config(cfg, source)
    assert other.organism["world_seed"] == 3 and other.organism["hidden_size"] == 160
    assert other.train == cfg.train and other.data == cfg.data and other.profile == cfg.profile
    folder = f"organism-{OrganismConfig.from_dict(dict(other.organism)).config_hash()}"
    assert ablation.source_folder(cfg, source) == folder and ablation.source_tag(cfg, source) == f"src-{folder}"
    assert ablation.source_tag(cfg, SELF) == "" and ablation.source_config(cfg, SELF) is cfg
    with pytest.raises(ValueError, match="profile's own backbone"):
        ablation.source_config(cfg, RationaleSource("same", organism={"train_seed": cfg.organism["train_seed"]}))
    with pytest.raises(ValueError, match="is an organism but profile"):
        ablation.source_config(load_profile("a100"), source)
    with pytest.raises(Exception, match="unknown field"):
        ablation.source_config(cfg, RationaleSource("typo", organism={"hiden_size": 3}))


def test_model_source_uses_its_own_template():
    cfg = load_profile("a100", model={"chat_template": "{{ x }}", "revision": "abc"})
    other = ablation.source_config(cfg, RationaleSource("llama", model="meta-llama/Llama-2-7b-chat-hf"))
    assert other.model.backbone == "meta-llama/Llama-2-7b-chat-hf"
    assert other.model.chat_template is None and other.model.revision is None
    assert other.model.dtype == cfg.model.dtype
    assert ablation.source_folder(cfg, RationaleSource("llama", model="meta-llama/Llama-2-7b-chat-hf")) == \
        "meta-llama--Llama-2-7b-chat-hf"


def test_vocabulary_check():
    assert ablation.same_vocabulary(build_tokenizer(World(0)), build_tokenizer(World(0)))
    assert not ablation.same_vocabulary(build_tokenizer(World(0)), build_tokenizer(World(1)))


def test_another_model_writes_rationales_and_radis_learns_them(tiny_backbone, other_backbone, tmp_path, monkeypatch):
    from radis_utils.evaluate import suite

    monkeypatch.setattr(suite, "general_ability", lambda *a: ({"facts": 50.0}, []))  # untrained: skills score 0
    cfg = tiny_cfg(tiny_backbone, tmp_path)
    source = RationaleSource("another chat model", model=str(other_backbone))
    examples = fake_self_rationales(cfg)
    run = ablation.run_sources(cfg, [SELF, source], [0])
    prep = run["another chat model"]["prepare"]
    assert prep["folder"] == "other-chat" and prep["generated"] == len(examples) and prep["base"] is None
    recs = records.read_records(synthesis.records_path(cfg, "rationale", "other-chat"))
    assert {r["model"] for r in recs} == {str(other_backbone)} and len(recs) == len(examples)
    assert run["self"]["prepare"]["generated"] == 0  # chapter 03's records are complete: no model loaded
    summary = train.read_summary(train.adapter_dir(cfg, "radis", 0, "src-other-chat"))
    assert summary["key"]["rationale_source"] == "other-chat"
    assert evaluate.results_path(cfg, "radis", 0, "src-other-chat").is_file()
    # a re-run reads everything back
    again = ablation.run_sources(cfg, [source], [0])
    assert again["another chat model"]["prepare"]["generated"] == 0
    first, second = run["another chat model"]["results"][0], again["another chat model"]["results"][0]
    assert second["translation"] == first["translation"]
    table = ablation.ablation_table(run)
    assert list(table.index) == ["self", "another chat model"]
    assert {"chrF", "BLEU", "RP", "non-empty rationale %"} <= set(table)
    assert table.loc["self", "non-empty rationale %"] == 50.0
    summary = json.loads(ablation.write_summary(cfg, [SELF, source], run, table).read_text())
    assert summary["sources"]["another chat model"]["tag"] == "src-other-chat"
    assert summary["table"]["self"]["non-empty rationale %"] == 50.0
    per_seed = ablation.per_seed_table(run)
    assert per_seed.index.tolist() == [("self", 0), ("another chat model", 0)]
    assert len(ablation.verdict(per_seed)) == 3


def fake_self_rationales(cfg):
    """Chapter 03's output for the profile's own backbone: every other rationale empty."""
    from radis_utils import data

    examples = data.training_examples(cfg)
    recs = [{"id": e.id, "direction": e.direction, "instruction": e.instruction, "source": e.source,
             "reference": e.reference, "target_kind": "rationale", "text": "" if i % 2 else "Here is and more .",
             "model": cfg.model.backbone, "decoding": DECODING,
             "created": "2026-01-01T00:00:00Z", "flags": []} for i, e in enumerate(examples)]
    records.append_records(synthesis.records_path(cfg, "rationale"), recs)
    return examples


def fake_result(seed, chrf, rp, skill=90.0):
    return {"seed": seed, "general": {"facts": skill}, "rp": rp,
            "translation": {"en-sy": {"chrf": chrf, "bleu": chrf / 2}, "avg_en_xx": {"chrf": chrf, "bleu": 0}}}


def test_tables_and_verdict_are_computed():
    runs = {"self": {"prepare": {"nonempty_share": 0.8}, "results": [fake_result(0, 80, 95), fake_result(1, 82, 97)]},
            "other": {"prepare": {"nonempty_share": 0.5}, "results": [fake_result(0, 79, 99), fake_result(1, 80, 99)]}}
    table = ablation.ablation_table(runs, {"vanilla": [fake_result(0, 85, 50)]})
    assert table.loc["self"].to_dict() == {"chrF": 81.0, "BLEU": 40.5, "facts": 90.0, "RP": 96.0,
                                           "non-empty rationale %": 80.0, "seeds": 2}
    assert pd.isna(table.loc["vanilla", "non-empty rationale %"])
    chrf, rp, overall = ablation.verdict(ablation.per_seed_table(runs))
    assert overall == ("verdict: self-generated rationales beat every other source on 1 of 2 metrics "
                       "(chrF; seed means over 2 seed(s))")
    assert chrf.startswith("chrF: self-generated 81.00 beats every other source")
    assert "gap +1.50, within the seed spread 2.00" in chrf
    assert rp.startswith("RP: self-generated 96.00 does NOT beat") and "gap -3.00, beyond" in rp


def test_category_table_shares(tmp_path):
    path = tmp_path / "r.jsonl"
    base = {"direction": "en-sy", "instruction": "i", "source": "s", "reference": "y", "target_kind": "rationale",
            "model": "m", "decoding": DECODING, "created": "", "flags": []}
    records.append_records(path, [{**base, "id": str(i), "text": t} for i, t in
                                  enumerate(["It means dog.", "", "The word x; note the tone.", "3 + 4 is 7"])])
    table = ablation.category_table({"src": path}, classify_heuristic)
    assert table.loc["src", "non-empty"] == 3 and table.loc["src", "gloss"] == round(200 / 3, 1)
    assert table.loc["src", "arithmetic"] == round(100 / 3, 1)
    other = tmp_path / "o.jsonl"
    records.append_records(other, [{**base, "id": str(i), "text": t} for i, t in
                                   enumerate(["It means dog.", "", "x", "y"])])
    assert ablation.identical_share({"self": path, "other": other}) == {"other": 50.0}


def test_prepare_refuses_an_organism_of_another_world_before_building_anything(tmp_path):
    cfg = load_profile("ci", runtime__runs_dir=str(tmp_path))
    with pytest.raises(ValueError, match="'alien': its tokenizer's vocabulary differs"):
        ablation.prepare_source(cfg, RationaleSource("alien", organism={"world_seed": 1}), [])
    assert not any(tmp_path.rglob("*")), "the check reads the worlds: no organism is built for it"


def test_prefetch_runs_the_other_sources_in_the_chapters_order(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(ablation, "apply_runtime", lambda cfg: None)
    monkeypatch.setattr(ablation.data, "training_examples", lambda cfg: ["ex"])
    monkeypatch.setattr(ablation, "prepare_source", lambda cfg, s, ex: calls.append(("prepare", s.name, ex)))
    monkeypatch.setattr(ablation, "train_and_evaluate", lambda cfg, s, seed: calls.append(("train", s.name, seed)))
    params = {"SEEDS": [], "ORGANISM_SOURCES": {"a": {"train_seed": 11}, "b": {"train_seed": 12}},
              "MODEL_SOURCES": {"m": "org/model"}}
    assert ablation.prefetch("ci", params) == ["a", "b"]
    seeds = list(load_profile("ci").train.seeds)
    assert calls == ([("prepare", "a", ["ex"]), ("prepare", "b", ["ex"])]
                     + [("train", n, s) for n in ("a", "b") for s in seeds])  # never "self": chapter 05's
    calls.clear()
    assert ablation.prefetch("ci", {**params, "SEEDS": [5]})[-1] == "b" and calls[-1] == ("train", "b", 5)
    calls.clear()
    assert ablation.prefetch("smol", params) == [] and calls == []  # a real backbone: nothing run ahead
    assert "not the organism" in capsys.readouterr().out


def test_absence_note_says_whether_chapter_07_ran(tmp_path):
    cfg = load_profile("smol", runtime__runs_dir=str(tmp_path))
    assert ablation.absence_note(cfg) == "not run: execute chapter 07 first"
    path = ablation.summary_path(cfg)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"sources": {"self": {}}}))
    assert "own rationales only" in ablation.absence_note(cfg) and "smol" in ablation.absence_note(cfg)
    path.write_text(json.dumps({"sources": {"self": {}, "another chat model": {}}}))
    assert ablation.absence_note(cfg).startswith("the results of another chat model")
    path.write_text("{not json")
    assert "cannot be read" in ablation.absence_note(cfg) and str(path) in ablation.absence_note(cfg)
