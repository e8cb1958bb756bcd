"""The generation loops of ``radis_utils.engines``: the ``cpu`` loop writes what ``hf`` writes.

The tiny random model runs everywhere in seconds; the SmolLM2 test (the acceptance test of the
CPU path) compares both loops on the real backbone over the three kinds of prompt the pipeline
generates for: translation requests, continuations after a reference, general instructions.
"""

from __future__ import annotations

import pytest
import torch

from radis_utils import continuous_batching
from radis_utils.config import ConfigError, load_profile
from radis_utils.engines import CPUEngine, Decoding, cpu_completions, generate, generate_completions, make_engine
from radis_utils.prompts import chat_prompt, continuation_prompt
from tests.test_synthesis import make_tiny

REQUESTS = ["Translate into German: good morning", "Say hello.", "Translate this sentence from English into "
            "Czech, please, and keep the names as they are: Anna met Tom in Prague on Monday.",
            "Why?", "List three colours.", "Translate into Russian: the cat sleeps on the warm windowsill."]


@pytest.fixture(scope="module")
def tiny():
    """The tiny random model, made to end its turn: where its greedy pick would be its most
    frequent token, it now picks EOS (that token's output row, slightly scaled, is EOS's)."""
    model, tok = make_tiny()
    done = generate_completions(model, tok, prompts_of(tok), max_new_tokens=12)
    ids = [t for c in done for t in tok(c.text, add_special_tokens=False)["input_ids"]]
    frequent = max(set(ids), key=ids.count)
    with torch.no_grad():
        head = model.get_output_embeddings().weight
        head[tok.eos_token_id] = head[frequent] * 1.01
    return model, tok


def prompts_of(tok) -> list[str]:
    return [chat_prompt(tok, r) for r in REQUESTS] + [continuation_prompt(tok, REQUESTS[0], "Guten Morgen")]


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_cpu_loop_writes_what_generate_writes(tiny, batch_size, monkeypatch):
    model, tok = tiny
    prompts = prompts_of(tok)
    monkeypatch.setattr(continuous_batching, "PREFILL_ROWS", 2)  # several prefill chunks joined into one batch
    expected = generate_completions(model, tok, prompts, max_new_tokens=12, batch_size=16)
    got = cpu_completions(model, tok, prompts, max_new_tokens=12, batch_size=batch_size)
    assert got == expected
    assert {c.finished for c in got} == {True, False}  # some rows stop early, some run to the cap


def test_cpu_loop_forbids_an_early_end_as_generate_does(tiny):
    model, tok = tiny
    prompts = prompts_of(tok)
    expected = generate_completions(model, tok, prompts, max_new_tokens=8, batch_size=4, min_new_tokens=3)
    got = cpu_completions(model, tok, prompts, max_new_tokens=8, batch_size=4, min_new_tokens=3)
    assert got == expected and all(c.new_tokens >= 3 for c in got)


def test_cpu_loop_samples_reproducibly_under_a_seed(tiny):
    model, tok = tiny
    prompts = prompts_of(tok)
    draw = lambda seed: cpu_completions(model, tok, prompts, 10, 4, do_sample=True, temperature=1.0, top_p=0.95,
                                        seed=seed)
    first = draw(1)
    assert draw(1) == first and draw(2) != first
    assert first != cpu_completions(model, tok, prompts, 10, 4)  # sampled, not greedy


def test_generate_names_its_loop(tiny):
    model, tok = tiny
    prompts = prompts_of(tok)[:3]
    assert generate(model, tok, prompts, 6, engine="cpu") == generate(model, tok, prompts, 6)
    with pytest.raises(ValueError, match="engine='gpu' is not one of: hf, cpu"):
        generate(model, tok, prompts, 6, engine="gpu")


def test_profiles_pick_the_cpu_loop_by_name(tiny):
    cfg = load_profile("ci", synthesis__engine="cpu", synthesis__batch_size=5)
    engine = make_engine(cfg, *tiny)
    assert isinstance(engine, CPUEngine) and engine.name == "cpu" and engine.batch_size == 5
    done = engine.generate(prompts_of(tiny[1])[:2], Decoding(max_new_tokens=4))
    assert done == generate_completions(*tiny, prompts_of(tiny[1])[:2], max_new_tokens=4)
    with pytest.raises(ConfigError, match="eval.engine='vllm' is not one of: cpu, hf"):
        load_profile("ci", eval__engine="vllm")


def test_cpu_loop_refuses_a_cache_it_cannot_join(tiny):
    from transformers import LlamaConfig, MistralForCausalLM, MistralConfig

    model, tok = tiny
    base = model.config.to_dict()
    keep = {k: base[k] for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                 "num_attention_heads", "num_key_value_heads", "eos_token_id")}
    assert isinstance(model.config, LlamaConfig)
    sliding = MistralForCausalLM(MistralConfig(**keep, sliding_window=4)).eval()
    with pytest.raises(ValueError, match="full-attention caches only"):
        cpu_completions(sliding, tok, prompts_of(tok)[:2], 4)


def test_smol_greedy_text_is_the_same_through_both_loops():
    """The acceptance test: SmolLM2-135M-Instruct, fp32, greedy, 48 new tokens; ``hf`` at the
    batch the profile used before (16) against ``cpu`` at the profile's batch now."""
    from tests.test_gguf_backbone import require_wheel

    require_wheel()
    from benchmarks.cpu_paths import prompt_set
    from radis_utils import models

    cfg = load_profile("smol")
    torch.set_num_threads(cfg.runtime.threads)
    model, tok = models.load_backbone(cfg)
    kinds = prompt_set(cfg, tok, per_kind=6)
    assert [len(v) for v in kinds.values()] == [6, 6, 6]
    assert not any(p.rstrip().endswith("<|im_end|>") for p in kinds["continuation"])  # the turn stays open
    prompts = [p for group in kinds.values() for p in group]
    expected = generate_completions(model, tok, prompts, max_new_tokens=48, batch_size=16)
    got = cpu_completions(model, tok, prompts, max_new_tokens=48, batch_size=cfg.eval.batch_size)
    assert [c.text for c in got] == [c.text for c in expected]
    assert got == expected


def test_spare_room_layer_holds_what_concatenation_holds():
    """Updates past the spare room (it doubles), rows selected, leading columns dropped: the
    layer's keys and values are those of transformers' concatenating layer, cut the same way."""
    from transformers.cache_utils import DynamicLayer

    torch.manual_seed(0)
    first = torch.randn(4, 3, 5, 8), torch.randn(4, 3, 5, 8)
    roomy, plain = continuous_batching.SpareRoomLayer(*first), DynamicLayer()
    plain.update(*first)
    for step in range(13):
        width = 1 if step % 4 else 2
        new = torch.randn(len(plain.keys), 3, width, 8), torch.randn(len(plain.keys), 3, width, 8)
        assert all(torch.equal(a, b) for a, b in zip(roomy.update(*new), plain.update(*new)))
        if step == 6:
            rows = torch.tensor([0, 2, 3])
            roomy.batch_select_indices(rows)
            plain.batch_select_indices(rows)
        if step == 9:
            roomy.drop_front(3)
            plain.keys, plain.values = plain.keys[..., 3:, :], plain.values[..., 3:, :]
    assert roomy.get_seq_length() == plain.get_seq_length() == 5 + 4 * 2 + 9 - 3
    assert torch.equal(roomy.keys, plain.keys) and torch.equal(roomy.values, plain.values)
    with pytest.raises(NotImplementedError):
        roomy.crop(-1)


def test_cpu_loop_writes_the_same_with_and_without_spare_room(tiny, monkeypatch):
    """Long replies on a small batch: rows leave and join many times, the room doubles, padding
    columns are dropped; the text is that of transformers' own cache layers."""
    model, tok = tiny
    prompts = prompts_of(tok) * 3
    monkeypatch.setattr(continuous_batching, "PREFILL_ROWS", 2)
    monkeypatch.setattr(continuous_batching, "SPARE_ROOM", False)
    expected = cpu_completions(model, tok, prompts, max_new_tokens=60, batch_size=4)
    monkeypatch.setattr(continuous_batching, "SPARE_ROOM", True)
    dropped = []
    real = continuous_batching._drop_padding
    monkeypatch.setattr(continuous_batching, "_drop_padding",
                        lambda state: dropped.append(int(state[1].any(0).int().argmax())) or real(state))
    assert cpu_completions(model, tok, prompts, max_new_tokens=60, batch_size=4) == expected
    assert max(dropped) > 0 and max(c.new_tokens for c in expected) == 60  # columns were dropped
