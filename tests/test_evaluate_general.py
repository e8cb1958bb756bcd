"""The general-ability suite's glue: commands, result readers, file formats, judges, skips.

No tool, model or network is used: lm-eval's results file is a small fake of its real layout,
the guard model is an injected ``generate`` callable, and the judge settings come from a dict.
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


def test_read_gsm8k_result_names_what_is_missing(tmp_path):
    bad = tmp_path / "results_x.json"
    bad.write_text(json.dumps({"results": {"gsm8k": {"exact_match,strict-match": 0.1}}}))
    with pytest.raises(KeyError, match="no task 'gsm8k_cot_zeroshot'.*found: gsm8k"):
        g.read_gsm8k_result(bad)
    bad.write_text(json.dumps({"results": {g.GSM8K_TASK: {"exact_match,strict-match": 0.1}}}))
    with pytest.raises(KeyError, match="flexible-extract"):
        g.read_gsm8k_result(bad)


def test_gsm8k_or_skip_runs_the_command_or_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(g, "tool_availability", lambda: {"lm_eval": False})
    assert g.gsm8k_or_skip("/m", None, tmp_path) == {
        "skipped": "lm-evaluation-harness is not installed (pip install lm-eval)"}
    monkeypatch.setattr(g, "tool_availability", lambda: {"lm_eval": True})
    ran = []

    def fake_run(cmd, check):
        ran.append(cmd)
        _fake_lm_eval_results(tmp_path, 0.5)

    out = g.gsm8k_or_skip("/m", None, tmp_path, run=fake_run)
    assert out["gsm8k"] == 50.0 and out["filter"] == "flexible-extract" and ran[0][0] == "lm_eval"


# --- AdvBench ------------------------------------------------------------------------------

def test_keyword_fallback():
    assert g.keyword_safe("I'm sorry, but I can't help with that.")
    assert g.keyword_safe("I\u2019m sorry, I cannot do this.")  # typographic apostrophe
    assert g.keyword_safe("")
    assert not g.keyword_safe("Sure, here is a step-by-step plan:")


class FakeGuardTokenizer:
    """Renders a conversation the way a guard's chat template would, minus the policy text."""

    def apply_chat_template(self, conversation, tokenize=False):
        assert tokenize is False
        return "".join(f"<{t['role']}>{t['content']}" for t in conversation) + "<verdict>"


def test_judge_with_guard_parses_safe_and_unsafe():
    seen = {}

    def fake_generate(model, tokenizer, prompts, max_new_tokens, batch_size):
        seen["prompts"] = prompts
        return ["safe" if "cannot" in p else "unsafe\nS2" for p in prompts]

    flags = g.judge_with_guard("guard", FakeGuardTokenizer(), ["how to x", "how to y"],
                               ["I cannot help.", "Step 1: ..."], generate=fake_generate)
    assert flags == [True, False]
    assert seen["prompts"][0] == "<user>how to x<assistant>I cannot help.<verdict>"
    assert g.safe_rate(flags) == 50.0


def test_guard_errors_are_specific():
    with pytest.raises(ValueError, match="item 1: guard output 'maybe'"):
        g.judge_with_guard(None, FakeGuardTokenizer(), ["a", "b"], ["r", "r"],
                           generate=lambda *a, **k: ["safe", "maybe"])
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        g.judge_with_guard(None, FakeGuardTokenizer(), ["a", "b"], ["r"], generate=None)
    with pytest.raises(ValueError, match="no verdicts"):
        g.safe_rate([])


def test_read_advbench(tmp_path):
    csv_file = tmp_path / "harmful_behaviors.csv"
    csv_file.write_text('goal,target\n"Write a bad thing, please","Sure, here is a bad thing"\n'
                        "Do harm,Sure\n")
    assert g.read_advbench(csv_file) == [
        {"goal": "Write a bad thing, please", "target": "Sure, here is a bad thing"},
        {"goal": "Do harm", "target": "Sure"},
    ]
    csv_file.write_text("prompt,target\nx,y\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['goal'\]"):
        g.read_advbench(csv_file)
    csv_file.write_text("goal,target\nx,y\n,z\n")
    with pytest.raises(ValueError, match=r"harmful_behaviors.csv:3: empty 'goal'"):
        g.read_advbench(csv_file)
    with pytest.raises(FileNotFoundError, match="llm-attacks"):
        g.read_advbench(tmp_path / "missing.csv")


# --- MT-Bench and AlpacaEval ------------------------------------------------------------------

def test_mtbench_questions_and_answers_round_trip(tmp_path):
    questions = tmp_path / "question.jsonl"
    questions.write_text(
        json.dumps({"question_id": 81, "category": "writing", "turns": ["Write a blog.", "Rewrite it."]})
        + "\n\n"
        + json.dumps({"question_id": 101, "category": "reasoning", "turns": ["Who is first?", "And?"]})
        + "\n")
    qs = g.read_mtbench_questions(questions)
    assert [q["question_id"] for q in qs] == [81, 101] and qs[0]["turns"][1] == "Rewrite it."

    answers = [{"question_id": 101, "turns": ["A", "B"]}, {"question_id": 81, "turns": ["C", "D"]}]
    path = g.write_mtbench_answers(tmp_path / "model_answer" / "radis.jsonl", "radis", answers,
                                   tstamp=1.0)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["question_id"] for r in lines] == [81, 101]
    assert lines[0] == {"question_id": 81, "answer_id": lines[0]["answer_id"], "model_id": "radis",
                        "choices": [{"index": 0, "turns": ["C", "D"]}], "tstamp": 1.0}
    assert len(lines[0]["answer_id"]) == 22 and lines[0]["answer_id"] != lines[1]["answer_id"]
    again = g.write_mtbench_answers(tmp_path / "again.jsonl", "radis", answers, tstamp=1.0)
    assert again.read_text() == path.read_text()  # answer ids are stable


def test_mtbench_question_errors_name_line_and_field(tmp_path):
    bad = tmp_path / "question.jsonl"
    bad.write_text(json.dumps({"question_id": 1, "category": "math", "turns": ["x"]}) + "\n"
                   + json.dumps({"question_id": "2", "category": "math", "turns": ["x"]}) + "\n")
    with pytest.raises(ValueError, match=r"question.jsonl:2: field 'question_id' must be a int"):
        g.read_mtbench_questions(bad)
    bad.write_text("{not json\n")
    with pytest.raises(ValueError, match=r"question.jsonl:1: not valid JSON"):
        g.read_mtbench_questions(bad)
    with pytest.raises(ValueError, match="'turns' must be a list of strings"):
        g.write_mtbench_answers(tmp_path / "a.jsonl", "m", [{"question_id": 1, "turns": "x"}])


def test_alpacaeval_outputs(tmp_path):
    rows = [{"instruction": "Say hi.", "output": "Hi!", "dataset": "helpful_base"},
            {"instruction": "Count.", "output": "1 2 3"}]
    path = g.write_alpacaeval_outputs(tmp_path / "outputs.json", "radis-seed0", rows)
    data = json.loads(path.read_text())
    assert data[0] == {"instruction": "Say hi.", "output": "Hi!", "generator": "radis-seed0",
                       "dataset": "helpful_base"}
    assert "dataset" not in data[1]
    with pytest.raises(ValueError, match="row 0: 'output' must be a string"):
        g.write_alpacaeval_outputs(tmp_path / "o.json", "m", [{"instruction": "x"}])


def test_judge_settings_and_skips():
    assert g.judge_settings_from_env({}) is None
    assert g.judge_settings_from_env({"OPENAI_API_KEY": " "}) is None
    judge = g.judge_settings_from_env({"OPENAI_API_KEY": "sk-x", "RADIS_JUDGE_MODEL": "gpt-4o",
                                       "OPENAI_BASE_URL": "http://localhost:8000/v1"})
    assert judge == {"model": "gpt-4o", "base_url": "http://localhost:8000/v1", "api_key_set": True}
    assert "sk-x" not in json.dumps(judge)
    assert g.judge_settings_from_env({"OPENAI_API_KEY": "sk-x"})["model"] == g.DEFAULT_JUDGE_MODEL

    none = {"lm_eval": False, "fastchat": False, "alpaca_eval": False}
    lines = g.describe_skips(None, None, none)
    assert len(lines) == 4 and lines[0].startswith("GSM8K skipped")
    assert any("refusal keywords" in line for line in lines)
    all_tools = dict.fromkeys(none, True)
    lines = g.describe_skips(None, "meta-llama/Llama-Guard-3-8B", all_tools)
    assert lines == [f"{b} skipped: no LLM judge configured (set OPENAI_API_KEY; optionally "
                     "OPENAI_BASE_URL and RADIS_JUDGE_MODEL)" for b in ("MT-Bench", "AlpacaEval")]
    assert g.describe_skips(judge, "guard", all_tools) == []
    assert set(g.tool_availability()) == set(none)


def test_judge_commands():
    cmds = g.judge_commands("radis-seed0", "/runs/alpaca/outputs.json", "gpt-4")
    gen, show = cmds["mt_bench"]
    assert gen[:3] == ["python", "-m", "fastchat.llm_judge.gen_judgment"]
    assert gen[gen.index("--model-list") + 1] == "radis-seed0" and "--judge-model" in show
    assert cmds["alpaca_eval"] == [["alpaca_eval", "--model_outputs", "/runs/alpaca/outputs.json"]]
