from __future__ import annotations

import dataclasses

import pytest

from radis_utils.config import (
    METHODS, ConfigError, load_profile, profile_names, project_root, resolve_path,
)


def test_the_profiles_load():
    assert profile_names() == ["ci", "smol", "smol-study", "qlora", "a100", "a100-tiny", "qlora-tiny"]
    assert profile_names(derived=False) == ["ci", "smol", "qlora", "a100"]
    for name in profile_names():
        cfg = load_profile(name)
        assert cfg.profile == name
        assert cfg.description


def test_a100_is_the_paper_recipe():
    cfg = load_profile("a100")
    assert cfg.train.lora_r == 16 and cfg.train.target_modules == "all-linear"
    assert cfg.train.epochs == 3 and cfg.train.learning_rate == 1e-4
    assert cfg.train.lr_scheduler == "cosine" and cfg.train.effective_batch == 128
    assert cfg.train.precision == "bf16" and cfg.model.quantization is None
    assert cfg.model.backbone in {"mistralai/Mistral-7B-Instruct-v0.2", "meta-llama/Llama-2-7b-chat-hf"}
    assert set(cfg.train.methods) == set(METHODS)


def test_qlora_is_4bit_with_checkpointing():
    cfg = load_profile("qlora")
    assert cfg.model.quantization == "nf4" and cfg.model.double_quant
    assert cfg.train.gradient_checkpointing
    assert cfg.train.effective_batch == 128 and cfg.train.lora_r == 16


def test_ci_runs_the_organism_on_cpu():
    cfg = load_profile("ci")
    assert cfg.model.backbone == "organism" and cfg.data.source == "organism"
    assert cfg.train.precision == "fp32" and cfg.runtime.threads == 1
    assert len(cfg.train.seeds) >= 2


def test_no_profile_trusts_remote_code():
    assert not any(load_profile(n).model.trust_remote_code for n in profile_names())


def test_unknown_profile_lists_valid_ones():
    with pytest.raises(ConfigError, match="valid profiles: ci, smol, smol-study, qlora, a100"):
        load_profile("h100")


@pytest.mark.parametrize("override, fragment", [
    ({"trian": {}}, "unknown key(s) ['trian']; valid keys: description, model"),
    ({"train": {"lr": 1}}, "unknown key(s) ['lr']; valid keys: methods, seeds"),
    ({"train__seeds": 3}, "train.seeds: expected a list"),
    ({"train__lora_r": "16"}, "train.lora_r: expected int"),
    ({"model__dtype": "fp8"}, "model.dtype='fp8' is not one of"),
    ({"train__methods": ["radis", "dpo"]}, "train.methods ['dpo'] unknown"),
    ({"train__per_device_batch": 5}, "must be a multiple"),
    ({"train__per_device_batch": 0}, "train.per_device_batch=0 must be at least 1"),
    ({"synthesis__chunk_size": -2}, "synthesis.chunk_size=-2 must be at least 1"),
    ({"train__seeds": ["zero"]}, "train.seeds[0]: expected int, got 'zero'"),
    ({"train__methods": ["radis", 3]}, "train.methods[1]: expected str, got 3"),
    ({"data__directions": ["xx-en"]}, "data.directions has 'xx-en'; a direction is 'src-tgt' with two different known codes"),
    ({"data__directions": ["en-en"]}, "data.directions has 'en-en'"),
    ({"data__directions": ["deen"]}, "data.directions has 'deen'"),
    ({"train__learning_rate": "fast"}, "train.learning_rate: expected a number, got 'fast'"),
    ({"train__learning_rate": float("nan")}, "train.learning_rate=nan must be a finite number"),
    ({"train__learning_rate": "inf"}, "train.learning_rate=inf must be a finite number"),
    ({"train__learning_rate": -1e-4}, "train.learning_rate=-0.0001 must lie in (0, inf)"),
    ({"train__epochs": -1.0}, "train.epochs=-1.0 must lie in (0, inf)"),
    ({"train__epochs": 0.0}, "train.epochs=0.0 must lie in (0, inf)"),
    ({"train__warmup_ratio": 2.0}, "train.warmup_ratio=2.0 must lie in [0, 1]"),
    ({"synthesis__top_p": 1.5}, "synthesis.top_p=1.5 must lie in [0, 1]"),
    ({"train__lr_scheduler": "cosinus"}, "train.lr_scheduler='cosinus' is not one of transformers' schedulers: linear"),
])
def test_bad_keys_and_values_are_named(override, fragment):
    with pytest.raises(ConfigError) as err:
        load_profile("ci", **override)
    assert fragment in str(err.value)


def test_overrides_both_forms_and_frozen():
    cfg = load_profile("ci", train={"learning_rate": 1e-3}, eval__batch_size=7)
    assert cfg.train.learning_rate == 1e-3 and cfg.eval.batch_size == 7
    assert cfg.train.lora_r == 16  # untouched keys of the section survive
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.learning_rate = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.profile = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.organism["hidden"] = 1  # type: ignore[index]


def test_custom_profiles_file(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("mine:\n  train:\n    lora_r: 8\n    effective_batch: 8\n    per_device_batch: 8\n")
    cfg = load_profile("mine", profiles_file=f)
    assert cfg.train.lora_r == 8 and cfg.train.learning_rate == 1e-4
    f.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_profile("mine", profiles_file=f)
    with pytest.raises(ConfigError, match="not found"):
        load_profile("mine", profiles_file=tmp_path / "missing.yaml")


def test_yaml_reads_1e_4_as_a_string_and_the_config_converts_it(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("mine:\n  train:\n    learning_rate: 1e-4\n    warmup_ratio: 5e-2\n")
    import yaml

    assert yaml.safe_load(f.read_text())["mine"]["train"]["learning_rate"] == "1e-4"  # YAML 1.1: no dot, a string
    cfg = load_profile("mine", profiles_file=f)
    assert cfg.train.learning_rate == 1e-4 and cfg.train.warmup_ratio == 0.05


def test_bad_profiles_files_are_named(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("mine:\n  train:\n    lora_r: 8\n   bad: [1\n")
    with pytest.raises(ConfigError, match=rf"{f}:\d+:\d+: YAML syntax error: .*fix the file"):
        load_profile("mine", profiles_file=f)
    f.write_bytes("mine:\n  description: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"{f}:2: not UTF-8 text"):
        load_profile("mine", profiles_file=f)


def test_paths_resolve_against_project_root(root, tmp_path, monkeypatch):
    assert project_root() == root
    monkeypatch.chdir(root / "notebooks")
    assert project_root() == root  # chapters run from notebooks/ share runs/ with the book job
    assert load_profile("ci").runs_dir == root / "runs" / "ci"
    assert resolve_path(tmp_path) == tmp_path


#: What a tiny GPU profile may change in the profile it extends: the backbone and the sizes; the
#: engine (vLLM is a GPU-only extra) and the AdvBench judge (an 8B model) only for the test to stay offline.
TINY_MAY_CHANGE = {
    "description", "model.backbone", "data.max_train_pairs", "data.max_test_pairs", "synthesis.engine",
    "synthesis.batch_size", "synthesis.max_new_tokens", "train.epochs", "train.effective_batch",
    "train.per_device_batch", "train.max_length", "train.logging_steps", "train.short_run_steps", "train.seeds",
    "eval.batch_size", "eval.max_new_tokens", "eval.benchmark_limit", "eval.guard_model",
    "eval.general_max_new_tokens", "eval.observation_requests", "eval.gradient_items",
}


def flat(cfg) -> dict:
    """``{"section.key": value}`` of every setting (the organism's mapping as one value)."""
    out = {}
    for name, section in cfg.to_dict().items():
        if isinstance(section, dict) and name != "organism":
            out.update({f"{name}.{k}": v for k, v in section.items()})
        else:
            out[name] = section
    return out


@pytest.mark.parametrize("tiny, full", [("a100-tiny", "a100"), ("qlora-tiny", "qlora")])
def test_a_tiny_gpu_profile_keeps_every_code_path_setting_of_its_profile(tiny, full):
    small, big = flat(load_profile(tiny)), flat(load_profile(full))
    changed = {k for k in big if small.get(k) != big[k]} - {"profile"}
    assert changed <= TINY_MAY_CHANGE, sorted(changed - TINY_MAY_CHANGE)
    assert load_profile(tiny).model.backbone.startswith("random:benchmarks/archs/tiny")
    assert small["train.gradient_checkpointing"] and small["train.precision"] == "bf16"
    assert small["model.dtype"] == "bfloat16" and small["model.quantization"] == big["model.quantization"]
    tiny_cfg = load_profile(tiny)
    assert tiny_cfg.train.effective_batch > tiny_cfg.train.per_device_batch  # accumulation runs too


def test_extends_lays_a_profile_over_another_section_by_section(tmp_path):
    path = tmp_path / "profiles.yaml"
    path.write_text("base:\n  description: b\n  train: {lora_r: 8, epochs: 2}\n"
                    "child:\n  extends: base\n  train: {epochs: 1}\n"
                    "loop:\n  extends: loop\n"
                    "orphan:\n  extends: nowhere\n", encoding="utf-8")
    child = load_profile("child", path)
    assert (child.train.lora_r, child.train.epochs, child.description) == (8, 1, "b")
    assert profile_names(path, derived=False) == ["base"]
    with pytest.raises(ConfigError, match="extends 'loop', a cycle"):
        load_profile("loop", path)
    with pytest.raises(ConfigError, match="extends 'nowhere', no such profile"):
        load_profile("orphan", path)


def test_later_settings_at_their_default_leave_every_hash_as_it_was():
    """``eval.engine`` and ``train.logits_on_labels`` came after files were cached under the hashes:
    at their defaults they are not in ``to_dict``; set, they count."""
    from radis_utils import models

    cfg = load_profile("ci")
    assert "engine" not in cfg.to_dict()["eval"] and "logits_on_labels" not in cfg.to_dict()["train"]
    for override in ({"eval__engine": "cpu"}, {"train__logits_on_labels": True}):
        other = load_profile("ci", **override)
        assert models.config_hash(other) != models.config_hash(cfg)
    assert load_profile("smol").to_dict()["eval"]["engine"] == "cpu"
