from __future__ import annotations

import pytest
import torch

from radis_utils import losses
from radis_utils.losses import IGNORE, PROMPT, RATIONALE, REFERENCE
from radis_utils.prompts import CHAT_FORMATS, demo_chat_tokenizer

X = "Translate the following sentence from German to English.\nDer Hund schläft."
Y = "The dog is sleeping."
R = "Note: 'Hund' means dog, and 'schläft' means sleeps."


@pytest.fixture(scope="module", params=sorted(CHAT_FORMATS))
def tok(request):
    return demo_chat_tokenizer(request.param, [X, Y, R])


def text_of(tok, ex, span):
    return tok.decode([t for t, s in zip(ex.input_ids, ex.spans) if s == span])


def test_spans_partition_the_conversation(tok):
    ex = losses.tokenize_example(tok, X, Y, R)
    assert text_of(tok, ex, REFERENCE).strip() == Y
    assert text_of(tok, ex, RATIONALE).strip().startswith(R)
    assert all(lab == IGNORE for lab, s in zip(ex.labels, ex.spans) if s == PROMPT)
    assert all(lab == t for t, lab, s in zip(ex.input_ids, ex.labels, ex.spans) if s != PROMPT)
    assert ex.spans == sorted(ex.spans)  # prompt, then reference, then rationale
    closing = {tok.convert_tokens_to_ids(t) for t in ("</s>", "<|im_end|>") if t in tok.get_vocab()}
    learned = [t for t, lab in zip(ex.input_ids, ex.labels) if lab != IGNORE]
    assert closing & set(learned[-2:])  # the end-of-turn token is learned


def test_without_rationale_the_turn_end_belongs_to_the_reference(tok):
    ex = losses.tokenize_example(tok, X, Y, "")
    assert RATIONALE not in ex.spans and ex.spans[-1] == REFERENCE
    assert losses.tokenize_example(tok, X, Y, "   ").spans == ex.spans


def test_truncation_cuts_the_rationale_first_and_drops_what_cannot_fit(tok):
    full = losses.tokenize_example(tok, X, Y, R)
    n_keep = sum(s != RATIONALE for s in full.spans)
    cut = losses.tokenize_example(tok, X, Y, R, max_length=n_keep + 2)
    assert cut.truncated and len(cut.input_ids) == n_keep + 2
    assert cut.input_ids[: n_keep] == [t for t, s in zip(full.input_ids, full.spans) if s != RATIONALE][: n_keep]
    assert text_of(tok, cut, REFERENCE).strip() == Y
    assert losses.tokenize_example(tok, X, Y, R, max_length=n_keep - 1) is None
    assert losses.tokenize_example(tok, X, Y, "", max_length=len(full.input_ids)) is not None


def test_empty_reference_is_refused(tok):
    with pytest.raises(ValueError, match="empty reference"):
        losses.tokenize_example(tok, X, " ", R)


def test_identity_total_equals_mt_plus_rationale_on_a_real_forward_pass(tok):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4))
    batch = losses.collate([losses.tokenize_example(tok, X, Y, R),
                            losses.tokenize_example(tok, X, Y, ""),
                            losses.tokenize_example(tok, "Hi", "Hello.", "A greeting.")], tok.pad_token_id or 0)
    out = losses.span_losses(model, batch)
    torch.testing.assert_close(out["total_sum"], out["mt_sum"] + out["rationale_sum"])
    n_learned = (batch["labels"][:, 1:] != IGNORE).sum()
    assert out["total_tokens"] == n_learned
    hf = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    torch.testing.assert_close(out["total_mean"], hf, rtol=1e-5, atol=1e-6)
    weighted = losses.span_losses(model, batch, rationale_weight=0.5)
    torch.testing.assert_close(weighted["total_sum"], out["mt_sum"] + 0.5 * out["rationale_sum"])


def test_response_is_joined_as_synthesis_joins_it():
    from radis_utils.records import join_rationale

    assert join_rationale(" y. ", "r") == "y. r"
    assert join_rationale("y.", "\nr") == "y.\nr"
    assert join_rationale("y.", "  ") == "y."


def test_identity_check_and_per_token_losses_agree_with_span_losses(tok):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4))
    ex = losses.tokenize_example(tok, X, Y, R)
    check = losses.identity_check(model, losses.collate([ex], tok.pad_token_id or 0))
    assert check["sum_gap"] < 1e-3 and check["mean_gap"] < 1e-4 and check["learned_tokens"] > 0
    rows = losses.per_token(model, tok, ex)
    assert len(rows) == len(ex.input_ids)
    assert all(loss is None for _, span, loss in rows if span == "prompt")
    by_span = {s: sum(loss for _, span, loss in rows if span == s and loss is not None) for s in ("reference", "rationale")}
    assert abs(by_span["reference"] - check["mt_sum"]) < 1e-3
    assert abs(by_span["rationale"] - check["rationale_sum"]) < 1e-3


def test_batches_follow_the_model_to_its_device(tok):
    """A model on one GPU has no hooks that move CPU tensors: the loss functions move the batch to
    the model's device themselves (shown with a probe whose weights are on the meta device)."""
    import types

    class Probe(torch.nn.Module):
        def __init__(self, vocab):
            super().__init__()
            self.vocab, self.weight, self.seen = vocab, torch.nn.Parameter(torch.empty(1, device="meta")), []

        def forward(self, input_ids, attention_mask=None, **kw):
            self.seen += [t.device.type for t in (input_ids, attention_mask) if t is not None]
            return types.SimpleNamespace(logits=torch.zeros(*input_ids.shape, self.vocab, device=input_ids.device))

    model = Probe(len(tok))
    example = losses.tokenize_example(tok, "Translate: hallo", "hello", "a note")
    batch = losses.collate([example], tok.pad_token_id or 0)
    assert batch["input_ids"].device.type == "cpu"
    per_token, spans = losses.token_losses(model, batch)
    assert model.seen == ["meta", "meta"] and per_token.device.type == spans.device.type == "meta"
    assert losses.on_model_device(model, batch)["labels"].device.type == "meta"


def test_logits_on_labels_gives_the_same_losses_and_gradients(tok):
    """``logits_on_labels`` runs the LM head only where a token is learned: every per-token loss,
    the span sums and the gradients match the full head's; the prompt positions cost nothing."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4))
    batch = losses.collate([losses.tokenize_example(tok, X, Y, R), losses.tokenize_example(tok, "Hi", "Hello.", "")],
                           tok.pad_token_id or 0)
    runs = []
    for on_labels in (False, True):
        model.zero_grad()
        out = losses.span_losses(model, batch, logits_on_labels=on_labels)
        out["total_mean"].backward()
        runs.append((out, losses.token_losses(model, batch, on_labels), [p.grad.clone() for p in model.parameters()]))
    (full, (full_tokens, full_spans), full_grads), (lean, (lean_tokens, lean_spans), lean_grads) = runs
    for key in ("mt_sum", "rationale_sum", "total_mean", "total_tokens"):
        torch.testing.assert_close(lean[key], full[key])
    torch.testing.assert_close(lean_tokens, full_tokens.detach())
    assert torch.equal(lean_spans, full_spans)
    for a, b in zip(lean_grads, full_grads):
        torch.testing.assert_close(a, b)
    assert (batch["labels"][:, 1:] == IGNORE).any(0).sum() > 0  # some positions were left out of the head
