"""Items and loss pairs for the gradient similarity (paper §5.3, fig. 4); the measurement is ``measure``.

What "regulariser" means per method (``pairs_for``):

* ``radis``: one sequence ``x → y ⊕ r``; MT loss on the ``y`` tokens, regulariser on ``r``.
* ``seqkd``: MT loss on ``(x, y)``; regulariser = the loss on ``(x, y')``, the model's own translation.
* ``sdft``: MT loss on ``(x, y)``; regulariser = the loss on ``(x, ỹ)``, the self-distilled
  paraphrase of ``y`` that SDFT trains on *instead of* ``y``.

Losses are span *means*; a cosine does not depend on the scale of either loss. ``project``
applies a fixed seeded Rademacher projection (LESS's random projection, for parity; the exact
cosine is cheaper at LoRA sizes).
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch

from .. import losses
from ..losses import RATIONALE, REFERENCE, Tokenized

PAIR_METHODS = ("radis", "seqkd", "sdft")
_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks|layer)\.(\d+)\.")
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
    identical: bool = False  # the regulariser's target equals y: the two losses coincide


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
    with no tokens after truncation; ``measure.measure`` counts these as skipped.
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
            pair = GradientPair(mt, REFERENCE, reg, REFERENCE, t.strip() == y.strip()) if mt and reg else None
        if pair and (_n_tokens(pair.mt, pair.mt_span) == 0 or _n_tokens(pair.reg, pair.reg_span) == 0):
            pair = None
        out.append(pair)
    return out


def _n_tokens(ex: Tokenized, span: int) -> int:
    """Learned next-token targets in ``span`` (position 0 is never a target)."""
    return sum(1 for lab, s in zip(ex.labels[1:], ex.spans[1:]) if s == span and lab != losses.IGNORE)


def span_means(model: Any, ex: Tokenized, spans: Sequence[int], other: Tokenized | None = None,
               other_span: int | None = None) -> list[torch.Tensor]:
    """Mean cross-entropy over the learned tokens of each of ``spans`` of ``ex``, and of ``other_span`` of
    ``other`` when given: one forward pass (``other`` rides in the same right-padded batch)."""
    device = next(model.parameters()).device
    rows = [ex] if other is None else [ex, other]
    batch = {k: v.to(device) for k, v in losses.collate(rows, pad_id=0).items()}
    tok, span_of = losses.token_losses(model, batch)
    wanted = [(0, span) for span in spans] + ([] if other is None else [(1, other_span)])
    out = []
    for row, span in wanted:
        mask = span_of[row] == span
        if not mask.any():
            raise ValueError(f"span {losses.SPANS[span]!r} has no learned tokens in this example")
        out.append(tok[row][mask].mean())
    return out


def span_loss(model: Any, tokenized: Tokenized, span: int) -> torch.Tensor:
    """Mean cross-entropy over the learned tokens of ``span`` (``REFERENCE`` or ``RATIONALE``)."""
    return span_means(model, tokenized, [span])[0]


def layer_of(param_name: str) -> int | None:
    """Transformer layer index in a parameter name (``...layers.7.self_attn...`` → 7), else ``None``."""
    m = _LAYER.search(param_name)
    return int(m.group(1)) if m else None


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


def balanced_sample(items: Sequence[Any], per_direction: int, seed: int = 0) -> list[Any]:
    """Up to ``per_direction`` items of each ``direction`` (paper: 128), drawn with ``seed``; directions sorted."""
    groups: dict[str, list[Any]] = {}
    for item in items:
        groups.setdefault(_get(item, "direction"), []).append(item)
    rng = random.Random(seed)
    return [x for d in sorted(groups) for x in rng.sample(groups[d], min(per_direction, len(groups[d])))]
