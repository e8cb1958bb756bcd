"""Translation metrics: extraction, sacreBLEU BLEU/chrF, per-direction averages, and COMET.

The COMET test builds a tiny regression metric (a 2-layer BERT with a word-level vocabulary,
random weights) saved the way COMET's hub models are (``checkpoints/model.ckpt`` +
``hparams.yaml``), reloads it through ``comet.load_from_checkpoint`` and scores 3 segments. It
needs unbabel-comet (the ``eval`` extra) and is skipped where that is not installed, except
where ``RADIS_REQUIRE_COMET=1`` (``make test-compat`` sets it: CI's COMET environment must run it).
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from radis_utils.evaluate import translation as tr


def test_extract_translation_follows_the_rationale_rules():
    reply = "Der Hund schläft.\n\nNote: 'Hund' means dog."
    assert tr.extract_translation(reply, "first_line") == "Der Hund schläft."
    assert tr.extract_translation(reply, "whole") == reply
    with pytest.raises(ValueError, match="unknown extraction rule"):
        tr.extract_translation(reply, "last_line")


def test_corpus_metrics_match_sacrebleu_and_carry_signatures():
    import sacrebleu

    hyps = ["The cat sat on the mat.", "A dog barks loudly."]
    refs = ["The cat sat on the mat.", "The dog barks."]
    out = tr.corpus_metrics(hyps, refs, "en")
    assert out["bleu"] == round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2)
    assert out["chrf"] == round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2)
    assert "tok:13a" in out["bleu_signature"] and "nrefs:1" in out["chrf_signature"]
    assert out["n"] == 2


def test_chinese_targets_use_the_zh_tokenizer():
    hyps, refs = ["我爱你。"], ["我爱你。"]
    out = tr.corpus_metrics(hyps, refs, "zh")
    assert "tok:zh" in out["bleu_signature"] and out["bleu"] == 100.0
    # 13a leaves the unsegmented sentence one token, so a near-miss would score 0
    near_miss = ["我爱他。"]
    assert tr.corpus_metrics(near_miss, refs, "zh")["bleu"] > tr.corpus_metrics(near_miss, refs, "en")["bleu"]


def test_corpus_metrics_name_the_bad_input():
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        tr.corpus_metrics(["a", "b"], ["a"], "en")
    with pytest.raises(ValueError, match="reference 1 is empty"):
        tr.corpus_metrics(["a", "b"], ["a", "  "], "en")
    with pytest.raises(ValueError, match="no segments"):
        tr.corpus_metrics([], [], "en")


def test_per_direction_table_averages_each_side():
    results = {
        "de-en": {"bleu": 30.0, "comet": 80.0, "n": 10, "bleu_signature": "x"},
        "zh-en": {"bleu": 20.0, "comet": 78.0, "n": 10},
        "en-de": {"bleu": 25.0, "comet": 82.0, "n": 10},
        "en-zh": {"bleu": 35.5, "n": 10},  # no COMET here: comet is left out of avg_en_xx
    }
    table = tr.per_direction_table(results)
    assert table["avg_xx_en"] == {"bleu": 25.0, "comet": 79.0, "directions": ["de-en", "zh-en"]}
    assert table["avg_en_xx"] == {"bleu": 30.25, "directions": ["en-de", "en-zh"]}
    assert table["de-en"]["bleu_signature"] == "x"
    only_one_side = tr.per_direction_table({"en-sy": {"chrf": 50.0}})
    assert "avg_xx_en" not in only_one_side and only_one_side["avg_en_xx"]["chrf"] == 50.0
    with pytest.raises(ValueError, match="'deen'"):
        tr.per_direction_table({"deen": {"bleu": 1.0}})


def test_comet_is_skipped_with_a_reason(monkeypatch, tmp_path):
    scores, why = tr.score_comet_or_skip(None, ["s"], ["h"], ["r"])
    assert scores is None and "no checkpoint configured" in why
    monkeypatch.setattr(tr, "comet_available", lambda: False)
    scores, why = tr.score_comet_or_skip("Unbabel/wmt22-comet-da", ["s"], ["h"], ["r"])
    assert scores is None and "not installed" in why
    with pytest.raises(tr.CometUnavailable, match="not installed"):
        tr.load_comet("Unbabel/wmt22-comet-da")


def test_comet_checkpoint_paths(tmp_path):
    assert tr.comet_checkpoint("Unbabel/wmt22-comet-da") is None  # a hub id
    with pytest.raises(tr.CometUnavailable, match="has no checkpoints/model.ckpt"):
        tr.comet_checkpoint(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    ckpt = tmp_path / "checkpoints" / "model.ckpt"
    ckpt.write_bytes(b"")
    assert tr.comet_checkpoint(tmp_path) == ckpt == tr.comet_checkpoint(ckpt)
    with pytest.raises(tr.CometUnavailable, match="does not exist"):
        tr.comet_checkpoint(tmp_path / "missing.ckpt")
    other = tmp_path / "weights.bin"
    other.write_bytes(b"")
    with pytest.raises(tr.CometUnavailable, match="not a .ckpt file"):
        tr.comet_checkpoint(other)


WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "runs", "fast", "die", "katze",
         "sitzt", "auf", "der", "matte", "hund", "läuft", "schnell", "."]


def _tiny_comet_model(folder):
    """A random RegressionMetric on a 2-layer BERT, saved as COMET's hub models are."""
    import pytorch_lightning as pl
    import torch
    import yaml
    from comet.models import RegressionMetric
    from transformers import BertConfig, BertModel, BertTokenizerFast

    encoder_dir = folder / "tiny-bert"
    encoder_dir.mkdir(parents=True)
    vocab = encoder_dir / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True).save_pretrained(encoder_dir)
    config = BertConfig(vocab_size=len(WORDS) + 5, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    torch.manual_seed(0)
    BertModel(config, add_pooling_layer=False).save_pretrained(encoder_dir)
    metric = RegressionMetric(encoder_model="BERT", pretrained_model=str(encoder_dir),
                              hidden_sizes=[8], layer="mix", layer_transformation="softmax",
                              local_files_only=True)
    model_dir = folder / "tiny-comet"
    (model_dir / "checkpoints").mkdir(parents=True)
    hparams = dict(metric.hparams)
    torch.save({"state_dict": metric.state_dict(), "hyper_parameters": hparams,
                "pytorch-lightning_version": pl.__version__, "epoch": 0, "global_step": 0},
               model_dir / "checkpoints" / "model.ckpt")
    (model_dir / "hparams.yaml").write_text(yaml.safe_dump(hparams))
    return metric, model_dir


def test_comet_scores_through_a_real_checkpoint(tmp_path):
    if importlib.util.find_spec("comet") is None:
        if os.environ.get("RADIS_REQUIRE_COMET") == "1":
            pytest.fail("RADIS_REQUIRE_COMET=1 but unbabel-comet is not installed (the `eval` extra)")
        pytest.skip("unbabel-comet not installed (the `eval` extra, transformers<5)")
    import torch

    torch.set_num_threads(1)
    metric, model_dir = _tiny_comet_model(tmp_path)
    sources = ["die katze sitzt auf der matte .", "der hund läuft schnell .", "die katze ."]
    hyps = ["the cat sat on the mat .", "a dog runs .", "the dog ."]
    refs = ["the cat sat on the mat .", "the dog runs fast .", "the cat ."]

    model = tr.load_comet(model_dir)  # folder form; the .ckpt form resolves to the same file
    out = tr.comet_score(model, sources, hyps, refs, batch_size=2, gpus=0)
    assert len(out["comet_segments"]) == 3
    assert out["comet"] == pytest.approx(sum(out["comet_segments"]) / 3, abs=0.01)
    # the reloaded weights are the saved ones: same scores as the metric built in memory
    direct = metric.predict([{"src": s, "mt": h, "ref": r} for s, h, r in zip(sources, hyps, refs)],
                            batch_size=2, gpus=0, progress_bar=False)
    assert out["comet_segments"] == [round(100 * s, 2) for s in direct.scores]

    scores, why = tr.score_comet_or_skip(str(model_dir / "checkpoints" / "model.ckpt"),
                                         sources, hyps, refs, batch_size=2)
    assert scores["comet"] == out["comet"] and why.startswith("COMET scored with")
    scores, why = tr.score_comet_or_skip(str(tmp_path / "nowhere"), sources, hyps, refs)
    assert scores is None and why.startswith("COMET skipped")


def test_comet_runs_on_the_gpu_when_torch_sees_one(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert tr.comet_gpus() == 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert tr.comet_gpus() == 0
