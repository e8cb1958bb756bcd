"""Per-layer gradient similarity between the MT loss and each method's regulariser (paper §5.3, fig. 4).

For every example and every transformer layer we take the gradient of the MT loss and the
gradient of the method's regularisation loss over that layer's trainable (LoRA) parameters,
flatten each, and compute their cosine. The figure's value for a layer is the **mean of the
per-example cosines** (not the cosine of summed gradients); layers where either gradient is
zero for an example skip that example, hence a per-layer ``count``. Losses are span *means*;
a cosine does not depend on the scale of either loss, so mean vs sum does not matter.

What "regulariser" means per method (``pairs_for``):

* ``radis``: one sequence ``x → y ⊕ r``; MT loss on the ``y`` tokens, regulariser on ``r``.
* ``seqkd``: MT loss on ``(x, y)``; regulariser = the loss on ``(x, y')``, the model's own translation.
* ``sdft``: MT loss on ``(x, y)``; regulariser = the loss on ``(x, ỹ)``, the self-distilled
  paraphrase of ``y`` that SDFT trains on *instead of* ``y``.

Options follow LESS (Xia et al. 2024): ``preconditioner="adam"`` divides gradients elementwise
by ``sqrt(v) + eps``, ``v`` the second moment of a saved Adam state (LESS also folds in the first
moment; we only rescale). ``projection_dim`` applies a fixed seeded Rademacher projection per
layer: an approximation, for parity with LESS; the exact cosine (default) is cheaper.

Chapter 08's runs (adapters, samples, results files) are in ``gradients.runs``.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch

from .. import losses
from ..losses import RATIONALE, REFERENCE, Tokenized

PAIR_METHODS = ("radis", "seqkd", "sdft")
_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks|layer)\.(\d+)\.")
_NO_DECAY = re.compile(r"bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)")
_ROW_BLOCK, _COL_BLOCK = 1 << 16, 256  # projection blocks: 64 MiB of float32 at a time


@dataclass(frozen=True)
class GradientItem:
    """One validation example with every method's synthesised target (empty string = none)."""

    id: str
    direction: str
    instruction: str
    reference: str
    rationale: str = ""  # RaDis r
    own: str = ""  # Seq-KD y' (the model's own translation)
    paraphrase: str = ""  # SDFT ỹ


@dataclass
class GradientPair:
    """The MT loss is the mean CE on ``mt_span`` of ``mt``; the regulariser on ``reg_span`` of ``reg``."""

    mt: Tokenized
    mt_span: int
    reg: Tokenized
    reg_span: int


def _get(item: Any, name: str, default: Any = None) -> Any:
    return item.get(name, default) if isinstance(item, Mapping) else getattr(item, name, default)


def items_from_records(records: Iterable[Mapping[str, Any]],
                       extract_own: Callable[[str], str] | None = None) -> list[GradientItem]:
    """Join synthesis records (any mix of target kinds) by ``id`` into ``GradientItem``s, first-seen order.

    ``extract_own`` maps a raw ``seqkd`` reply to the translation ``y'`` (pass the same extraction
    training uses, e.g. ``lambda t: split_reply(t, cfg.eval.extraction)[0]``); default: the raw text.
    """
    field = {"rationale": "rationale", "seqkd": "own", "sdft": "paraphrase"}
    rows: dict[str, dict[str, str]] = {}
    for r in records:
        row = rows.setdefault(r["id"], {k: r[k] for k in ("id", "direction", "instruction", "reference")})
        text = r["text"]
        row[field[r["target_kind"]]] = extract_own(text) if extract_own and r["target_kind"] == "seqkd" else text
    return [GradientItem(**row) for row in rows.values()]


def pairs_for(method: str, items: Iterable[Any], tokenizer: Any,
              max_length: int | None = None) -> list[GradientPair | None]:
    """One ``GradientPair`` per item, or ``None`` where the method has no regulariser for it.

    ``items``: ``GradientItem``s or dicts/objects with the same fields. ``None`` marks an empty
    target (e.g. an empty rationale), an example too long for ``max_length``, or a span left
    with no tokens after truncation; ``gradient_similarity`` counts these as skipped.
    """
    if method not in PAIR_METHODS:
        raise ValueError(f"unknown method {method!r}; gradient pairs exist for {', '.join(PAIR_METHODS)}")
    target = {"radis": "rationale", "seqkd": "own", "sdft": "paraphrase"}[method]
    out: list[GradientPair | None] = []
    for item in items:
        x, y, t = _get(item, "instruction"), _get(item, "reference"), (_get(item, target) or "")
        pair = None
        if t.strip() and method == "radis":
            ex = losses.tokenize_example(tokenizer, x, y, t, max_length)
            pair = GradientPair(ex, REFERENCE, ex, RATIONALE) if ex else None
        elif t.strip():
            mt = losses.tokenize_example(tokenizer, x, y, "", max_length)
            reg = losses.tokenize_example(tokenizer, x, t, "", max_length)
            pair = GradientPair(mt, REFERENCE, reg, REFERENCE) if mt and reg else None
        if pair and (_n_tokens(pair.mt, pair.mt_span) == 0 or _n_tokens(pair.reg, pair.reg_span) == 0):
            pair = None
        out.append(pair)
    return out


def _n_tokens(ex: Tokenized, span: int) -> int:
    """Learned next-token targets in ``span`` (position 0 is never a target)."""
    return sum(1 for lab, s in zip(ex.labels[1:], ex.spans[1:]) if s == span and lab != losses.IGNORE)


def _span_means(model: Any, ex: Tokenized, spans: Sequence[int]) -> list[torch.Tensor]:
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in losses.collate([ex], pad_id=0).items()}
    tok, span_of = losses.token_losses(model, batch)
    out = []
    for span in spans:
        mask = span_of == span
        if not mask.any():
            raise ValueError(f"span {losses.SPANS[span]!r} has no learned tokens in this example")
        out.append(tok[mask].mean())
    return out


def span_loss(model: Any, tokenized: Tokenized, span: int) -> torch.Tensor:
    """Mean cross-entropy over the learned tokens of ``span`` (``REFERENCE`` or ``RATIONALE``)."""
    return _span_means(model, tokenized, [span])[0]


def layer_of(param_name: str) -> int | None:
    """Transformer layer index in a parameter name (``...layers.7.self_attn...`` → 7), else ``None``."""
    m = _LAYER.search(param_name)
    return int(m.group(1)) if m else None


def params_by_layer(model: Any) -> dict[int | None, list[tuple[str, torch.nn.Parameter]]]:
    """Trainable ``(name, parameter)`` pairs grouped by layer, model order; ``None`` = outside layers."""
    groups: dict[int | None, list[tuple[str, torch.nn.Parameter]]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault(layer_of(name), []).append((name, p))
    if not groups:
        raise ValueError("the model has no trainable parameters; wrap it with LoRA (models.load_backbone) first")
    return groups


def per_layer_gradients(model: Any, loss: torch.Tensor,
                        by_layer: Mapping[Any, Sequence[tuple[str, Any]]] | None = None,
                        scale: Mapping[str, torch.Tensor] | None = None,
                        retain_graph: bool = False) -> dict[int, torch.Tensor]:
    """Flattened float32 gradient of ``loss`` per layer (``torch.autograd.grad``; ``.grad`` untouched).

    ``scale``: optional per-parameter divisor (the Adam preconditioner). Layer ``None`` is skipped.
    """
    by_layer = {k: v for k, v in (by_layer or params_by_layer(model)).items() if k is not None}
    named = [(n, p) for layer in sorted(by_layer) for n, p in by_layer[layer]]
    grads = torch.autograd.grad(loss, [p for _, p in named], retain_graph=retain_graph, allow_unused=True)
    flat = {}
    for (n, p), g in zip(named, grads):
        g = torch.zeros_like(p, dtype=torch.float32) if g is None else g.float()
        flat[n] = (g / scale[n] if scale is not None else g).reshape(-1)
    return {layer: torch.cat([flat[n] for n, _ in by_layer[layer]]) for layer in sorted(by_layer)}


def load_optimizer_state(path: str | Path) -> dict[str, Any]:
    """An optimizer ``state_dict`` from ``optimizer.pt`` or a Trainer checkpoint folder holding it."""
    path = Path(path)
    file = path / "optimizer.pt" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no optimizer state; pass a Trainer checkpoint folder "
                                "(checkpoint-N/ with optimizer.pt) saved without save_only_model")
    return torch.load(file, map_location="cpu", weights_only=True)


def trainer_param_order(model: Any) -> list[str]:
    """Trainable parameter names in the order HF Trainer registers them with its optimizer.

    Trainer builds two groups, each in ``named_parameters`` order: weight-decay parameters, then
    the rest (biases, norms). For LoRA adapters all weights decay, so this is model order.
    """
    norm_params = {f"{m}.{n}" if m else n for m, mod in model.named_modules() if isinstance(mod, torch.nn.LayerNorm)
                   for n, _ in mod.named_parameters(recurse=False)}
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    no_decay = [n for n in names if n in norm_params or _NO_DECAY.search(n.lower())]
    return [n for n in names if n not in no_decay] + no_decay


def adam_preconditioner(model: Any, optimizer_state: Mapping[str, Any] | str | Path, eps: float = 1e-8,
                        param_order: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """Per-parameter divisor ``sqrt(exp_avg_sq) + eps`` from a saved Adam(W) state.

    The k-th state entry (param groups concatenated) is matched to the k-th name of
    ``param_order`` (default ``trainer_param_order``); every shape must match, or a ``ValueError``
    says which parameter differs.
    """
    state = load_optimizer_state(optimizer_state) if isinstance(optimizer_state, (str, Path)) else optimizer_state
    params = dict(model.named_parameters())
    order = list(param_order or trainer_param_order(model))
    ids = [i for group in state["param_groups"] for i in group["params"]]
    if len(ids) != len(order):
        raise ValueError(f"optimizer state holds {len(ids)} parameters but the model has {len(order)} trainable ones; "
                         "load the same adapter configuration (LoRA rank, target modules) as the checkpoint")
    out = {}
    for k, (name, i) in enumerate(zip(order, ids)):
        v = state["state"].get(i, {}).get("exp_avg_sq")
        if v is None:
            raise ValueError(f"optimizer state entry {i} ({name}) has no 'exp_avg_sq': not an Adam state, or the "
                             "parameter never received a gradient")
        if tuple(v.shape) != tuple(params[name].shape):
            raise ValueError(f"optimizer state entry {k} has shape {tuple(v.shape)} but parameter {name} has shape "
                             f"{tuple(params[name].shape)}; the state belongs to another model or parameter order "
                             "(pass param_order= to match how the optimizer was built)")
        out[name] = v.to(params[name].device, torch.float32).sqrt() + eps
    return out


def _block_seed(*parts: int) -> int:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def project(vectors: torch.Tensor, dim: int, seed: int = 0, key: int = 0) -> torch.Tensor:
    """``vectors`` (k × n) times a seeded n × ``dim`` Rademacher matrix / sqrt(dim).

    The matrix is generated block by block (``(seed, key, block)`` seeds each block), never
    whole, so memory is O(k × dim + one block). Same seed, key, n and device → same matrix.
    """
    k, n = vectors.shape
    out = torch.zeros(k, dim, dtype=torch.float32, device=vectors.device)
    gen = torch.Generator(device=vectors.device)
    for r0 in range(0, n, _ROW_BLOCK):
        rows = vectors[:, r0:r0 + _ROW_BLOCK].float()
        for c0 in range(0, dim, _COL_BLOCK):
            gen.manual_seed(_block_seed(seed, key, n, r0, c0))
            shape = (rows.shape[1], min(_COL_BLOCK, dim - c0))
            signs = torch.randint(0, 2, shape, generator=gen, device=vectors.device).float() * 2 - 1
            out[:, c0:c0 + shape[1]] += rows @ signs
    return out / math.sqrt(dim)


def gradient_similarity(model: Any, pairs: Iterable[GradientPair | None], preconditioner: str = "sgd",
                        optimizer_state: Mapping[str, Any] | str | Path | None = None,
                        projection_dim: int | None = None, seed: int = 0, eps: float = 1e-8) -> dict[str, Any]:
    """Mean per-example cosine between MT and regulariser gradients, per layer (paper fig. 4).

    Streams ``pairs`` (``None`` entries are counted as ``skipped``) keeping running sums only.
    Returns ``layers``, ``cosine`` (mean, NaN where count is 0), ``cosine_std``, ``count``,
    ``pairs`` (used), ``skipped`` and the options. The model runs in eval mode (no dropout);
    every module's training flag is restored afterwards.
    """
    from ..config import progress

    if preconditioner not in ("sgd", "adam"):
        raise ValueError(f"preconditioner must be 'sgd' or 'adam', got {preconditioner!r}")
    if preconditioner == "adam" and optimizer_state is None:
        raise ValueError("preconditioner='adam' needs optimizer_state: a checkpoint folder, optimizer.pt "
                         "or a state dict")
    by_layer = {k: v for k, v in params_by_layer(model).items() if k is not None}
    if not by_layer:
        raise ValueError("no trainable parameter sits inside a transformer layer (names like '...layers.N...')")
    scale = adam_preconditioner(model, optimizer_state, eps) if preconditioner == "adam" else None
    layers = sorted(by_layer)
    total, squares, count = dict.fromkeys(layers, 0.0), dict.fromkeys(layers, 0.0), dict.fromkeys(layers, 0)
    used = skipped = 0
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        for pair in progress(pairs, desc="gradient pairs", unit="pair"):
            if pair is None:
                skipped += 1
                continue
            if pair.mt is pair.reg:  # RaDis: one forward pass, two spans
                mt_loss, reg_loss = _span_means(model, pair.mt, [pair.mt_span, pair.reg_span])
            else:
                mt_loss, reg_loss = span_loss(model, pair.mt, pair.mt_span), span_loss(model, pair.reg, pair.reg_span)
            g_mt = per_layer_gradients(model, mt_loss, by_layer, scale, retain_graph=True)
            g_reg = per_layer_gradients(model, reg_loss, by_layer, scale)
            for layer in layers:
                a, b = g_mt.pop(layer), g_reg.pop(layer)
                if projection_dim is not None:
                    a, b = project(torch.stack([a, b]), projection_dim, seed, layer)
                na, nb = a.norm(), b.norm()
                if na == 0 or nb == 0:
                    continue
                cos = float(torch.dot(a, b) / (na * nb))
                total[layer] += cos
                squares[layer] += cos * cos
                count[layer] += 1
            used += 1
    finally:
        for m, mode in modes:
            m.training = mode
    mean = [total[l] / count[l] if count[l] else math.nan for l in layers]
    std = [math.sqrt(max(squares[l] / count[l] - m * m, 0.0)) if count[l] else math.nan for l, m in zip(layers, mean)]
    return {"layers": layers, "cosine": mean, "cosine_std": std, "count": [count[l] for l in layers],
            "pairs": used, "skipped": skipped, "preconditioner": preconditioner, "projection_dim": projection_dim,
            "seed": seed}


def balanced_sample(items: Sequence[Any], per_direction: int, seed: int = 0) -> list[Any]:
    """Up to ``per_direction`` items of each ``direction`` (paper: 128), drawn with ``seed``; directions sorted."""
    groups: dict[str, list[Any]] = {}
    for item in items:
        groups.setdefault(_get(item, "direction"), []).append(item)
    rng = random.Random(seed)
    return [x for d in sorted(groups) for x in rng.sample(groups[d], min(per_direction, len(groups[d])))]


def count_signs(cosines: Iterable[float]) -> dict[str, int]:
    """How many layers have a positive / negative mean cosine; ``total`` counts non-NaN layers."""
    values = [c for c in cosines if not math.isnan(c)]
    return {"positive": sum(c > 0 for c in values), "negative": sum(c < 0 for c in values), "total": len(values)}
