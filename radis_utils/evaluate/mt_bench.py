"""MT-Bench (paper table 3): two-turn answers in FastChat's format, judged 1-10 by an LLM.

Answers: replies to each question's first turn, then to its second turn in a conversation that
holds the model's own first answer, at FastChat's temperature for the category (greedy for
math, coding, reasoning and extraction; sampled, seeded, at 0.7 / 0.1 for the others), as the
paper keeps the decoding a benchmark tool sets. They are written as FastChat's
``llm_judge`` reads them, inside a FastChat-shaped data folder (``<out>/fastchat/data/...``,
with the questions, GPT-4 references and judge prompts beside them), so FastChat's own
``gen_judgment`` can run there unchanged (``official_commands``).

Judging (when ``judge.judge_from_env`` gives an endpoint): FastChat's own prompts from
``judge_prompts.jsonl``: ``single-v1`` for turn 1 and ``single-v1-multi-turn`` for turn 2, and
their ``single-math-v1*`` forms with GPT-4's reference answers for math, reasoning and coding,
as FastChat's ``gen_judgment --mode single`` does. Score: the mean rating (1-10) over every
judged turn, ratings that could not be parsed left out (as FastChat's ``show_result``).
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Mapping, Sequence

from .. import benchmark_files as files
from ..records import write_json, write_jsonl
from .answering import resumable, resumable_replies
from .judge import NO_JUDGE, Judge, JudgeUnavailable, chat, parse_rating, system_and_user

NEED_REFERENCE = ("math", "reasoning", "coding")  # FastChat's categories judged with a reference
#: FastChat's answer temperatures per category (``gen_model_answer``; 0 = greedy; 0.7 otherwise).
TEMPERATURES = {"writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0, "coding": 0.0,
                "reasoning": 0.0, "stem": 0.1, "humanities": 0.1}
SCALE = "1-10 (FastChat's rating)"


def check_model_id(model_id: str) -> str:
    """``model_id`` if it can name FastChat's answer file (``<model_id>.jsonl``), else ``ValueError``."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", model_id or ""):
        raise ValueError(f"model_id {model_id!r}: use letters, digits, '.', '_' and '-' only; FastChat "
                         "takes the model name from the answer file's name")
    return model_id


def fastchat_dir(out_dir: Path) -> Path:
    """The FastChat-shaped working folder under ``out_dir`` (run FastChat's commands from here)."""
    return Path(out_dir) / "fastchat"


def answer_file(out_dir: Path, model_id: str) -> Path:
    """``<out>/fastchat/data/mt_bench/model_answer/<model_id>.jsonl``: where FastChat looks."""
    return fastchat_dir(out_dir) / "data" / "mt_bench" / "model_answer" / f"{check_model_id(model_id)}.jsonl"


def answer_questions(model: Any, tokenizer: Any, questions: Sequence[Mapping[str, Any]], work: Path,
                     max_new_tokens: int, batch_size: int, model_id: str, engine: str = "hf") -> dict[int, list[str]]:
    """``{question_id: [turn 1, turn 2]}``; turn 2 is asked after the model's own turn 1, each
    category at FastChat's temperature (``TEMPERATURES``). Progress is kept in ``work`` (one file
    per turn and temperature), so a stopped run resumes."""
    answers: dict[int, list[str]] = {q["question_id"]: [] for q in questions}
    for t in sorted({TEMPERATURES.get(q["category"], 0.7) for q in questions}):
        group = [q for q in questions if TEMPERATURES.get(q["category"], 0.7) == t]
        first = resumable_replies(model, tokenizer, {str(q["question_id"]): [
            {"role": "user", "content": q["turns"][0]}] for q in group},
            work / f"turn1-t{t}.progress.json", max_new_tokens, batch_size, model_id, t, engine=engine)
        second = resumable_replies(model, tokenizer, {str(q["question_id"]): [
            {"role": "user", "content": q["turns"][0]},
            {"role": "assistant", "content": first[str(q["question_id"])]},
            {"role": "user", "content": q["turns"][1]}] for q in group},
            work / f"turn2-t{t}.progress.json", max_new_tokens, batch_size, model_id, t, engine=engine)
        for q in group:
            answers[q["question_id"]] = [first[str(q["question_id"])], second[str(q["question_id"])]]
    return answers


def write_answers(path: Path, model_id: str, answers: Mapping[int, Sequence[str]],
                  tstamp: float | None = None) -> Path:
    """FastChat's answer file: one line per question with ``question_id``, ``answer_id``,
    ``model_id``, ``choices: [{"index": 0, "turns": [t1, t2]}]`` and ``tstamp`` (atomic write)."""
    lines = []
    for qid in sorted(answers):
        turns = list(answers[qid])
        if len(turns) != 2 or not all(isinstance(t, str) for t in turns):
            raise ValueError(f"write_answers: question {qid}: FastChat needs both turns as strings, got {turns!r:.80}")
        lines.append({"question_id": qid, "answer_id": uuid.uuid5(uuid.NAMESPACE_URL, f"{model_id}/{qid}").hex[:22],
                      "model_id": model_id, "choices": [{"index": 0, "turns": turns}],
                      "tstamp": time.time() if tstamp is None else tstamp})
    write_jsonl(Path(path), lines)
    return Path(path)


def lay_out_fastchat(benchmarks_dir: Path, out_dir: Path) -> None:
    """Copy the questions, references and judge prompts to where FastChat reads them (relative
    to its working directory)."""
    data = fastchat_dir(out_dir) / "data"
    for rel, to in ((files.MT_BENCH_QUESTIONS, data / "mt_bench" / "question.jsonl"),
                    (files.MT_BENCH_REFERENCES, data / "mt_bench" / "reference_answer" / "gpt-4.jsonl"),
                    (files.MT_BENCH_JUDGE_PROMPTS, data / "judge_prompts.jsonl")):
        to.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(benchmarks_dir) / rel, to)


def judge_request(question: Mapping[str, Any], turn: int, answers: Sequence[str],
                  references: Mapping[int, Sequence[str]], prompts: Mapping[str, Mapping[str, Any]]) -> tuple[str, list]:
    """``(prompt name, messages)`` that FastChat's single mode sends to rate ``turn`` (1 or 2)."""
    math = question["category"] in NEED_REFERENCE
    name = ("single-math-v1" if math else "single-v1") + ("-multi-turn" if turn == 2 else "")
    prompt = prompts[name]
    fields: dict[str, str] = {}
    if math:
        ref = references.get(question["question_id"])
        if ref is None:
            raise KeyError(f"MT-Bench question {question['question_id']} ({question['category']}) has no "
                           "GPT-4 reference answer in reference_answer/gpt-4.jsonl")
        fields.update(ref_answer_1=ref[0], ref_answer_2=ref[1])
    if turn == 1:
        fields.update(question=question["turns"][0], answer=answers[0])
    else:
        fields.update(question_1=question["turns"][0], question_2=question["turns"][1],
                      answer_1=answers[0], answer_2=answers[1])
    return name, system_and_user(prompt["system_prompt"], prompt["prompt_template"].format(**fields))


def judge_answers(judge: Judge, questions: Sequence[Mapping[str, Any]], answers: Mapping[int, Sequence[str]],
                  references: Mapping[int, Sequence[str]], prompts: Mapping[str, Mapping[str, Any]],
                  progress: Path, model_id: str) -> dict[str, dict[str, Any]]:
    """``{"<qid>:<turn>": {"prompt", "rating", "judgment"}}`` for both turns of every question
    (resumable through ``progress``; ``JudgeUnavailable`` stops it, keeping what was judged)."""
    items = {f"{q['question_id']}:{t}": judge_request(q, t, answers[q["question_id"]], references, prompts)
             for q in questions for t in (1, 2)}

    def ask(chunk: list[tuple[str, list]]) -> list[dict[str, Any]]:
        out = []
        for name, messages in chunk:
            text = chat(judge, messages, max_tokens=2048)
            out.append({"prompt": name, "rating": parse_rating(text), "judgment": text})
        return out
    return resumable(progress, items, ask, chunk=4, settings={"judge": judge.describe(), "model_id": model_id})


def official_commands(out_dir: Path, model_id: str, limit: int | None) -> list[str]:
    """FastChat's own judge commands for the written answers (run in FastChat's environment:
    ``pip install "fschat[llm_judge]"``, which uses openai<1 and so reads ``OPENAI_API_BASE``)."""
    where = fastchat_dir(out_dir)
    first_n = f" --first-n {limit}" if limit else ""
    return [f"cd {where}",
            "export OPENAI_API_KEY=... OPENAI_API_BASE=https://api.openai.com/v1  # or your endpoint",
            "echo | python -m fastchat.llm_judge.gen_judgment --bench-name mt_bench --mode single "
            f"--judge-model gpt-4 --model-list {model_id} --parallel 2{first_n}  # judge names: FastChat's own (gpt-4, ...)",
            f"python -m fastchat.llm_judge.show_result --bench-name mt_bench --mode single "
            f"--judge-model gpt-4 --model-list {model_id}"]


def run_mt_bench(model: Any, tokenizer: Any, *, benchmarks_dir: Path, out_dir: Path, limit: int | None,
                 judge: Judge | None, max_new_tokens: int, batch_size: int,
                 model_id: str, engine: str = "hf") -> tuple[float | None, dict[str, Any]]:
    """Answer (and, with a judge, rate) MT-Bench; ``(mean rating or None, details)``."""
    questions = files.read_mtbench_questions(benchmarks_dir)[:limit]
    work = Path(out_dir) / "mt_bench"
    answers = answer_questions(model, tokenizer, questions, work, max_new_tokens, batch_size, model_id, engine)
    path = answer_file(out_dir, model_id)
    write_answers(path, model_id, answers)
    lay_out_fastchat(benchmarks_dir, out_dir)
    details: dict[str, Any] = {"n": len(questions), "turns": 2, "answers": str(path), "scale": SCALE,
                               "decoding": "FastChat's per-category temperatures, seed 0",
                               "official_commands": official_commands(out_dir, model_id, limit)}
    if judge is None:
        return None, {**details, "judge": "none", "skipped": f"MT-Bench judge skipped: {NO_JUDGE}"}
    details["judge"] = f"{judge.describe()}, FastChat single-v1 / single-math-v1 prompts"
    try:
        verdicts = judge_answers(judge, questions, answers, files.read_mtbench_references(benchmarks_dir),
                                 files.read_judge_prompts(benchmarks_dir), work / "judgments.progress.json", model_id)
    except JudgeUnavailable as err:
        return None, {**details, "skipped": f"MT-Bench judge skipped: {err}"}
    ratings = [v["rating"] for v in verdicts.values() if v["rating"] is not None]
    write_json(work / "judgments.json", verdicts, indent=1)
    details.update(judged=len(ratings), unparsed=len(verdicts) - len(ratings))
    if not ratings:
        return None, {**details, "skipped": "MT-Bench: no judgment held a [[rating]]; see judgments.json"}
    return round(sum(ratings) / len(ratings), 3), details
