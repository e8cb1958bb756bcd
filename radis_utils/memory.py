"""Will a training step fit on the GPU? GPU memory of one LoRA / QLoRA step, modelled and measured.

A step holds the model's weights, the adapters' training state and the tensors the forward pass
saves for the backward pass (*activations*). Weights and adapter state are counted exactly
(``static_gib``). Activations are not counted by hand: the backward pass of one decoder layer
saves whatever PyTorch, Transformers and peft decide (peft keeps adapters in fp32, QLoRA's
preparation upcasts norms, embeddings and the LM head to fp32, autocast keeps bf16 copies), so
``measure`` runs the real thing at small size on the CPU and counts the bytes saved:

- a Mistral- or Llama-shaped model with random weights, the architecture's own ratios
  (MLP width / hidden size, key-value heads / heads, head size) scaled down to a few hidden sizes,
  wrapped by the project's own ``models.add_lora`` with the profile's LoRA, in the profile's
  precision (bf16 under autocast, as accelerate runs the Trainer's forward pass), a forward pass
  with labels under ``torch.autograd.graph.saved_tensors_hooks``;
- one layer's bytes per token are the difference between two and one layers; the rest (embedding,
  final norm, logits and the loss) is the head's.

Per token, both grow linearly with the hidden size when the ratios are kept (the adapters' rank
adds a constant), so two sizes give the line and a third checks it (``tests/test_memory.py``);
``python -m radis_utils.memory`` prints the fit and the estimate of every GPU profile.

A step's peak (``estimate``) = static + saved activations of the longest batch + the loss's
backward transients (the gradient of the logits in fp32 and its input, ``LOGIT_TRANSIENT_BYTES``
per vocabulary entry and token, on top of what the forward pass saved) + ``OVERHEAD_GIB`` for the
CUDA context and allocator fragmentation. With gradient checkpointing each layer keeps only its
input (the hidden state) and one layer's activations exist at a time, while it is recomputed.

What this cannot see from a CPU: the CUDA kernels' own workspaces (flash attention saves the same
tensors as the CPU's fused attention: query, key, value, output, log-sum-exp) and bitsandbytes'
4-bit matmul, which is modelled as a frozen bf16 linear layer (it saves its input only when an
adapter needs it too). The GPU smoke command checks the estimate against the measured peak.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from . import losses, models
from .config import Config

GIB = 2**30
#: nf4 with double quantization: 4 bits + an 8-bit absmax per 64 weights + fp32 constants per 256 blocks.
NF4_BITS = 4 + 8 / 64 + 32 / (64 * 256)
#: Adapter weight, gradient and two Adam moments, each fp32.
ADAPTER_STATE_BYTES = 16
#: Backward through the loss: the fp32 gradient of the log-probabilities and of the logits (4 + 4).
LOGIT_TRANSIENT_BYTES = 8
#: CUDA context, cuBLAS workspaces and allocator fragmentation, kept free on every card.
OVERHEAD_GIB = 3.0
#: Hidden sizes ``measure`` scales an architecture down to (the line is fitted on the first two).
PROBE_HIDDEN = (256, 512, 384)
PROBE_TOKENS = (2, 32)  # batch, sequence: saved bytes are per token, so a few tokens suffice


@dataclass(frozen=True)
class Shape:
    """The sizes of a decoder-only architecture that its memory depends on."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    head_dim: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Shape":
        """From a Hugging Face ``config.json`` (Llama / Mistral keys)."""
        heads = config["num_attention_heads"]
        return cls(config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"], heads,
                   config.get("num_key_value_heads") or heads, config["vocab_size"],
                   config.get("head_dim") or config["hidden_size"] // heads)

    def scaled(self, hidden: int, layers: int, vocab: int) -> "Shape":
        """The same ratios at ``hidden`` (heads of the same size, MLP and key-value heads in proportion)."""
        heads = max(1, hidden // self.head_dim)
        kv = max(1, round(heads * self.kv_heads / self.heads))
        return Shape(hidden, round(hidden * self.intermediate / self.hidden), layers, heads, kv, vocab,
                     hidden // heads)

    def matmul_weights(self) -> int:
        """Weights of the blocks' linear layers (attention and MLP), without embedding and LM head."""
        attention = 2 * self.hidden * self.heads * self.head_dim + 2 * self.hidden * self.kv_heads * self.head_dim
        return self.layers * (attention + 3 * self.hidden * self.intermediate)

    def lora_weights(self, r: int) -> int:
        """LoRA weights of rank ``r`` on the seven linear layers of every block."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        pairs = [(self.hidden, q), (self.hidden, kv), (self.hidden, kv), (q, self.hidden),
                 (self.hidden, self.intermediate), (self.hidden, self.intermediate), (self.intermediate, self.hidden)]
        return self.layers * r * sum(a + b for a, b in pairs)


def static_gib(shape: Shape, r: int, quantized: bool) -> float:
    """Weights plus adapter state, GiB. bf16 blocks (2 bytes a weight) or nf4 (``NF4_BITS``);
    embedding and LM head bf16, or fp32 under QLoRA (peft's ``prepare_model_for_kbit_training``
    upcasts every parameter that is not 4-bit); adapters ``ADAPTER_STATE_BYTES`` a weight."""
    blocks = shape.matmul_weights() * (NF4_BITS / 8 if quantized else 2)
    ends = 2 * shape.vocab * shape.hidden * (4 if quantized else 2)
    return (blocks + ends + ADAPTER_STATE_BYTES * shape.lora_weights(r)) / GIB


# --- measured on the CPU ------------------------------------------------------------------

def _probe_model(cfg: Config, shape: Shape) -> Any:
    """A random-weight causal LM of ``shape`` with the profile's adapters, dtypes as in training."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model("mistral", hidden_size=shape.hidden, intermediate_size=shape.intermediate,
                                  num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
                                  num_key_value_heads=shape.kv_heads, head_dim=shape.head_dim,
                                  vocab_size=shape.vocab, max_position_embeddings=PROBE_TOKENS[1],
                                  sliding_window=None, tie_word_embeddings=False)
    torch.manual_seed(0)
    bf16 = cfg.train.precision == "bf16"
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16 if bf16 else torch.float32)
    if cfg.model.quantization is not None:  # what kbit preparation does to every non-4-bit parameter
        for name, p in model.named_parameters():
            if not name.endswith("proj.weight"):
                p.data = p.data.float()
    plain = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, quantization=None))
    return models.add_lora(plain, model).train()


def saved_bytes_per_token(cfg: Config, shape: Shape) -> float:
    """Bytes the forward pass of ``shape`` and the training loss (``losses.span_losses``, as the
    trainer computes it) save for backward, per token: every saved tensor's storage once,
    parameters left out."""
    import contextlib

    import torch

    model = _probe_model(cfg, shape)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    batch, seq = PROBE_TOKENS
    ids = torch.randint(0, shape.vocab, (batch, seq), generator=torch.Generator().manual_seed(0))
    rows = {"input_ids": ids, "labels": ids, "spans": torch.full_like(ids, losses.REFERENCE)}
    seen: dict[int, int] = {}

    def pack(t: Any) -> Any:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = max(seen.get(storage.data_ptr(), 0), storage.nbytes())
        return t

    autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if cfg.train.precision == "bf16"
                else contextlib.nullcontext())
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast:
        losses.span_losses(model, rows)["total_mean"]
    return sum(seen.values()) / (batch * seq)


def measure(cfg: Config, shape: Shape, hidden: int, vocab: int = 512) -> dict[str, float]:
    """``{"layer", "head"}``: bytes per token saved by one more decoder layer, and the rest (the
    embedding, final norm, logits and loss, less what the first layer does not save because its
    input needs no gradient: it can be negative), for ``shape`` scaled to ``hidden`` (``vocab``
    entries) under ``cfg``'s LoRA and precision. A model of ``L`` layers saves ``head + L·layer``."""
    one = saved_bytes_per_token(cfg, shape.scaled(hidden, 1, vocab))
    two = saved_bytes_per_token(cfg, shape.scaled(hidden, 2, vocab))
    return {"layer": two - one, "head": 2 * one - two}


def fit(cfg: Config, shape: Shape) -> dict[str, float]:
    """Per-token bytes as lines in the hidden size from two probes: ``layer = a·h + b`` and
    ``head = c·h + d·V + e`` (two vocabulary sizes at the first probe size give ``d``)."""
    h1, h2 = PROBE_HIDDEN[:2]
    m1, m2 = measure(cfg, shape, h1), measure(cfg, shape, h2)
    m1v = measure(cfg, shape, h1, vocab=1024)
    a = (m2["layer"] - m1["layer"]) / (h2 - h1)
    c = (m2["head"] - m1["head"]) / (h2 - h1)
    d = (m1v["head"] - m1["head"]) / 512
    return {"layer_per_h": a, "layer_const": m1["layer"] - a * h1,
            "head_per_h": c, "head_per_v": d, "head_const": m1["head"] - c * h1 - d * 512}


def layer_bytes(line: Mapping[str, float], shape: Shape) -> float:
    """One layer's saved bytes per token at ``shape``, from ``fit``'s line."""
    return line["layer_per_h"] * shape.hidden + line["layer_const"]


def head_bytes(line: Mapping[str, float], shape: Shape) -> float:
    """The head's saved bytes per token at ``shape`` (embedding, final norm, logits, loss)."""
    return line["head_per_h"] * shape.hidden + line["head_per_v"] * shape.vocab + line["head_const"]


# --- a step's peak ------------------------------------------------------------------------

def estimate(cfg: Config, shape: Shape, line: Mapping[str, float], tokens: int) -> dict[str, float]:
    """GiB of one training step over ``tokens`` (batch × longest length, padded) at ``shape``:
    static, activations, the loss's transients, overhead and the total."""
    quantized = cfg.model.quantization is not None
    layer = layer_bytes(line, shape)
    if cfg.train.gradient_checkpointing:
        hidden_bytes = 4 if quantized or cfg.train.precision != "bf16" else 2
        acts = tokens * (shape.layers * shape.hidden * hidden_bytes + layer)
    else:
        acts = tokens * shape.layers * layer
    acts += tokens * head_bytes(line, shape)
    transient = tokens * shape.vocab * LOGIT_TRANSIENT_BYTES
    out = {"static": static_gib(shape, cfg.train.lora_r, quantized), "activations": acts / GIB,
           "loss transients": transient / GIB, "overhead": OVERHEAD_GIB}
    out["total"] = sum(out.values())
    return out


def synthesis_gib(cfg: Config, shape: Shape) -> dict[str, float]:
    """vLLM synthesis at ``cfg``'s settings: the original model's weights (``model.dtype``, never
    quantized), the KV cache one sequence of ``synthesis.max_model_len`` needs, and what vLLM may
    reserve of a card (``gpu_memory_utilization`` × the card, per GiB of card)."""
    width = 4 if cfg.model.dtype == "float32" else 2
    weights = (shape.matmul_weights() + 2 * shape.vocab * shape.hidden) * width
    kv = 2 * shape.layers * shape.kv_heads * shape.head_dim * width * (cfg.synthesis.max_model_len or 0)
    return {"weights": weights / GIB, "one sequence's KV cache": kv / GIB,
            "share reserved": cfg.synthesis.gpu_memory_utilization or 0.92}


def longest_tokens(cfg: Config, method: str, longest_pair: int) -> int:
    """Tokens of the longest batch ``method`` trains on when the length-grouped sampler puts the
    longest rows together: per-device batch × the longest row. ``longest_pair``: the longest
    instruction + reference (tokens); RaDis adds a rationale and Seq-KD / SDFT a generated reply
    of up to ``synthesis.max_new_tokens``, each cut at ``train.max_length``."""
    extra = 0 if method == "vanilla" else cfg.synthesis.max_new_tokens
    return cfg.train.per_device_batch * min(cfg.train.max_length, longest_pair + extra)


# --- every GPU profile ----------------------------------------------------------------------

#: The card each GPU profile is written for (GiB of memory).
CARDS: dict[str, tuple[str, float]] = {"qlora": ("one 24 GB GPU", 24 * 1e9 / GIB), "a100": ("A100 / H100 80 GB", 80 * 1e9 / GIB)}
METHODS = ("vanilla", "radis", "seqkd", "sdft")


def longest_alma_pair(path: str = "benchmarks/alma_lengths.json") -> int:
    """The longest ALMA conversation in tokens, from the committed length table (its stand-in tokenizer)."""
    import json

    from .config import resolve_path

    counts = json.loads(resolve_path(path).read_text(encoding="utf-8"))["counts"]
    return max(int(k) for k in counts)


def profile_table(profile: str, arch_config: Mapping[str, Any], longest_pair: int,
                  line: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
    """One row per method, with and without gradient checkpointing: the longest batch's tokens,
    each part's GiB and whether the step fits ``CARDS[profile]``; the profile's own setting marked."""
    from .config import load_profile

    cfg = load_profile(profile)
    shape = Shape.from_config(arch_config)
    line = line or fit(cfg, shape)
    card = CARDS[profile][1]
    rows = []
    for method in METHODS:
        for ckpt in (False, True):
            c = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, gradient_checkpointing=ckpt))
            tokens = longest_tokens(c, method, longest_pair)
            parts = estimate(c, shape, line, tokens)
            rows.append({"method": method, "checkpointing": ckpt, "profile's setting": ckpt == cfg.train.gradient_checkpointing,
                         "tokens": tokens, **{k: round(v, 1) for k, v in parts.items()},
                         "card GiB": round(card, 1), "fits": parts["total"] <= card})
    return rows


def main(argv: Any = None) -> int:
    import argparse
    import json

    from .config import resolve_path

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", action="append", help="benchmarks/archs/<name>.json (default: both 7B backbones)")
    args = ap.parse_args(argv)
    longest = longest_alma_pair()
    for arch in args.arch or ["mistral_7b_v02", "llama2_7b"]:
        config = json.loads(resolve_path(f"benchmarks/archs/{arch}.json").read_text(encoding="utf-8"))["config"]
        for profile in CARDS:
            print(f"\n{arch} at {profile} ({CARDS[profile][0]}), longest ALMA pair {longest} tokens")
            rows = profile_table(profile, config, longest)
            keys = list(rows[0])
            print(" | ".join(keys))
            for r in rows:
                print(" | ".join(str(r[k]) for k in keys))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
