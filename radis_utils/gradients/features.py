"""Gradient features from a checkpoint's Adam state (LESS, Xia et al. 2024), per parameter.

Three features of one raw gradient ``g`` (``PRECONDITIONERS``):

* ``sgd``: ``g`` itself;
* ``rescaled``: ``g / (sqrt(v) + eps)``: only the second moment ``v`` of the saved state
  divides ``g`` (a diagonal preconditioner; named for what it is, it is *not* LESS's feature);
* ``less``: LESS's Adam feature (``obtain_gradients_with_adam`` in princeton-nlp/LESS): the
  moments are first updated with ``g``, ``m' = b1 m + (1 - b1) g``, ``v' = b2 v + (1 - b2) g^2``,
  and the feature is ``m' / sqrt(v' + eps)`` (no bias correction, ``eps`` inside the root).
  Two features of the same example share ``b1 m``: at a trained checkpoint that shared term
  pulls their cosine towards +1 whatever the two losses want.

``Moments`` holds ``m`` and ``v`` per parameter name, matched to Hugging Face ``Trainer``'s
optimizer order (``trainer_param_order``); ``zero_moments`` is the state before the first step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

PRECONDITIONERS = ("sgd", "rescaled", "less")
_NO_DECAY = re.compile(r"bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)")


@dataclass
class Moments:
    """Adam's first (``m``) and second (``v``) moments per trainable parameter name, and its constants."""

    m: dict[str, torch.Tensor]
    v: dict[str, torch.Tensor]
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    step: int = 0


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


def adam_moments(model: Any, optimizer_state: Mapping[str, Any] | str | Path,
                 param_order: Sequence[str] | None = None) -> Moments:
    """``Moments`` from a saved Adam(W) state (file, checkpoint folder or dict).

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
    m, v, step = {}, {}, 0
    for k, (name, i) in enumerate(zip(order, ids)):
        entry = state["state"].get(i, {})
        if "exp_avg_sq" not in entry or "exp_avg" not in entry:
            raise ValueError(f"optimizer state entry {i} ({name}) has no 'exp_avg'/'exp_avg_sq': not an Adam state, "
                             "or the parameter never received a gradient")
        if tuple(entry["exp_avg_sq"].shape) != tuple(params[name].shape):
            raise ValueError(f"optimizer state entry {k} has shape {tuple(entry['exp_avg_sq'].shape)} but parameter "
                             f"{name} has shape {tuple(params[name].shape)}; the state belongs to another model or "
                             "parameter order (pass param_order= to match how the optimizer was built)")
        device = params[name].device
        m[name], v[name] = (entry[key].to(device, torch.float32) for key in ("exp_avg", "exp_avg_sq"))
        step = max(step, int(entry.get("step", 0)))
    group = state["param_groups"][0] if state["param_groups"] else {}
    beta1, beta2 = group.get("betas", (0.9, 0.999))
    return Moments(m, v, float(beta1), float(beta2), float(group.get("eps", 1e-8)), step)


def zero_moments(model: Any) -> Moments:
    """The state before the first optimizer step: zero moments, AdamW's default constants."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return Moments({n: torch.zeros_like(p, dtype=torch.float32) for n, p in named},
                   {n: torch.zeros_like(p, dtype=torch.float32) for n, p in named})


def feature(g: torch.Tensor, preconditioner: str, m: torch.Tensor | None = None, v: torch.Tensor | None = None,
            moments: Moments | None = None) -> torch.Tensor:
    """The ``preconditioner``'s feature of the flat gradient ``g`` (``m``, ``v``: the same positions' moments)."""
    if preconditioner == "sgd":
        return g
    if m is None or v is None or moments is None:
        raise ValueError(f"preconditioner {preconditioner!r} needs the optimizer moments (m, v)")
    if preconditioner == "rescaled":
        return g / (v.sqrt() + moments.eps)
    if preconditioner == "less":
        m1 = moments.beta1 * m + (1 - moments.beta1) * g
        v1 = moments.beta2 * v + (1 - moments.beta2) * g * g
        return m1 / torch.sqrt(v1 + moments.eps)
    raise ValueError(f"preconditioner must be one of {', '.join(PRECONDITIONERS)}, got {preconditioner!r}")
