from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from radis_utils import gradients as G
from radis_utils import models
from radis_utils.losses import IGNORE, RATIONALE, REFERENCE
from radis_utils.prompts import demo_chat_tokenizer

torch.set_num_threads(1)

X = "Translate the following sentence from German to English.\nDer Hund schläft."
Y = "The dog is sleeping."
R = "Note: 'Hund' means dog, and 'schläft' means sleeps."
OWN = "The dog sleeps."
PARA = "A dog is asleep."
X2 = "Translate the following sentence from German to English.\nDie Katze isst."
Y2 = "The cat eats."
R2 = "'Katze' is cat."


@pytest.fixture(scope="module")
def tok():
    return demo_chat_tokenizer("chatml", [X, Y, R, OWN, PARA, X2, Y2, R2])


@pytest.fixture(scope="module")
def model(tok):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    base = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                                        num_hidden_layers=3, num_attention_heads=2, num_key_value_heads=1))
    return get_peft_model(base, LoraConfig(r=2, target_modules="all-linear", lora_dropout=0.5,
                                           init_lora_weights=False))  # random B: lora_A gets gradients


@pytest.fixture(scope="module")
def items():
    return [G.GradientItem("a", "de-en", X, Y, R, OWN, PARA),
            G.GradientItem("b", "de-en", X2, Y2, R2, Y2, Y2)]


def text_of(tok, ex, span):
    return tok.decode([t for t, s in zip(ex.input_ids, ex.spans) if s == span]).strip()


def direct_loss(model, ex, span):
    """Mean CE over the span, written out independently of losses.token_losses."""
    ids = torch.tensor([ex.input_ids])
    logits = model(input_ids=ids).logits[0, :-1]
    mask = (torch.tensor(ex.spans[1:]) == span) & (torch.tensor(ex.labels[1:]) != IGNORE)
    return F.cross_entropy(logits[mask], ids[0, 1:][mask])


def direct_grads(model, loss, scale=None):
    model.zero_grad()
    loss.backward()
    out = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            g = p.grad / scale[name] if scale else p.grad
            out.setdefault(G.layer_of(name), []).append(g.reshape(-1).clone())
    model.zero_grad(set_to_none=True)
    return {k: torch.cat(v) for k, v in out.items()}


def direct_cosines(model, pair, scale=None):
    model.eval()
    a = direct_grads(model, direct_loss(model, pair.mt, pair.mt_span), scale)
    b = direct_grads(model, direct_loss(model, pair.reg, pair.reg_span), scale)
    model.train()
    return [F.cosine_similarity(a[k], b[k], dim=0).item() for k in sorted(a)]


def test_layer_of_parses_names():
    assert G.layer_of("base_model.model.model.layers.7.self_attn.q_proj.lora_A.default.weight") == 7
    assert G.layer_of("model.layers.31.mlp.down_proj.weight") == 31
    assert G.layer_of("transformer.h.3.attn.c_attn.weight") == 3
    assert G.layer_of("base_model.model.lm_head.weight") is None
    assert G.layer_of("model.embed_tokens.weight") is None


def test_pairs_per_method(tok, items):
    radis, = G.pairs_for("radis", items[:1], tok)
    assert radis.mt is radis.reg and (radis.mt_span, radis.reg_span) == (REFERENCE, RATIONALE)
    for method, target in (("seqkd", OWN), ("sdft", PARA)):
        p, = G.pairs_for(method, items[:1], tok)
        assert p.mt.input_ids != p.reg.input_ids and p.mt_span == p.reg_span == REFERENCE
        assert text_of(tok, p.reg, REFERENCE).startswith(target) and text_of(tok, p.mt, REFERENCE).startswith(Y)
    empty = [{"direction": "de-en", "instruction": X, "reference": Y, "rationale": "  "}]
    assert G.pairs_for("radis", empty, tok) == [None]
    assert G.pairs_for("seqkd", empty, tok) == [None]  # no y' either
    with pytest.raises(ValueError, match="unknown method"):
        G.pairs_for("kd", items, tok)


def test_cosine_matches_two_separate_backward_passes(model, tok, items):
    pairs = G.pairs_for("radis", items, tok)
    want = [direct_cosines(model, p) for p in pairs]
    assert model.training and len(want[0]) == 3
    one = G.gradient_similarity(model, pairs[:1])
    assert one["layers"] == [0, 1, 2] and one["count"] == [1, 1, 1] and one["skipped"] == 0
    torch.testing.assert_close(one["cosine"], want[0], atol=1e-5, rtol=1e-4)
    both = G.gradient_similarity(model, pairs + [None])
    torch.testing.assert_close(both["cosine"], [(a + b) / 2 for a, b in zip(*want)], atol=1e-5, rtol=1e-4)
    assert both["count"] == [2, 2, 2] and both["pairs"] == 2 and both["skipped"] == 1
    assert abs(want[0][0] - want[1][0]) > 1e-3  # the two examples differ, so the mean is informative
    # mode restored exactly, nothing accumulated in .grad
    assert model.training and all(p.grad is None for p in model.parameters())
    empty = {"direction": "de-en", "instruction": X, "reference": Y, "rationale": ""}
    mixed = G.gradient_similarity(model, iter(G.pairs_for("radis", [empty, items[0]], tok)))  # streamed
    assert mixed["skipped"] == 1 and mixed["pairs"] == 1 and mixed["cosine"] == one["cosine"]
    # Seq-KD: two different sequences, two forward passes
    kd = G.pairs_for("seqkd", items[:1], tok)
    torch.testing.assert_close(G.gradient_similarity(model, kd)["cosine"], direct_cosines(model, kd[0]),
                               atol=1e-5, rtol=1e-4)


def test_span_loss_is_the_mean_over_the_span(model, tok, items):
    pair, = G.pairs_for("radis", items[:1], tok)
    model.eval()
    for span in (REFERENCE, RATIONALE):
        torch.testing.assert_close(G.span_loss(model, pair.mt, span), direct_loss(model, pair.mt, span))
    model.train()


def fake_adam_state(model, shift=0):
    torch.manual_seed(1)
    params = [p for p in model.parameters() if p.requires_grad]
    state = {i: {"step": torch.tensor(5.0), "exp_avg": torch.zeros_like(p),
                 "exp_avg_sq": torch.exp(3 * torch.randn_like(p)) * 1e-12} for i, p in enumerate(params)}
    if shift:
        state[0]["exp_avg_sq"] = state[0]["exp_avg_sq"].T.contiguous()
    return {"state": state, "param_groups": [{"params": list(range(len(params))), "lr": 1e-4},
                                             {"params": [], "lr": 1e-4}]}


def test_adam_preconditioning_divides_by_sqrt_v_plus_eps(model, tok, items, tmp_path):
    pair, = G.pairs_for("radis", items[:1], tok)
    state = fake_adam_state(model)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    eps = 1e-6
    scale = {n: state["state"][i]["exp_avg_sq"].sqrt() + eps for i, n in enumerate(names)}
    want = direct_cosines(model, pair, scale)
    (tmp_path / "checkpoint-5").mkdir()
    torch.save(state, tmp_path / "checkpoint-5" / "optimizer.pt")
    got = G.gradient_similarity(model, [pair], "adam", tmp_path / "checkpoint-5", eps=eps)
    torch.testing.assert_close(got["cosine"], want, atol=1e-5, rtol=1e-4)
    sgd = G.gradient_similarity(model, [pair])["cosine"]
    assert max(abs(a - b) for a, b in zip(sgd, got["cosine"])) > 1e-2  # the preconditioner matters here
    with pytest.raises(ValueError, match=r"shape \(16, 2\).*lora_A"):
        G.gradient_similarity(model, [pair], "adam", fake_adam_state(model, shift=1))
    short = fake_adam_state(model)
    short["param_groups"][0]["params"].pop()
    with pytest.raises(ValueError, match="trainable ones"):
        G.adam_preconditioner(model, short)
    with pytest.raises(ValueError, match="optimizer_state"):
        G.gradient_similarity(model, [pair], "adam")
    with pytest.raises(FileNotFoundError, match="optimizer.pt"):
        G.load_optimizer_state(tmp_path)


def test_trainer_order_puts_no_decay_parameters_last():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.LayerNorm(2), torch.nn.Linear(2, 2, bias=False))
    assert G.trainer_param_order(net) == ["0.weight", "2.weight", "0.bias", "1.weight", "1.bias"]


def test_projection_is_seeded_and_approximates_the_cosine(model, tok, items):
    v = torch.randn(2, 300, generator=torch.Generator().manual_seed(0))
    p = G.project(v, 4096, seed=3, key=1)
    assert p.shape == (2, 4096)
    torch.testing.assert_close(p, G.project(v, 4096, seed=3, key=1), rtol=0, atol=0)
    assert not torch.allclose(p, G.project(v, 4096, seed=4, key=1))
    torch.testing.assert_close(p[0] @ p[1], v[0] @ v[1], atol=0.1 * v[0].norm() * v[1].norm(), rtol=0)

    pairs = G.pairs_for("radis", items, tok)
    exact = G.gradient_similarity(model, pairs)["cosine"]
    a = G.gradient_similarity(model, pairs, projection_dim=4096, seed=7)
    b = G.gradient_similarity(model, pairs, projection_dim=4096, seed=7)
    assert a["cosine"] == b["cosine"] and a["projection_dim"] == 4096
    assert all(abs(x - y) < 0.1 for x, y in zip(a["cosine"], exact)), (a["cosine"], exact)


def test_balanced_sample_and_count_signs():
    items = [{"direction": d, "i": i} for d in ("de-en", "en-de", "zh-en") for i in range(5 if d != "zh-en" else 2)]
    s = G.balanced_sample(items, 3, seed=1)
    assert [x["direction"] for x in s] == ["de-en"] * 3 + ["en-de"] * 3 + ["zh-en"] * 2
    assert s == G.balanced_sample(items, 3, seed=1) and len({x["i"] for x in s[:3]}) == 3
    assert any(G.balanced_sample(items, 3, seed=k) != s for k in range(2, 6))
    assert G.count_signs([0.2, -0.1, 0.0, math.nan, 0.3]) == {"positive": 2, "negative": 1, "total": 4}


def test_items_from_records_join_by_id():
    base = {"id": "a", "direction": "de-en", "instruction": X, "reference": Y}
    recs = [{**base, "target_kind": "rationale", "text": R}, {**base, "target_kind": "seqkd", "text": OWN},
            {**base, "target_kind": "sdft", "text": PARA}]
    assert G.items_from_records(recs) == [G.GradientItem("a", "de-en", X, Y, R, OWN, PARA)]
    assert G.items_from_records(recs, str.upper)[0].own == OWN.upper()


# --- chapter 08: trained adapters, validation sample, results files ---------------------------

def test_without_identical_blanks_targets_equal_to_y(items):
    kept, counts = G.without_identical(items)
    assert counts == {"own": 1, "paraphrase": 1}  # item "b" has y' = ỹ = y
    assert kept[0] == items[0] and kept[1].own == "" and kept[1].paraphrase == "" and kept[1].rationale == R2


def test_iter_pairs_is_lazy_and_equals_pairs_for(tok, items):
    gen = G.iter_pairs("seqkd", items, tok)
    assert not isinstance(gen, list)
    got, want = list(gen), G.pairs_for("seqkd", items, tok)
    assert [p.reg.input_ids for p in got] == [p.reg.input_ids for p in want]


def fake_verdict_result(radis, seqkd, sdft=None):
    def res(cos):
        return None if cos is None else {"signs": G.count_signs(cos)}
    return {"seed": 0, "paper": {"value": {"layers": 32, "radis_positive": 25, "seqkd_negative": 24}},
            "methods": {"radis": {"sgd": res(radis)}, "seqkd": {"sgd": res(seqkd)}, "sdft": {"sgd": res(sdft)}}}


def test_sign_verdict_is_computed():
    line = G.sign_verdict(fake_verdict_result([0.1, 0.2, -0.1], [-0.1, -0.2, 0.3], [0.1, 0.1, 0.1]))
    assert line.startswith("seed 0 (sgd): RaDis positive in 2/3 layers, Seq-KD negative in 2/3, SDFT positive in 3/3")
    assert "paper: RaDis positive 25/32, Seq-KD negative 24/32" in line and line.endswith("pattern holds here")
    assert "does NOT hold" in G.sign_verdict(fake_verdict_result([0.1, -0.2, -0.1], [-0.1, -0.2, 0.3]))
    assert "both needed" in G.sign_verdict(fake_verdict_result([0.1], None))
    full = fake_verdict_result([0.5, 0.01], [-0.5, -0.4])
    for name in ("radis", "seqkd"):
        cos = [0.5, 0.01] if name == "radis" else [-0.5, -0.4]
        full["methods"][name]["sgd"].update(cosine=cos, cosine_std=[0.1, 0.1], count=[10, 10])
    assert "(1 and 2 of them beyond 2 standard errors)" in G.sign_verdict(full)


def test_layer_bars_one_panel_per_key():
    import matplotlib

    matplotlib.use("Agg")
    from radis_utils import plots

    fig = plots.layer_bars({"seed 0": {"RaDis": [0.2, -0.1], "Seq-KD": [None, -0.3]},
                            "seed 1": {"RaDis": [0.1, 0.1], "Seq-KD": [0.0, -0.2]}}, [0, 1])
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert len(axes) == 2 and axes[0].get_title(loc="left") == "seed 0"
    assert len(axes[0].patches) == 3 and axes[0].get_ylim()[0] == -axes[0].get_ylim()[1]


def test_seed_similarity_on_trained_adapters_is_cached(tiny_backbone, tmp_path):
    """Tiny end to end: three trained adapters, sgd + adam, one results file reused by a second call."""
    from radis_utils import data, records, synthesis, train
    from radis_utils.config import load_profile
    from radis_utils.evaluate import ResultsError

    cfg = load_profile("ci", model__backbone=str(tiny_backbone), runtime__runs_dir=str(tmp_path),
                       data__max_train_pairs=8, train__max_steps=2, train__save_steps=1, train__per_device_batch=4,
                       train__effective_batch=4, train__max_length=160)
    examples = data.training_examples(cfg)
    texts = {"rationale": lambda e, i: "" if i == 0 else "Here is and more .",
             "seqkd": lambda e, i: e.reference if i == 1 else "Mira . And more",
             "sdft": lambda e, i: "again " + e.reference}
    decoding = {"do_sample": False, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 8, "seed": 0, "engine": "hf"}
    for kind, text in texts.items():
        records.append_records(synthesis.records_path(cfg, kind), [
            {"id": e.id, "direction": e.direction, "instruction": e.instruction, "source": e.source,
             "reference": e.reference, "target_kind": kind, "text": text(e, i), "model": cfg.model.backbone,
             "decoding": decoding, "created": "2026-01-01T00:00:00Z", "flags": []} for i, e in enumerate(examples)])
    items = G.validation_items(cfg, 4, seed=0)
    assert len(items) == 4 and all(i.own in ("Mira . And more", i.reference) for i in items)  # the whole reply y' (eq. 5)
    res = G.seed_similarity(cfg, 0, per_direction=len(examples))
    assert res["sample"]["items"] == len(examples) and res["sample"]["identical_blanked"] == {"own": 1, "paraphrase": 0}
    radis, seqkd = res["methods"]["radis"], res["methods"]["seqkd"]
    assert radis["sgd"]["skipped"] == 1 and seqkd["sgd"]["skipped"] == 1 and radis["sgd"]["layers"] == [0, 1]
    assert radis["adam"]["checkpoint"] == "checkpoint-2" and radis["adam"]["cosine"] != radis["sgd"]["cosine"]
    assert all(isinstance(c, float) for c in radis["sgd"]["cosine"])
    adapter = train.adapter_dir(cfg, "radis", 0)
    model = models.load_adapter(cfg, adapter, trainable=True)
    assert any(p.requires_grad for n, p in model.named_parameters() if "lora_" in n)
    assert not any(p.requires_grad for n, p in model.named_parameters() if "lora_" not in n)
    assert G.last_checkpoint(adapter).name == "checkpoint-2"
    path = G.results_path(cfg, 0)
    stamp = path.stat().st_mtime_ns
    assert G.seed_similarity(cfg, 0, per_direction=len(examples)) == res and path.stat().st_mtime_ns == stamp
    assert G.read_results(path, cfg)["options"]["per_direction"] == len(examples)
    with pytest.raises(ResultsError, match="delete the file"):
        G.read_results(path, load_profile("ci", model__backbone=str(tiny_backbone), runtime__runs_dir=str(tmp_path)))
