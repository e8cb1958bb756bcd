"""Drift: how far a fine-tuned model has moved from its backbone on general prompts (this book's
measure, not the paper's).

The backbone answers held-out general prompts once, greedily (``backbone_replies``); every
trained model is then scored on those same replies, teacher-forced: its mean negative
log-likelihood per reply token, its end-of-turn included (``reply_nll``). The backbone's own value is the floor a model
that has not moved at all would get; a higher value means the model now finds its backbone's
answers less likely. No judge, one number per model, continuous, so small differences resolve.

Why it cannot carry a verdict alone: RaDis and SDFT train on text the backbone wrote itself
(rationales, rewrites), which is exactly what this measures, so self-distillation methods are
favoured by construction. It says how much a model moved, not whether it answers worse.

The prompts are AlpacaEval's *last* ``n`` instructions: training uses translation data only, and
the AlpacaEval answers a profile writes take the *first* ``eval.benchmark_limit`` items.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from .. import benchmark_files as files
from ..losses import REFERENCE, collate, token_losses, tokenize_example
from .answering import resumable, resumable_replies


def drift_prompts(benchmarks_dir: str | Path, n: int) -> dict[str, str]:
    """``{key: instruction}`` for AlpacaEval's last ``n`` instructions (key: the item's index)."""
    rows = files.read_alpaca_eval(benchmarks_dir)
    if not 1 <= n <= len(rows):
        raise ValueError(f"drift prompts: n must be 1..{len(rows)}, got {n}")
    return {str(i): rows[i]["instruction"] for i in range(len(rows) - n, len(rows))}


def backbone_replies(model: Any, tokenizer: Any, prompts: Mapping[str, str], path: Path, max_new_tokens: int,
                     batch_size: int, engine: str = "hf") -> dict[str, str]:
    """The backbone's greedy replies to ``prompts`` (resumable through ``path``)."""
    conversations = {k: [{"role": "user", "content": p}] for k, p in prompts.items()}
    return resumable_replies(model, tokenizer, conversations, path, max_new_tokens, batch_size, "backbone",
                             engine=engine)


def reply_nll(model: Any, tokenizer: Any, prompts: Mapping[str, str], replies: Mapping[str, str], batch_size: int,
              path: Path, model_id: str) -> dict[str, dict[str, float]]:
    """Per prompt: ``{"nll": summed NLL of the reply's tokens, "tokens": their count}`` under ``model``
    (teacher-forced, the prompt in the chat template; the reply's tokens are those training labels,
    ``losses.tokenize_example``: the reply and the end-of-turn tokens that close it). Empty replies
    are left out. Resumable through ``path``."""
    import torch

    keys = [k for k in prompts if replies[k].strip()]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def score(pairs: list[tuple[str, str]]) -> list[dict[str, float]]:
        examples = [tokenize_example(tokenizer, p, r) for p, r in pairs]
        with torch.no_grad():
            losses, spans = token_losses(model, collate(examples, pad))
        on_reply = spans == REFERENCE
        return [{"nll": float(losses[i][on_reply[i]].sum()), "tokens": int(on_reply[i].sum())}
                for i in range(len(pairs))]

    items = {k: (prompts[k], replies[k]) for k in keys}
    return resumable(path, items, score, batch_size, {"model_id": model_id, "replies": len(keys)})


def mean_nll(scored: Mapping[str, Mapping[str, float]], keys: Sequence[str] | None = None) -> float:
    """Mean NLL per reply token over ``keys`` (all by default): summed NLL over summed tokens."""
    chosen = list(scored) if keys is None else list(keys)
    tokens = sum(scored[k]["tokens"] for k in chosen)
    if not tokens:
        raise ValueError("mean_nll: no reply tokens to average over")
    return sum(scored[k]["nll"] for k in chosen) / tokens
