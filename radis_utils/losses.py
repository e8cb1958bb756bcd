"""Span-labelled tokenization and per-span losses (paper §3.3, eq. 4).

A training example is the chat conversation (instruction ``x``, response ``y ⊕ r``) rendered
with the backbone's own template. Every token gets a span: ``prompt`` (template + user turn,
never learned), ``reference`` (``y``) or ``rationale`` (``r``). The tokens that close the
assistant turn (EOS / end-of-turn) are learned too and belong to the last non-empty span of the
response: to ``r`` when there is a rationale (the original model ended its own continuation
there), to ``y`` otherwise. Because the spans partition the learned tokens, the summed causal-LM
loss is exactly ``MT loss + rationale loss``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from .prompts import chat_prompt, chat_template_of
from .records import join_rationale

IGNORE = -100
SPANS = ("prompt", "reference", "rationale")
PROMPT, REFERENCE, RATIONALE = range(3)


@dataclass
class Tokenized:
    """Token ids, labels (-100 on the prompt) and the span id of every token."""

    input_ids: list[int]
    labels: list[int]
    spans: list[int]
    truncated: bool = False


def tokenize_example(tokenizer: Any, instruction: str, reference: str, rationale: str = "",
                     max_length: int | None = None) -> Tokenized | None:
    """Tokenize one conversation with span labels; ``None`` if prompt + reference cannot fit.

    Too-long examples lose rationale tokens first (and then do not learn the end-of-turn,
    since the turn did not end there); the reference is never cut.
    """
    chat_template_of(tokenizer)
    if not reference.strip():
        raise ValueError("empty reference: every training example needs a reference translation")
    response = join_rationale(reference, rationale.rstrip())  # templates may strip the end
    prompt = chat_prompt(tokenizer, instruction)
    full = tokenizer.apply_chat_template(
        [{"role": "user", "content": instruction}, {"role": "assistant", "content": response}],
        tokenize=False)
    if not full.startswith(prompt):
        raise ValueError("the chat template renders the user turn differently with and without "
                         "an assistant reply; cannot label the prompt span")
    ref_start = full.index(reference.strip(), len(prompt))
    ref_end = ref_start + len(reference.strip())
    resp_end = full.rindex(response) + len(response)
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    last = RATIONALE if response != reference.strip() else REFERENCE
    spans = []
    for start, end in enc["offset_mapping"]:
        at = end - 1 if end > start else start  # a token belongs where its last character is
        if at < ref_start:
            spans.append(PROMPT)
        elif at < ref_end:
            spans.append(REFERENCE)
        elif at < resp_end:
            spans.append(RATIONALE)
        else:
            spans.append(last)  # closing tokens of the assistant turn
    ids = list(enc["input_ids"])
    return _fit(ids, spans, max_length)


def _fit(ids: list[int], spans: list[int], max_length: int | None) -> Tokenized | None:
    truncated = False
    if max_length is not None and len(ids) > max_length:
        keep = sum(1 for s in spans if s != RATIONALE)
        if keep > max_length or RATIONALE not in spans:
            return None
        first_r = spans.index(RATIONALE)
        budget = max_length - first_r
        ids, spans = ids[: first_r + budget], spans[: first_r + budget]
        truncated = True
    labels = [IGNORE if s == PROMPT else t for t, s in zip(ids, spans)]
    return Tokenized(ids, labels, spans, truncated)


def collate(examples: Sequence[Tokenized], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch: ``input_ids``, ``attention_mask``, ``labels`` and ``spans`` (-1 on padding)."""
    width = max(len(e.input_ids) for e in examples)

    def pad(rows: list[list[int]], value: int) -> torch.Tensor:
        return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)

    return {
        "input_ids": pad([e.input_ids for e in examples], pad_id),
        "attention_mask": pad([[1] * len(e.input_ids) for e in examples], 0),
        "labels": pad([e.labels for e in examples], IGNORE),
        "spans": pad([e.spans for e in examples], -1),
    }


def on_model_device(model: Any, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``batch`` on the device of ``model``'s parameters (a model on one GPU has no accelerate hooks
    that would move CPU tensors for it)."""
    where = next(model.parameters()).device
    return {k: v.to(where) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def token_losses(model: Any, batch: dict[str, torch.Tensor],
                 logits_on_labels: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token cross-entropy of each next-token prediction and the span of the predicted token.

    A padding-free batch (one row of concatenated conversations) has no attention mask but
    ``position_ids`` that restart at every conversation; they are passed on to the model, without
    a KV cache (transformers only masks packed conversations apart when there is none).
    ``logits_on_labels``: the LM head runs only at positions where some row learns the next token
    (``logits_to_keep``); the others get loss 0, as ignored positions do anyway.
    """
    batch = on_model_device(model, batch)
    extra = {"position_ids": batch["position_ids"], "use_cache": False} if "position_ids" in batch else {}
    labels = batch["labels"][:, 1:]
    keep = (labels != IGNORE).any(0).nonzero().squeeze(1) if logits_on_labels else None
    if keep is not None:
        extra["logits_to_keep"] = keep
    logits = model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"), **extra).logits
    # over a contiguous (tokens, vocab) matrix: the transposed (batch, vocab, length) layout sums
    # each softmax along a strided axis, which on a 49k vocabulary drifted ~4e-5 from transformers' loss
    learned = labels if keep is None else labels[:, keep]
    flat = (logits[:, :-1] if keep is None else logits).float().reshape(-1, logits.shape[-1])
    losses = F.cross_entropy(flat, learned.reshape(-1), ignore_index=IGNORE, reduction="none").view(learned.shape)
    if keep is not None:
        full = losses.new_zeros(labels.shape)
        full[:, keep] = losses
        losses = full
    spans = torch.where(labels == IGNORE, torch.full_like(labels, -1), batch["spans"][:, 1:])
    return losses, spans


def span_losses(model: Any, batch: dict[str, torch.Tensor], rationale_weight: float = 1.0,
                logits_on_labels: bool = False) -> dict[str, torch.Tensor]:
    """Summed and mean losses of the ``mt`` (reference) and ``rationale`` spans and their ``total``.

    ``total_sum = mt_sum + rationale_weight * rationale_sum`` (eq. 4 with λ = 1); ``total_mean``
    divides by all learned tokens, which is what the ordinary causal-LM loss reports.
    """
    losses, spans = token_losses(model, batch, logits_on_labels)
    out: dict[str, torch.Tensor] = {}
    for name, span in (("mt", REFERENCE), ("rationale", RATIONALE)):
        mask = spans == span
        out[f"{name}_sum"] = (losses * mask).sum()
        out[f"{name}_tokens"] = mask.sum()
        out[f"{name}_mean"] = out[f"{name}_sum"] / out[f"{name}_tokens"].clamp(min=1)
    out["total_sum"] = out["mt_sum"] + rationale_weight * out["rationale_sum"]
    out["total_tokens"] = out["mt_tokens"] + out["rationale_tokens"]
    out["total_mean"] = out["total_sum"] / out["total_tokens"].clamp(min=1)
    return out


def per_token(model: Any, tokenizer: Any, example: Tokenized) -> list[tuple[str, str, float | None]]:
    """``(token, span, loss)`` for every token of one example; ``loss`` is that of predicting the
    token from the ones before it (``None`` where nothing is learned: the prompt)."""
    with torch.no_grad():
        losses, spans = token_losses(model, collate([example], tokenizer.pad_token_id or 0))
    tokens = tokenizer.convert_ids_to_tokens(example.input_ids)
    out = [(tokens[0], SPANS[example.spans[0]], None)]
    for tok, span_id, loss, learned in zip(tokens[1:], example.spans[1:], losses[0].tolist(), spans[0].tolist()):
        out.append((tok, SPANS[span_id], loss if learned >= 0 else None))
    return out


def identity_check(model: Any, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    """Eq. 4 on one batch: summed ``total`` vs ``mt + rationale``, and the mean vs the model's own loss."""
    batch = on_model_device(model, batch)
    with torch.no_grad():
        out = span_losses(model, batch)
        hf = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   labels=batch["labels"]).loss
    return {
        "mt_sum": float(out["mt_sum"]), "rationale_sum": float(out["rationale_sum"]),
        "total_sum": float(out["total_sum"]),
        "sum_gap": abs(float(out["total_sum"] - out["mt_sum"] - out["rationale_sum"])),
        "total_mean": float(out["total_mean"]), "model_loss": float(hf),
        "mean_gap": abs(float(out["total_mean"] - hf)),
        "learned_tokens": int(out["total_tokens"]),
    }
