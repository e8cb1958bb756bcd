"""The memory model of a GPU training step: its line measured on small models, and every GPU profile."""

from __future__ import annotations

import json

import pytest

from radis_utils import memory
from radis_utils.config import load_profile, resolve_path
from benchmarks.common import random_model


def arch(name: str) -> dict:
    return json.loads(resolve_path(f"benchmarks/archs/{name}.json").read_text(encoding="utf-8"))["config"]


@pytest.mark.parametrize("profile", ["a100", "qlora"])
def test_the_line_from_two_sizes_predicts_a_third_size_it_never_saw(profile):
    cfg = load_profile(profile)
    shape = memory.Shape.from_config(arch("mistral_7b_v02"))
    line = memory.fit(cfg, shape)
    h = memory.PROBE_HIDDEN[2]
    assert h not in memory.PROBE_HIDDEN[:2]
    measured = memory.measure(cfg, shape, h)
    small = shape.scaled(h, 1, 512)
    assert memory.layer_bytes(line, small) == pytest.approx(measured["layer"], rel=0.01)
    assert memory.head_bytes(line, small) == pytest.approx(measured["head"], rel=0.05, abs=64)
    # a layer saves ~100 bytes per token per unit of hidden size (the issue measured 81-119·h)
    assert 60 < line["layer_per_h"] < 160


def test_lora_dropout_and_precision_change_what_is_saved():
    cfg = load_profile("a100")
    shape = memory.Shape.from_config(arch("mistral_7b_v02"))
    base = memory.measure(cfg, shape, 256)["layer"]
    no_dropout = load_profile("a100", train__lora_dropout=0.0)
    assert memory.measure(no_dropout, shape, 256)["layer"] < base  # dropout keeps its masks and outputs


def test_weight_counts_are_those_of_a_real_model_with_the_projects_adapters():
    import torch

    from radis_utils import models

    model = random_model("tiny", torch.float32, "cpu")
    shape = memory.Shape.from_config(arch("tiny"))
    blocks = sum(m.weight.numel() for n, m in model.named_modules()
                 if isinstance(m, torch.nn.Linear) and ".layers." in n)
    assert shape.matmul_weights() == blocks
    wrapped = models.add_lora(load_profile("a100"), model)
    assert shape.lora_weights(16) == sum(p.numel() for p in wrapped.parameters() if p.requires_grad)


def test_qlora_static_memory_counts_pefts_fp32_upcast_of_embedding_and_head():
    shape = memory.Shape.from_config(arch("mistral_7b_v02"))
    gib = lambda quantized: memory.static_gib(shape, 16, quantized)
    ends = 2 * shape.vocab * shape.hidden
    blocks = shape.matmul_weights()
    assert gib(True) * memory.GIB == pytest.approx(blocks * memory.NF4_BITS / 8 + ends * 4 + 16 * shape.lora_weights(16))
    assert gib(False) * memory.GIB == pytest.approx(blocks * 2 + ends * 2 + 16 * shape.lora_weights(16))


@pytest.mark.parametrize("name", ["mistral_7b_v02", "llama2_7b"])
@pytest.mark.parametrize("profile", ["qlora", "a100"])
def test_every_gpu_profile_fits_its_card_for_the_longest_batch_of_every_method(profile, name):
    rows = memory.profile_table(profile, arch(name), memory.longest_alma_pair())
    own = [r for r in rows if r["profile's setting"]]
    assert {r["method"] for r in own} == set(memory.METHODS)
    assert all(r["fits"] for r in own), own
    # the reason the profile checkpoints: without it the longest batch needs over twice the card
    assert all(not r["fits"] and r["total"] > 2 * r["card GiB"] for r in rows if not r["checkpointing"])
    radis = next(r for r in own if r["method"] == "radis")
    assert radis["tokens"] == load_profile(profile).train.per_device_batch * load_profile(profile).train.max_length


@pytest.mark.parametrize("name", ["mistral_7b_v02", "llama2_7b"])
def test_qlora_synthesis_holds_the_bf16_original_model_and_a_longest_sequence_on_24_gb(name):
    cfg = load_profile("qlora")
    assert cfg.synthesis.engine == "vllm" and cfg.synthesis.max_model_len >= memory.longest_alma_pair() + cfg.synthesis.max_new_tokens
    need = memory.synthesis_gib(cfg, memory.Shape.from_config(arch(name)))
    card = memory.CARDS["qlora"][1]
    assert need["weights"] + need["one sequence's KV cache"] < need["share reserved"] * card - memory.OVERHEAD_GIB
