"""The SmolLM2 study's pieces that need no real model: per-sentence chrF, spreads, the share of
replies cut by the cap."""

from __future__ import annotations

from radis_utils.study import pilot


def test_sentence_chrf_cuts_replies_by_the_rule_and_scores_each():
    refs = ["The cat sat on the mat.", "A dog barked."]
    replies = ["The cat sat on the mat.\nThat is the translation.", "Something else entirely"]
    scores = pilot.sentence_chrf(replies, refs, "first_line")
    assert scores[0] == 100.0 and 0 <= scores[1] < 30


def test_spread_and_capped_share(tiny_backbone):
    from transformers import AutoTokenizer

    assert pilot.spread([1.0, 2.0, 3.0]) == {"mean": 2.0, "sd": 1.0, "n": 3}
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone)
    long = " ".join(["word"] * 40)
    n_long = len(tokenizer(long, add_special_tokens=False)["input_ids"])
    assert pilot.capped_share(tokenizer, [long, "word"], n_long) == 50.0
    assert pilot.capped_share(tokenizer, [long, "word"], n_long + 5) == 0.0
