"""GSM8K through lm-eval's Python API on the local test file, offline, with the chat template."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

from radis_utils.evaluate import gsm8k  # noqa: E402
from tests.benchmark_helpers import benchmarks_dir, tiny_chat  # noqa: E402,F401  (fixtures)


def test_hub_offline_holds_inside_and_restores_after(monkeypatch):
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    before = huggingface_hub.constants.HF_HUB_OFFLINE
    with gsm8k.hub_offline():
        assert os.environ["HF_HUB_OFFLINE"] == os.environ["HF_DATASETS_OFFLINE"] == "1"
        assert huggingface_hub.constants.HF_HUB_OFFLINE is True and datasets.config.HF_HUB_OFFLINE is True
    assert "HF_HUB_OFFLINE" not in os.environ and os.environ["HF_DATASETS_OFFLINE"] == "0"
    assert huggingface_hub.constants.HF_HUB_OFFLINE == before


def test_task_file_points_at_the_local_file_and_nowhere_into_this_environment(tmp_path):
    import sys

    import lm_eval
    import yaml

    path = gsm8k.lm_eval_task_file(tmp_path / "test.jsonl", tmp_path)
    text = path.read_text()
    assert "dataset_path: json" in text and "openai/gsm8k" not in text and "include" not in text
    assert sys.prefix not in text and str(Path(lm_eval.__file__).parent) not in text  # another venv reads it too
    task = yaml.safe_load(text)
    ours = yaml.safe_load((Path(lm_eval.__file__).parent / "tasks/gsm8k/gsm8k-cot-zeroshot.yaml").read_text())
    assert task["dataset_kwargs"]["data_files"]["test"] == str((tmp_path / "test.jsonl").resolve())
    same = ("doc_to_text", "doc_to_target", "metric_list", "generation_kwargs", "filter_list", "output_type")
    assert {k: task[k] for k in same} == {k: ours[k] for k in same}  # lm-eval's config, as it is


def test_runs_offline_on_three_items_and_states_the_variant(tiny_chat, benchmarks_dir, tmp_path):
    model, tok = tiny_chat
    score, details = gsm8k.run_gsm8k(model, tok, benchmarks_dir=benchmarks_dir, out_dir=tmp_path, limit=3,
                                     max_new_tokens=8, batch_size=2, model_id="tiny")
    assert details["n"] == 3 and details["variant"] == "gsm8k_cot_zeroshot" and details["shots"] == 0
    assert details["filter"] == "flexible-extract" and set(details["by_filter"]) == {"flexible-extract", "strict-match"}
    assert details["apply_chat_template"] and score == details["by_filter"]["flexible-extract"]
    kept = json.loads((tmp_path / "gsm8k" / "results.json").read_text())
    questions = [json.loads(line)["question"] for line in (benchmarks_dir / "gsm8k" / "test.jsonl").open()][:3]
    assert sorted({s["doc_id"] for s in kept["samples"]}) == [0, 1, 2]
    assert kept["config"]["dataset_path"] == "json" and kept["config"]["generation_kwargs"]["max_gen_toks"] == 8
    assert 0.0 <= score <= 100.0 and questions[0].startswith("Janet")


def test_a_bad_test_file_fails_before_lm_eval(tiny_chat, tmp_path):
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_text('{"question": "q", "answer": "#### 1"}\n')
    with pytest.raises(ValueError, match="test.jsonl: 1 rows, expected a JSON Lines file of 1319 rows"):
        gsm8k.run_gsm8k(*tiny_chat, benchmarks_dir=tmp_path, out_dir=tmp_path / "o", limit=1, max_new_tokens=4,
                        batch_size=1, model_id="tiny")


def test_the_adapter_is_what_is_scored(tiny_backbone, benchmarks_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_backbone)
    base = AutoModelForCausalLM.from_pretrained(tiny_backbone).eval()
    lora = LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"],
                      init_lora_weights=False)  # a non-zero update, so the adapter changes replies
    args = dict(benchmarks_dir=benchmarks_dir, limit=2, max_new_tokens=8, batch_size=2)

    def replies(model, out, model_id):
        gsm8k.run_gsm8k(model, tok, out_dir=out, model_id=model_id, **args)
        return [s["reply"] for s in json.loads((out / "gsm8k" / "results.json").read_text())["samples"]]

    plain = replies(base, tmp_path / "base", "base")
    adapted = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_backbone).eval(), lora).eval()
    assert replies(adapted, tmp_path / "lora", "lora") != plain


def test_without_lm_eval_it_is_a_skip_that_says_what_to_install(tiny_chat, benchmarks_dir, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "lm_eval", None)  # import lm_eval now raises ImportError
    score, details = gsm8k.run_gsm8k(*tiny_chat, benchmarks_dir=benchmarks_dir, out_dir=tmp_path, limit=1,
                                     max_new_tokens=4, batch_size=1, model_id="tiny")
    assert score is None and "pip install 'radis-book[bench]'" in details["skipped"] and details["n"] == 0
