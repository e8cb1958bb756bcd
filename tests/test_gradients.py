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
            out.setdefault(G.unit_of(name), []).append(g.reshape(-1).clone())
    model.zero_grad(set_to_none=True)
    return {k: torch.cat(v) for k, v in out.items()}


def direct_pair_grads(model, pair, scale=None):
    """Per-unit gradients of the two losses, by two ordinary backward passes."""
    model.eval()
    a = direct_grads(model, direct_loss(model, pair.mt, pair.mt_span), scale)
    b = direct_grads(model, direct_loss(model, pair.reg, pair.reg_span), scale)
    model.train()
    return a, b


def cos(a, b):
    return F.cosine_similarity(a, b, dim=0).item()


def module_stats(res, prec="sgd", subset="keep_identical", granularity="module"):
    return res["results"][prec][subset][granularity]


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


def test_units_are_layer_by_module(model):
    assert G.unit_of("base_model.model.model.layers.7.self_attn.q_proj.lora_A.default.weight") == "7.self_attn.q_proj"
    assert G.unit_of("model.layers.31.mlp.down_proj.weight") == "31.mlp.down_proj"
    assert G.unit_of("base_model.model.lm_head.weight") is None
    units = G.units_of(model)
    assert len(units) == 3 * 7 and list(units)[0] == "0.self_attn.q_proj"  # 3 layers x 7 linears
    assert all(len(names) == 2 for names in units.values())  # lora_A and lora_B together
    assert list(G.layer_groups(list(units))) == ["0", "1", "2"]
    with pytest.raises(ValueError, match="no trainable parameter"):
        G.units_of(torch.nn.Linear(2, 2).requires_grad_(False))


def test_cosines_match_two_separate_backward_passes(model, tok, items):
    pairs = G.pairs_for("radis", items, tok)
    grads = [direct_pair_grads(model, p) for p in pairs]
    units = list(G.units_of(model))
    res = G.measure(model, pairs + [None], preconditioners=["sgd"])
    assert res["pairs"] == 2 and res["skipped"] == 1 and res["identical"] == 0
    stats = module_stats(res)
    assert stats["units"] == units and stats["count"] == [2] * len(units)
    want = [(cos(grads[0][0][u], grads[0][1][u]) + cos(grads[1][0][u], grads[1][1][u])) / 2 for u in units]
    torch.testing.assert_close(stats["mean"], want, atol=1e-5, rtol=1e-4)
    summed = [cos(grads[0][0][u] + grads[1][0][u], grads[0][1][u] + grads[1][1][u]) for u in units]
    torch.testing.assert_close(stats["summed"], summed, atol=1e-5, rtol=1e-4)
    assert max(abs(a - b) for a, b in zip(stats["mean"], stats["summed"])) > 1e-3  # two different statistics
    layer = module_stats(res, granularity="layer")  # a layer: its modules' gradients concatenated
    cat = lambda g, k: torch.cat([g[u] for u in units if u.startswith(f"{k}.")])
    want_layer = [sum(cos(cat(a, k), cat(b, k)) for a, b in grads) / 2 for k in range(3)]
    assert layer["units"] == ["0", "1", "2"]
    torch.testing.assert_close(layer["mean"], want_layer, atol=1e-5, rtol=1e-4)
    assert model.training and all(p.grad is None for p in model.parameters())  # mode restored, no .grad left
    kd = G.pairs_for("seqkd", items[:1], tok)  # two different sequences, two forward passes
    a, b = direct_pair_grads(model, kd[0])
    torch.testing.assert_close(module_stats(G.measure(model, kd, preconditioners=["sgd"]))["mean"],
                               [cos(a[u], b[u]) for u in units], atol=1e-5, rtol=1e-4)


def test_identical_targets_are_kept_or_skipped(model, tok, items):
    """Item "b" has y' = y: its cosine is 1 by construction; skip_identical leaves it out."""
    pairs = G.pairs_for("seqkd", items, tok)
    assert [p.identical for p in pairs] == [False, True] and G.identical_counts(items) == {"own": 1, "paraphrase": 1}
    res = G.measure(model, iter(pairs), preconditioners=["sgd", "less"])  # streamed
    keep, skip = module_stats(res), module_stats(res, subset="skip_identical")
    assert keep["count"][0] == 2 and skip["count"][0] == 1 and res["identical"] == 1
    torch.testing.assert_close(keep["mean"], [(s + 1) / 2 for s in skip["mean"]], atol=1e-5, rtol=1e-4)
    radis = G.measure(model, G.pairs_for("radis", items, tok), preconditioners=["sgd"])
    assert module_stats(radis) == module_stats(radis, subset="skip_identical")  # RaDis has no identical target


def fake_adam_state(model, shift=0):
    torch.manual_seed(1)
    params = [p for p in model.parameters() if p.requires_grad]
    state = {i: {"step": torch.tensor(5.0), "exp_avg": 1e-3 * torch.randn_like(p),
                 "exp_avg_sq": torch.exp(3 * torch.randn_like(p)) * 1e-12} for i, p in enumerate(params)}
    if shift:
        state[0]["exp_avg_sq"] = state[0]["exp_avg_sq"].T.contiguous()
    return {"state": state, "param_groups": [{"params": list(range(len(params))), "lr": 1e-4, "betas": (0.8, 0.99),
                                              "eps": 1e-6}, {"params": [], "lr": 1e-4}]}


def test_adam_features_rescaled_and_less(model, tok, items, tmp_path):
    pair, = G.pairs_for("radis", items[:1], tok)
    state = fake_adam_state(model)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    m = {n: state["state"][i]["exp_avg"] for i, n in enumerate(names)}
    v = {n: state["state"][i]["exp_avg_sq"] for i, n in enumerate(names)}
    (tmp_path / "checkpoint-5").mkdir()
    torch.save(state, tmp_path / "checkpoint-5" / "optimizer.pt")
    moments = G.adam_moments(model, tmp_path / "checkpoint-5")
    assert (moments.beta1, moments.beta2, moments.eps, moments.step) == (0.8, 0.99, 1e-6, 5)
    res = G.measure(model, [pair], moments)
    a, b = direct_pair_grads(model, pair)
    raw = {n: p for n, p in model.named_parameters() if p.requires_grad}
    model.eval()  # LESS's feature by hand, per parameter, from two ordinary backward passes
    feats = []
    for loss_span in (pair.mt_span, pair.reg_span):
        model.zero_grad()
        direct_loss(model, pair.mt, loss_span).backward()
        f = {n: (0.8 * m[n] + 0.2 * raw[n].grad) / torch.sqrt(0.99 * v[n] + 0.01 * raw[n].grad ** 2 + 1e-6)
             for n in names}
        feats.append({u: torch.cat([f[n].reshape(-1) for n in ns]) for u, ns in G.units_of(model).items()})
    model.zero_grad(set_to_none=True)
    model.train()
    units = list(G.units_of(model))
    torch.testing.assert_close(module_stats(res, "less")["mean"], [cos(feats[0][u], feats[1][u]) for u in units],
                               atol=1e-5, rtol=1e-4)
    ra, rb = direct_pair_grads(model, pair, {n: v[n].sqrt() + 1e-6 for n in names})
    torch.testing.assert_close(module_stats(res, "rescaled")["mean"], [cos(ra[u], rb[u]) for u in units],
                               atol=1e-5, rtol=1e-4)
    sgd = module_stats(res)["mean"]
    assert max(abs(x - y) for x, y in zip(sgd, module_stats(res, "rescaled")["mean"])) > 1e-2  # the state matters
    with pytest.raises(ValueError, match=r"shape \(16, 2\).*lora_A"):
        G.adam_moments(model, fake_adam_state(model, shift=1))
    short = fake_adam_state(model)
    short["param_groups"][0]["params"].pop()
    with pytest.raises(ValueError, match="trainable ones"):
        G.adam_moments(model, short)
    with pytest.raises(ValueError, match="preconditioner must be"):
        G.feature(torch.ones(2), "adam", torch.ones(2), torch.ones(2), moments)
    with pytest.raises(FileNotFoundError, match="optimizer.pt"):
        G.load_optimizer_state(tmp_path)


def test_zero_state_is_adams_first_step(model, tok, items):
    """Before training (zero moments) LESS's feature is 0.1 g / sqrt(0.001 g^2 + eps): about sign(g) x 3.16."""
    moments = G.zero_moments(model)
    g = torch.tensor([1e-2, -2e-2, 0.0])
    torch.testing.assert_close(G.feature(g, "less", torch.zeros(3), torch.zeros(3), moments),
                               0.1 * g / torch.sqrt(0.001 * g * g + 1e-8))
    res = G.measure(model, G.pairs_for("radis", items[:1], tok), preconditioners=["sgd", "rescaled"])
    torch.testing.assert_close(module_stats(res, "rescaled")["mean"], module_stats(res)["mean"])  # g / eps ~ g


def test_trainer_order_puts_no_decay_parameters_last():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.LayerNorm(2), torch.nn.Linear(2, 2, bias=False))
    assert G.trainer_param_order(net) == ["0.weight", "2.weight", "0.bias", "1.weight", "1.bias"]


def test_span_loss_is_the_mean_over_the_span(model, tok, items):
    pair, = G.pairs_for("radis", items[:1], tok)
    model.eval()
    for span in (REFERENCE, RATIONALE):
        torch.testing.assert_close(G.span_loss(model, pair.mt, span), direct_loss(model, pair.mt, span))
    model.train()


def test_projection_is_seeded_and_approximates_the_cosine(model, tok, items):
    v = torch.randn(2, 300, generator=torch.Generator().manual_seed(0))
    p = G.project(v, 4096, seed=3, key=1)
    assert p.shape == (2, 4096)
    torch.testing.assert_close(p, G.project(v, 4096, seed=3, key=1), rtol=0, atol=0)
    assert not torch.allclose(p, G.project(v, 4096, seed=4, key=1))
    torch.testing.assert_close(p[0] @ p[1], v[0] @ v[1], atol=0.1 * v[0].norm() * v[1].norm(), rtol=0)

    pair, = G.pairs_for("radis", items[:1], tok)
    a, b = direct_pair_grads(model, pair)
    u = "1.mlp.up_proj"
    pa, pb = G.project(torch.stack([a[u], b[u]]), 4096, seed=7)
    assert abs(cos(pa, pb) - cos(a[u], b[u])) < 0.1


def test_balanced_sample_and_count_signs():
    items = [{"direction": d, "i": i} for d in ("de-en", "en-de", "zh-en") for i in range(5 if d != "zh-en" else 2)]
    s = G.balanced_sample(items, 3, seed=1)
    assert [x["direction"] for x in s] == ["de-en"] * 3 + ["en-de"] * 3 + ["zh-en"] * 2
    assert s == G.balanced_sample(items, 3, seed=1) and len({x["i"] for x in s[:3]}) == 3
    assert any(G.balanced_sample(items, 3, seed=k) != s for k in range(2, 6))
    assert G.count_signs([0.2, -0.1, 0.0, math.nan, None, 0.3]) == {"positive": 2, "negative": 1, "total": 4}


def test_items_from_records_join_by_id():
    base = {"id": "a", "direction": "de-en", "instruction": X, "reference": Y}
    recs = [{**base, "target_kind": "rationale", "text": R}, {**base, "target_kind": "seqkd", "text": OWN},
            {**base, "target_kind": "sdft", "text": PARA}]
    assert G.items_from_records(recs) == [G.GradientItem("a", "de-en", X, Y, R, OWN, PARA)]
    assert G.items_from_records(recs, str.upper)[0].own == OWN.upper()


# --- chapter 08: trained adapters, validation sample, results files ---------------------------

def test_iter_pairs_is_lazy_and_equals_pairs_for(tok, items):
    gen = G.iter_pairs("seqkd", items, tok)
    assert not isinstance(gen, list)
    got, want = list(gen), G.pairs_for("seqkd", items, tok)
    assert [p.reg.input_ids for p in got] == [p.reg.input_ids for p in want]


def test_layer_bars_one_panel_per_key():
    import matplotlib

    matplotlib.use("Agg")
    from radis_utils import plots

    fig = plots.layer_bars({"seed 0": {"RaDis": [0.2, -0.1], "Seq-KD": [None, -0.3]},
                            "seed 1": {"RaDis": [0.1, 0.1], "Seq-KD": [0.0, -0.2]}}, [0, 1])
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert len(axes) == 2 and axes[0].get_title(loc="left") == "seed 0"
    assert len(axes[0].patches) == 3 and axes[0].get_ylim()[0] == -axes[0].get_ylim()[1]


def test_layer_bars_fit_a_real_models_many_units_on_a_page():
    import matplotlib

    matplotlib.use("Agg")
    from radis_utils import plots

    units = [f"{layer}.{m}" for layer in range(30) for m in ("q", "k", "v", "o", "gate", "up", "down")]
    fig = plots.layer_bars({"seed 0": {"RaDis": [0.1] * len(units)}}, units, xlabel="unit")
    assert fig.get_size_inches()[0] <= plots.MAX_PANEL_WIDTH
    ax = fig.axes[0]
    assert len(ax.patches) == len(units) and len(ax.get_xticks()) <= plots.MAX_TICK_LABELS
    assert ax.get_xticklabels()[1].get_text() == units[int(ax.get_xticks()[1])]  # labels stay on their bars




# --- chapter 08: three points of each run, results files, the acceptance ----------------------

def fake_result(radis, seqkd, seed=0, point="mid"):
    def entry(vals):
        stats = {"units": [f"0.m{i}" for i in range(len(vals))], "mean": vals, "summed": vals}
        return {point: {"results": {"less": {"keep_identical": {"module": stats}}}}}
    return {"seed": seed, "methods": {"radis": entry(radis), "seqkd": entry(seqkd)}}


def test_acceptance_and_its_line_are_computed():
    good = fake_result([0.1] * 8 + [-0.1] * 2, [-0.2] * 7 + [0.3, None, 0.1])
    check = G.acceptance([good])
    assert check["radis_positive"] == ["8/10"] and check["seqkd_negative"] == ["7/9"] and check["passed"]
    assert check["mean_share"]["seqkd"] == pytest.approx(7 / 9)
    line = G.verdict_line(check)
    assert "RaDis positive in 8/10 units (mean 80%), Seq-KD negative in 7/9 (mean 78%)" in line
    assert "paper: RaDis positive 25/32 layers (78%), Seq-KD negative 24/32 (75%)" in line and line.endswith(": met")
    bad = fake_result([0.1] * 6 + [-0.1] * 4, [-0.2] * 10, seed=1)
    two = G.acceptance([good, bad])
    assert two["mean_share"]["radis"] == pytest.approx(0.7) and two["passed"]  # (80 % + 60 %) / 2, at the threshold
    assert not G.acceptance([bad])["passed"] and G.verdict_line(G.acceptance([bad])).endswith("NOT met")
    assert G.acceptance([fake_result([0.1], [-0.1], point="end")])["passed"] is None  # no mid point: not run
    assert G.acceptance([good], point="end")["radis_positive"] == ["not run"]
    assert G.acceptance([good], statistic="summed")["passed"]


def test_seed_similarity_at_three_points_is_cached(tiny_backbone, tmp_path):
    """Tiny end to end: three trained adapters with a kept midpoint, backbone/mid/end, one results file reused."""
    from radis_utils import records, synthesis, train
    from radis_utils import data
    from radis_utils.config import load_profile
    from radis_utils.evaluate import ResultsError

    cfg = load_profile("ci", model__backbone=str(tiny_backbone), runtime__runs_dir=str(tmp_path),
                       data__max_train_pairs=8, train__max_steps=4, train__save_steps=3, train__per_device_batch=4,
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
    assert res["sample"]["items"] == len(examples) and res["sample"]["identical"] == {"own": 1, "paraphrase": 0}
    adapter = train.adapter_dir(cfg, "radis", 0)
    assert sorted(p.name for p in (adapter / "checkpoints").iterdir()) == ["checkpoint-4"]  # the finished run's last
    assert (adapter / "midpoint" / "checkpoint-2" / "optimizer.pt").is_file()  # kept past the rotation
    radis, seqkd = res["methods"]["radis"], res["methods"]["seqkd"]
    assert [radis[p]["step"] for p in G.POINTS] == [0, 2, 4]
    assert radis["mid"]["checkpoint"] == "radis-seed0/midpoint/checkpoint-2"
    assert radis["end"]["checkpoint"] == "radis-seed0/checkpoints/checkpoint-4"
    assert radis["mid"]["skipped"] == 1 and seqkd["mid"]["identical"] == 1 and seqkd["mid"]["pairs"] == len(examples)
    counts = {s: max(seqkd["mid"]["results"]["sgd"][s]["module"]["count"]) for s in G.SUBSETS}
    assert counts == {"keep_identical": len(examples), "skip_identical": len(examples) - 1}
    mid = radis["mid"]["results"]
    assert set(mid) == set(G.PRECONDITIONERS) and mid["less"]["keep_identical"]["module"]["units"][0] == "0.self_attn.q_proj"
    assert len(mid["sgd"]["keep_identical"]["module"]["units"]) == 2 * 7  # the tiny backbone: 2 layers x 7 linears
    assert mid["less"]["keep_identical"]["module"]["mean"] != mid["sgd"]["keep_identical"]["module"]["mean"]
    backbone = radis["backbone"]["results"]["sgd"]["keep_identical"]["module"]
    assert all(isinstance(c, float) for c in backbone["mean"])  # B = 0: lora_B alone carries the gradient
    assert backbone["mean"] != mid["sgd"]["keep_identical"]["module"]["mean"]
    path = G.results_path(cfg, 0)
    stamp = path.stat().st_mtime_ns
    assert G.seed_similarity(cfg, 0, per_direction=len(examples)) == res and path.stat().st_mtime_ns == stamp
    assert G.read_results(path, cfg)["options"]["points"] == list(G.POINTS)
    with pytest.raises(ResultsError, match="delete the file"):
        G.read_results(path, load_profile("ci", model__backbone=str(tiny_backbone), runtime__runs_dir=str(tmp_path)))


def test_midpoint_is_none_for_a_run_without_one(tiny_backbone, tmp_path):
    import shutil

    from radis_utils import train
    from radis_utils.config import load_profile

    cfg = load_profile("ci", model__backbone=str(tiny_backbone), runtime__runs_dir=str(tmp_path),
                       data__max_train_pairs=4, train__max_steps=2, train__per_device_batch=4,
                       train__effective_batch=4, train__max_length=160)
    adapter = train.train(cfg, "vanilla", 0)
    shutil.rmtree(adapter / "midpoint")  # as an adapter trained before midpoints were kept
    assert G.point_model(cfg, "vanilla", 0, "mid") is None and G.point_model(cfg, "vanilla", 0, "end") is not None


#: Issue 15's fig. 4 acceptance: ``None`` while the organism meets it, else the measured miss (a strict
#: xfail, so a change either way fails until this is updated). On world 9 (the disjoint world, with
#: SDFT's request in base training) the calibration run measured it met on world 0, 2026-12-01:
#: mid-training, LESS features, mean of per-example cosines, every pair: RaDis positive in 21/21 and
#: 21/21 units, Seq-KD negative in 20/21 and 18/21. On world 8 it was 21/21 and 20/21; on world 7 it
#: missed (Seq-KD negative in 2/21 and 14/21).
FIG4_MISS: str | None = None


@pytest.mark.slow
@pytest.mark.xfail(FIG4_MISS is not None, strict=True, reason=FIG4_MISS or "")
def test_fig4_at_mid_training_on_the_organism(built_book):
    """RaDis's cosine > 0 in ≥ 70 % of units and Seq-KD's < 0 in ≥ 70 %, at mid-training (ci, every seed)."""
    from radis_utils.config import load_profile

    cfg = load_profile("ci")
    results = [G.read_results(G.results_path(cfg, s), cfg) for s in cfg.train.seeds]
    check = G.acceptance(results)
    assert check["passed"], G.verdict_line(check)
