"""The official command lines kept beside the inline suite: lm-eval's GSM8K command and its
results reader, and the lines that say what cannot run as in the paper.

No tool, model or network is used: lm-eval's results file is a small fake of its real layout.
"""

from __future__ import annotations

import json

import pytest

from radis_utils.evaluate import general as g


# --- GSM8K -------------------------------------------------------------------------------

def test_gsm8k_command_states_the_variant():
    cmd = g.gsm8k_command("/models/llama", "/runs/ci/adapters/radis-seed0", "/runs/out", limit=50)
    assert cmd[:3] == ["lm_eval", "--model", "hf"]
    args = cmd[cmd.index("--model_args") + 1]
    assert args == "pretrained=/models/llama,peft=/runs/ci/adapters/radis-seed0,dtype=bfloat16"
    assert cmd[cmd.index("--tasks") + 1] == g.GSM8K_TASK == "gsm8k_cot_zeroshot"
    assert cmd[cmd.index("--num_fewshot") + 1] == "0" and "--apply_chat_template" in cmd
    assert cmd[cmd.index("--output_path") + 1] == "/runs/out" and cmd[-2:] == ["--limit", "50"]
    backbone_only = g.gsm8k_command("/models/llama", None, "/runs/out")
    assert "peft=" not in backbone_only[backbone_only.index("--model_args") + 1]
    with pytest.raises(ValueError, match="adapter_path"):
        g.gsm8k_command("/m", "/a,b", "/o")


def _fake_lm_eval_results(folder, value=0.2345):
    """A results file laid out as lm-eval 0.4 writes it under --output_path."""
    out = folder / "__models__llama" / "results_2025-01-02T03-04-05.678901.json"
    out.parent.mkdir(parents=True)
    out.write_text(json.dumps({
        "results": {g.GSM8K_TASK: {
            "alias": g.GSM8K_TASK,
            "exact_match,strict-match": 0.05, "exact_match_stderr,strict-match": 0.006,
            "exact_match,flexible-extract": value, "exact_match_stderr,flexible-extract": 0.0117,
        }},
        "group_subtasks": {g.GSM8K_TASK: []},
        "n-shot": {g.GSM8K_TASK: 0},
        "n-samples": {g.GSM8K_TASK: {"original": 1319, "effective": 1319}},
        "config": {"model": "hf", "model_args": "pretrained=/models/llama"},
    }))
    return out


def test_read_gsm8k_result_from_file_or_folder(tmp_path):
    file = _fake_lm_eval_results(tmp_path)
    assert g.read_gsm8k_result(file) == 23.45
    assert g.read_gsm8k_result(tmp_path) == 23.45
    with pytest.raises(FileNotFoundError, match="no lm-eval results"):
        g.read_gsm8k_result(tmp_path / "empty")


def test_read_gsm8k_result_reads_the_local_task_the_project_runs(tmp_path):
    local = tmp_path / "results_local.json"
    local.write_text(json.dumps({"results": {"gsm8k_cot_zeroshot_local": {"exact_match,flexible-extract": 0.125}}}))
    assert g.read_gsm8k_result(local) == 12.5


def test_read_gsm8k_result_names_what_is_missing(tmp_path):
    bad = tmp_path / "results_x.json"
    bad.write_text(json.dumps({"results": {"gsm8k": {"exact_match,strict-match": 0.1}}}))
    with pytest.raises(KeyError, match="no task 'gsm8k_cot_zeroshot' or 'gsm8k_cot_zeroshot_local'.*found: gsm8k"):
        g.read_gsm8k_result(bad)
    bad.write_text(json.dumps({"results": {g.GSM8K_TASK: {"exact_match,strict-match": 0.1}}}))
    with pytest.raises(KeyError, match="flexible-extract"):
        g.read_gsm8k_result(bad)


def test_skips_say_what_to_install_or_set():
    from radis_utils.evaluate.judge import Judge

    none = {"lm_eval": False, "fastchat": False, "alpaca_eval": False}
    lines = g.describe_skips(None, None, none)
    assert len(lines) == 4 and lines[0].startswith("GSM8K skipped") and "radis-book[bench]" in lines[0]
    assert "refusal-keywords" in lines[1]
    assert lines[2:] == [f"{b} judge skipped: no LLM judge configured: set RADIS_JUDGE_BASE_URL (an "
                         "OpenAI-compatible endpoint, e.g. https://api.openai.com/v1) and RADIS_JUDGE_MODEL "
                         "(e.g. gpt-4), plus RADIS_JUDGE_API_KEY if it needs a key" for b in ("MT-Bench", "AlpacaEval")]
    judge = Judge("http://127.0.0.1:8000/v1", "gpt-4")
    assert g.describe_skips(judge, "meta-llama/Llama-Guard-3-8B", dict.fromkeys(none, True)) == []
    assert set(g.tool_availability()) == set(none)
    assert g.judge_settings_from_env({}) is None  # chapter 06's name for judge.judge_from_env
