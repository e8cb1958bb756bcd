from __future__ import annotations

import builtins
import sys
from pathlib import Path

import pytest
import torch

from radis_utils import models
from radis_utils.config import load_profile
from radis_utils.models import BackboneError
from radis_utils.prompts import ChatTemplateError, demo_chat_tokenizer
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def tiny_backbone(tmp_path_factory):
    """A random 2-layer Llama with a Mistral-style chat tokenizer, saved like a hub snapshot."""
    from transformers import LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("tiny-llama")
    tok = demo_chat_tokenizer("mistral")
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_local_path_loads_through_from_pretrained(tiny_backbone):
    cfg = load_profile("ci", model__backbone=str(tiny_backbone))
    assert models.resolve_backbone(cfg) == str(tiny_backbone)
    model, tok = models.load_backbone(cfg)
    assert not model.training and model.dtype == torch.float32
    assert tok.padding_side == "left" and tok.pad_token is not None
    ids = tok("hello", return_tensors="pt")["input_ids"]
    assert model(ids).logits.shape[-1] == model.config.vocab_size


def test_profile_chat_template_overrides_the_tokenizer(tiny_backbone):
    cfg = load_profile("ci", model__backbone=str(tiny_backbone), model__chat_template="{{ 'X' }}")
    assert models.load_tokenizer(cfg).chat_template == "{{ 'X' }}"


def test_tokenizer_without_chat_template_is_refused(tiny_backbone, tmp_path):
    tok = demo_chat_tokenizer("mistral")
    tok.chat_template = None
    tok.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text((tiny_backbone / "config.json").read_text())
    cfg = load_profile("ci", model__backbone=str(tmp_path))
    with pytest.raises(ChatTemplateError, match="model.chat_template"):
        models.load_tokenizer(cfg)


def test_missing_local_path_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(BackboneError, match="no such directory"):
        models.resolve_backbone(load_profile("ci", model__backbone=str(missing)))
    with pytest.raises(BackboneError, match="no config.json"):
        models.resolve_backbone(load_profile("ci", model__backbone=str(tmp_path)))


@pytest.mark.parametrize("name, is_path", [
    ("mistralai/Mistral-7B-Instruct-v0.2", False), ("./models/x", True), ("/abs/x", True),
    ("~/m", True), ("a/b/c", True), ("gpt2", True),
])
def test_hub_ids_vs_paths(name, is_path):
    assert models.looks_like_path(name) is is_path


def test_hub_id_passes_through_unloaded():
    cfg = load_profile("a100")
    assert models.resolve_backbone(cfg) == "mistralai/Mistral-7B-Instruct-v0.2"


def test_dtypes():
    assert models.torch_dtype(load_profile("ci")) == torch.float32
    assert models.torch_dtype(load_profile("a100")) == torch.bfloat16
    expected = torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    assert models.torch_dtype(load_profile("ci", model__dtype="auto")) == expected


def test_4bit_needs_bitsandbytes_and_says_so(monkeypatch):
    real_import = builtins.__import__

    def no_bnb(name, *args, **kwargs):
        if name == "bitsandbytes":
            raise ImportError("no bitsandbytes here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_bnb)
    with pytest.raises(BackboneError, match=r"radis-book\[gpu\]"):
        models.quantization_config(load_profile("qlora"))
    assert models.quantization_config(load_profile("ci")) is None


def test_qlora_profile_loads_4bit_nf4(tiny_backbone):
    pytest.importorskip("bitsandbytes")
    cfg = load_profile("qlora", model__backbone=str(tiny_backbone), model__dtype="float32")
    q = models.quantization_config(cfg)
    assert q.load_in_4bit and q.bnb_4bit_quant_type == "nf4" and q.bnb_4bit_use_double_quant
    model = models.load_model(cfg)
    from bitsandbytes.nn import Linear4bit

    assert isinstance(model.model.layers[0].self_attn.q_proj, Linear4bit)
    assert model(torch.tensor([[1, 2, 3]])).logits.shape[-1] == model.config.vocab_size


def test_hash_is_stable_and_tracks_settings():
    a, b = load_profile("ci"), load_profile("ci")
    assert models.config_hash(a) == models.config_hash(b) and len(models.config_hash(a)) == 12
    assert models.config_hash(load_profile("ci", train__learning_rate=1e-3)) != models.config_hash(a)
    assert models.config_hash(load_profile("ci", description="other words")) == models.config_hash(a)


def test_the_organism_world_version_is_part_of_the_config_hash(monkeypatch):
    """Cached adapters and results of an older organism world are never reused."""
    import radis_utils.organism.spec as spec

    before = models.config_hash(load_profile("ci"))
    monkeypatch.setattr(spec, "WORLD_VERSION", spec.WORLD_VERSION + 1)
    assert models.config_hash(load_profile("ci")) != before


def test_environment_report():
    cfg = load_profile("ci")
    report = models.environment_report(cfg)
    assert "profile      : ci" in report and "torch" in report and models.config_hash(cfg) in report


def test_merging_never_goes_into_4bit_weights(tiny_backbone, tmp_path):
    """A QLoRA adapter merges into the base reloaded unquantized (compute dtype), not into nf4."""
    pytest.importorskip("bitsandbytes")
    from bitsandbytes.nn import Linear4bit
    from peft import LoraConfig, get_peft_model

    plain = load_profile("ci", model__backbone=str(tiny_backbone))
    torch.manual_seed(0)
    lora = get_peft_model(models.load_model(plain), LoraConfig(r=4, target_modules="all-linear",
                                                               init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    qlora = load_profile("qlora", model__backbone=str(tiny_backbone), model__dtype="float32")
    merged = models.load_adapter(qlora, tmp_path / "adapter", merge=True)
    assert not any(isinstance(m, Linear4bit) for m in merged.modules()) and merged.dtype == torch.float32
    expected = models.load_adapter(plain, tmp_path / "adapter", merge=True)
    ids = torch.tensor([[1, 2, 3, 4]])
    assert torch.allclose(merged(input_ids=ids).logits, expected(input_ids=ids).logits, atol=1e-5)
    as_trained = models.load_adapter(qlora, tmp_path / "adapter")  # unmerged: still the 4-bit base
    assert any(isinstance(m, Linear4bit) for m in as_trained.modules())


def test_the_report_marks_a_package_that_differs_from_its_pin(tmp_path, monkeypatch):
    pins = tmp_path / "constraints.txt"
    pins.write_text("# comment\ntransformers==0.0.1  # too old\nHuggingFace_Hub==2.4.0\n", encoding="utf-8")
    assert models.pinned_versions(pins) == {"transformers": "0.0.1", "huggingface-hub": "2.4.0"}
    assert models.pinned_versions(tmp_path / "none.txt") == {}
    monkeypatch.setattr(models, "pinned_versions", lambda: {"transformers": "0.0.1"})
    line = next(x for x in models.environment_report(load_profile("ci")).splitlines() if x.startswith("transformers"))
    assert "differs from the pinned 0.0.1" in line


def test_the_checkouts_pins_are_what_this_environment_runs():
    """constraints.txt is what `make env` installs: in that environment every pin holds."""
    from importlib import metadata

    pins = models.pinned_versions()
    assert "transformers" in pins and "torch" not in pins  # torch: the Makefile's TORCH
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        pytest.skip("not the checkout's own .venv (make env): its packages need not match the pins")
    assert {k: metadata.version(k) for k in pins} == pins


def test_the_loader_places_every_model_by_the_one_device_policy(tiny_backbone, monkeypatch):
    """Unquantized models are moved to ``runtime.device()`` (transformers leaves them on the CPU);
    here the policy is pointed at the meta device, which exists on every machine."""
    cfg = load_profile("ci", model__backbone=str(tiny_backbone))
    assert models.load_model(cfg).device.type == "cpu"  # auto on a machine without CUDA
    monkeypatch.setattr(models, "device", lambda: "meta")
    assert models.load_model(cfg).device.type == "meta"
    assert models.load_plain(str(tiny_backbone), dtype="float32").device.type == "meta"  # a judge, too


def test_no_module_loads_a_model_outside_the_loader():
    """``from_pretrained`` of a model only in ``models`` (and the one-time GGUF conversion), so
    that the device policy and the dtype apply everywhere."""
    import re

    allowed = {"radis_utils/models.py", "radis_utils/gguf_backbone.py"}
    found = []
    for path in sorted((ROOT / "radis_utils").rglob("*.py")) + sorted((ROOT / "benchmarks").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"(ForCausalLM|AutoModel\w*|PeftModel\w*)\.from_pretrained\(", line) and rel not in allowed:
                found.append(f"{rel}:{n}: {line.strip()}")
    assert not found, "models loaded outside radis_utils.models:\n" + "\n".join(found)


def test_engine_memory_settings_do_not_change_the_config_hash():
    base = load_profile("a100")
    tuned = load_profile("a100", synthesis__gpu_memory_utilization=0.6, synthesis__max_model_len=2048)
    assert models.config_hash(base) == models.config_hash(tuned)
    assert models.config_hash(base) != models.config_hash(load_profile("a100", synthesis__max_new_tokens=7))
    from radis_utils import train

    assert train.train_key(base, "radis", 0, "s") == train.train_key(tuned, "radis", 0, "s")  # adapters stay valid
    assert "max_model_len" not in base.to_dict()["synthesis"] and tuned.to_dict()["synthesis"]["max_model_len"] == 2048


@pytest.mark.parametrize("damage", ["weights", "config"])
def test_a_damaged_adapter_is_refused_naming_the_file(tmp_path, damage):
    import torch
    from safetensors.torch import save_file

    from radis_utils.records import RecordError

    save_file({"base_model.model.lora_A.weight": torch.zeros(64, 64)}, str(tmp_path / "adapter_model.safetensors"))
    (tmp_path / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 16}')
    models.check_adapter_files(tmp_path)  # intact: no complaint
    if damage == "weights":
        weights = tmp_path / "adapter_model.safetensors"
        weights.write_bytes(weights.read_bytes()[:-1000])
        with pytest.raises(models.BackboneError, match=r"adapter_model\.safetensors: not a readable safetensors"):
            models.check_adapter_files(tmp_path)
    else:
        (tmp_path / "adapter_config.json").write_text('{"peft_type": "LO')
        with pytest.raises(RecordError, match=r"adapter_config\.json:1:\d+: not valid JSON"):
            models.check_adapter_files(tmp_path)
