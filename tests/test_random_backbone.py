from __future__ import annotations

import json

import pytest
import torch

from radis_utils import models
from radis_utils.config import load_profile, project_root
from radis_utils.prompts import continuation_prompt
from radis_utils.random_backbone import (
    RandomBackboneError, SOURCE_FILE, arch_file, folder_for, is_random, resolve_random,
)

TINY = "random:benchmarks/archs/tiny.json"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    return runs, resolve_random(TINY, runs)


def test_a_random_backbone_is_built_once_into_runs_backbones(built):
    runs, folder = built
    assert is_random(TINY) and not is_random("organism")
    assert folder == folder_for(project_root() / "benchmarks/archs/tiny.json", runs)
    assert folder.parent == runs / "backbones" and (folder / "config.json").is_file()
    assert json.loads((folder / SOURCE_FILE).read_text(encoding="utf-8"))["chat_format"] == "mistral"
    stamp = (folder / "config.json").stat().st_mtime_ns
    assert resolve_random(TINY, runs) == folder and (folder / "config.json").stat().st_mtime_ns == stamp
    assert not list(folder.parent.glob(".*tmp*"))  # the build went through a temporary folder


def test_it_loads_through_the_one_loader_in_the_profiles_dtype_on_the_policys_device(built, monkeypatch):
    runs, folder = built
    monkeypatch.setenv("RADIS_DEVICE", "cpu")
    cfg = load_profile("a100-tiny", runtime__runs_dir=str(runs))
    assert models.resolve_backbone(cfg) == str(folder)
    model, tok = models.load_backbone(cfg)
    assert model.dtype == torch.bfloat16 and model.device.type == "cpu" and not model.training
    assert type(model).__name__ == "MistralForCausalLM" and len(tok) <= model.config.vocab_size
    prompt = continuation_prompt(tok, "Translate from German to English:\nGuten Morgen.", "Good morning.")
    assert prompt.startswith("<s>[INST]") and prompt.endswith("Good morning.")  # y opens the reply, no end of turn
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    assert model(input_ids=ids).logits.shape[-1] == model.config.vocab_size


def test_the_config_hash_follows_the_architecture_file(tmp_path, monkeypatch):
    arch = json.loads((project_root() / "benchmarks/archs/tiny.json").read_text(encoding="utf-8"))
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps(arch), encoding="utf-8")
    cfg = load_profile("a100-tiny", model__backbone=f"random:{mine}")
    before = models.config_hash(cfg)
    arch["config"]["num_hidden_layers"] = 3
    mine.write_text(json.dumps(arch), encoding="utf-8")
    assert models.config_hash(cfg) != before


def test_a_missing_or_unusable_architecture_file_is_named(tmp_path):
    with pytest.raises(RandomBackboneError, match="no file .*nowhere.json"):
        arch_file("random:nowhere.json")
    small = tmp_path / "small.json"
    small.write_text(json.dumps({"config": {"model_type": "mistral", "vocab_size": 64, "hidden_size": 16,
                                            "intermediate_size": 32, "num_attention_heads": 2,
                                            "num_hidden_layers": 1, "num_key_value_heads": 1}}), encoding="utf-8")
    with pytest.raises(RandomBackboneError, match="small.json: config.vocab_size 64 is below the tokenizer's"):
        resolve_random(f"random:{small}", tmp_path / "runs")
    untyped = tmp_path / "untyped.json"
    untyped.write_text(json.dumps({"config": {"vocab_size": 1024}}), encoding="utf-8")
    with pytest.raises(RandomBackboneError, match="untyped.json: field 'config.model_type' is missing"):
        resolve_random(f"random:{untyped}", tmp_path / "runs")
    assert not list((tmp_path / "runs" / "backbones").glob("*"))  # nothing half-built is left

