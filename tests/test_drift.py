"""Drift: the backbone's own replies, teacher-forced, scored per reply token; the same sum as a
direct cross-entropy over the reply's tokens, resumable, and higher for a model that moved."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F

from radis_utils.evaluate import drift
from radis_utils.evaluate.answering import chat_text
from tests.benchmark_helpers import benchmarks_dir, tiny_chat  # noqa: F401


def test_prompts_are_alpaca_evals_last(benchmarks_dir):
    prompts = drift.drift_prompts(benchmarks_dir, 3)
    assert list(prompts) == ["802", "803", "804"] and all(prompts.values())
    with pytest.raises(ValueError, match="n must be 1..805, got 806"):
        drift.drift_prompts(benchmarks_dir, 806)


def direct_nll(model, tokenizer, prompt: str, reply: str) -> tuple[float, int]:
    """Summed cross-entropy of the reply's tokens and the turn's closing tokens after the chat
    prompt, computed by hand."""
    full = tokenizer.apply_chat_template([{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}],
                                         tokenize=False)
    head = chat_text(tokenizer, [{"role": "user", "content": prompt}])
    start = full.index(reply, len(head))
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids = torch.tensor([enc["input_ids"]])
    on = [e - 1 >= start for s, e in enc["offset_mapping"]]
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1].float()
    losses = F.cross_entropy(logits, ids[0, 1:], reduction="none")
    picked = [losses[i - 1] for i in range(1, len(on)) if on[i]]
    return float(sum(picked)), len(picked)


def test_reply_nll_matches_a_direct_computation_and_resumes(tiny_chat, benchmarks_dir, tmp_path):
    model, tokenizer = tiny_chat
    prompts = drift.drift_prompts(benchmarks_dir, 4)
    replies = drift.backbone_replies(model, tokenizer, prompts, tmp_path / "replies.json", 8, 2)
    assert set(replies) == set(prompts)
    scored = drift.reply_nll(model, tokenizer, prompts, replies, 2, tmp_path / "nll.json", "backbone")
    kept = [k for k in prompts if replies[k].strip()]
    assert list(scored) == kept and kept
    for k in kept:
        nll, tokens = direct_nll(model, tokenizer, prompts[k], replies[k])
        assert scored[k]["tokens"] == tokens and scored[k]["nll"] == pytest.approx(nll, rel=1e-4)
    assert json.loads((tmp_path / "nll.json").read_text())["results"] == scored
    again = drift.reply_nll(None, tokenizer, prompts, replies, 2, tmp_path / "nll.json", "backbone")  # no model needed
    assert again == scored
    with pytest.raises(ValueError, match="progress kept under settings"):
        drift.reply_nll(model, tokenizer, prompts, replies, 2, tmp_path / "nll.json", "vanilla")

    moved = copy.deepcopy(model)
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        for p in moved.parameters():
            p.add_(0.5 * p.std() * torch.randn(p.shape, generator=g))
    other = drift.reply_nll(moved, tokenizer, prompts, replies, 2, tmp_path / "moved.json", "moved")
    assert drift.mean_nll(other) > drift.mean_nll(scored)
    assert drift.mean_nll(scored, kept[:1]) == pytest.approx(scored[kept[0]]["nll"] / scored[kept[0]]["tokens"])
