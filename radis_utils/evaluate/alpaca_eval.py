"""AlpacaEval (paper table 3): greedy outputs to its 805 instructions, in alpaca_eval's format,
and a win rate against a baseline judged by an LLM.

The outputs file is what ``alpaca_eval --model_outputs`` reads: a JSON list of
``{"instruction", "output", "generator", "dataset"}``; ``official_commands`` gives the commands
for alpaca_eval's own annotators (the paper: ``weighted_alpaca_eval_gpt4_turbo`` for 2.0).

Our judge (when ``judge.judge_from_env`` gives an endpoint) is an APPROXIMATION of those
annotators, named as such in the results: FastChat's pairwise prompt ``pair-v2`` (read from
the shipped ``mt_bench/judge_prompts.jsonl``) compares the model's output with the baseline's
(AlpacaEval 2.0: ``gpt4_1106_preview``; 1.0: ``text_davinci_003``), the model in position A
for even items and B for odd ones; a win counts 1, a tie 0.5. It has no length control and no
log-probability weighting, so its numbers are not the leaderboard's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from .. import benchmark_files as files
from ..records import write_json
from .answering import resumable, resumable_replies
from .judge import NO_JUDGE, Judge, JudgeUnavailable, chat, parse_pair_verdict, system_and_user

#: Which baseline gives which AlpacaEval version's win rate (paper table 3 has both).
VERSIONS = {"2.0": "gpt4_1106_preview", "1.0": "text_davinci_003"}
PAIR_PROMPT = "pair-v2"
JUDGE_NAME = ("approximation of alpaca_eval's annotator: FastChat pair-v2 prompt vs the baseline's "
              "outputs, position alternated, tie = 0.5, no length control")


def outputs_file(out_dir: Path, generator: str) -> Path:
    """``<out>/alpaca_eval/<generator>/model_outputs.json`` (alpaca_eval's own layout)."""
    return Path(out_dir) / "alpaca_eval" / generator / "model_outputs.json"


def write_outputs(path: Path, generator: str, rows: Sequence[Mapping[str, Any]]) -> Path:
    """alpaca_eval's model-outputs JSON: ``[{"instruction", "output", "generator", "dataset"}]`` (atomic)."""
    records = []
    for i, row in enumerate(rows):
        for field in ("instruction", "output", "dataset"):
            if not isinstance(row.get(field), str):
                raise ValueError(f"write_outputs: row {i}: {field!r} must be a string, got {row.get(field)!r:.60}")
        records.append({"instruction": row["instruction"], "output": row["output"], "generator": generator,
                        "dataset": row["dataset"]})
    write_json(Path(path), records)
    return Path(path)


def answer_instructions(model: Any, tokenizer: Any, rows: Sequence[Mapping[str, str]], work: Path,
                        max_new_tokens: int, batch_size: int, model_id: str, engine: str = "hf") -> list[dict[str, str]]:
    """``rows`` with the model's greedy ``output`` for each instruction (resumable through ``work``)."""
    replies = resumable_replies(model, tokenizer, {str(i): [{"role": "user", "content": r["instruction"]}]
                                                   for i, r in enumerate(rows)},
                                work / "outputs.progress.json", max_new_tokens, batch_size, model_id, engine=engine)
    return [{"instruction": r["instruction"], "output": replies[str(i)], "dataset": r["dataset"]}
            for i, r in enumerate(rows)]


def pair_request(prompt: Mapping[str, Any], instruction: str, ours: str, theirs: str,
                 ours_first: bool) -> list[dict[str, Any]]:
    """The ``pair-v2`` request comparing our output with the baseline's (ours as A if ``ours_first``)."""
    a, b = (ours, theirs) if ours_first else (theirs, ours)
    return system_and_user(prompt["system_prompt"],
                           prompt["prompt_template"].format(question=instruction, answer_a=a, answer_b=b))


def win_value(verdict: str | None, ours_first: bool) -> float | None:
    """1 for our win, 0 for a loss, 0.5 for a tie, ``None`` for a verdict that was not parsed."""
    if verdict is None:
        return None
    if verdict == "C":
        return 0.5
    return 1.0 if (verdict == "A") == ours_first else 0.0


def judge_against(judge: Judge, ours: Sequence[Mapping[str, str]], baseline: Sequence[Mapping[str, str]],
                  prompt: Mapping[str, Any], progress: Path, model_id: str) -> dict[str, dict[str, Any]]:
    """``{index: {"verdict", "win", "judgment"}}`` of our outputs against the baseline's (resumable)."""
    for i, (o, b) in enumerate(zip(ours, baseline)):
        if o["instruction"] != b["instruction"]:
            raise ValueError(f"AlpacaEval item {i}: the baseline's instruction differs from ours; "
                             "the two outputs files must list the same instructions in the same order")
    items = {str(i): (i % 2 == 0, pair_request(prompt, o["instruction"], o["output"], b["output"], i % 2 == 0))
             for i, (o, b) in enumerate(zip(ours, baseline))}

    def ask(chunk: list[tuple[bool, list]]) -> list[dict[str, Any]]:
        out = []
        for ours_first, messages in chunk:
            text = chat(judge, messages, max_tokens=2048)
            verdict = parse_pair_verdict(text)
            out.append({"verdict": verdict, "ours_first": ours_first, "win": win_value(verdict, ours_first),
                        "judgment": text})
        return out
    return resumable(progress, items, ask, chunk=4, settings={"judge": judge.describe(), "prompt": PAIR_PROMPT,
                                                               "model_id": model_id})


def win_rate(verdicts: Mapping[str, Mapping[str, Any]]) -> tuple[float | None, int]:
    """Win rate in percent over the parsed verdicts, and how many were parsed."""
    wins = [v["win"] for v in verdicts.values() if v["win"] is not None]
    return (round(100.0 * sum(wins) / len(wins), 2) if wins else None), len(wins)


def official_commands(outputs: Path, benchmarks_dir: Path) -> list[str]:
    """alpaca_eval's own commands for the written outputs (its own environment: ``pip install
    alpaca-eval``, openai>=1, which reads ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``)."""
    ref = {v: Path(benchmarks_dir).resolve() / files.ALPACA_EVAL_BASELINES[b] for v, b in VERSIONS.items()}
    return ["export OPENAI_API_KEY=...  # and OPENAI_BASE_URL for another endpoint",
            f"alpaca_eval --model_outputs {outputs} --reference_outputs {ref['2.0']} "
            "--annotators_config weighted_alpaca_eval_gpt4_turbo  # AlpacaEval 2.0 (paper)",
            f"alpaca_eval --model_outputs {outputs} --reference_outputs {ref['1.0']} "
            "--annotators_config alpaca_eval_gpt4  # AlpacaEval 1.0"]


def run_alpaca_eval(model: Any, tokenizer: Any, *, benchmarks_dir: Path, out_dir: Path, limit: int | None,
                    judge: Judge | None, max_new_tokens: int, batch_size: int,
                    model_id: str, engine: str = "hf") -> tuple[float | None, dict[str, Any]]:
    """Outputs for AlpacaEval (and, with a judge, win rates); ``(2.0 win rate % or None, details)``."""
    baselines = {v: files.read_alpaca_eval(benchmarks_dir, b)[:limit] for v, b in VERSIONS.items()}
    work = Path(out_dir) / "alpaca_eval"
    ours = answer_instructions(model, tokenizer, baselines["2.0"], work, max_new_tokens, batch_size, model_id, engine)
    path = write_outputs(outputs_file(out_dir, model_id), model_id, ours)
    details: dict[str, Any] = {"n": len(ours), "outputs": str(path), "baseline": VERSIONS["2.0"],
                               "official_commands": official_commands(path, benchmarks_dir)}
    if len(ours) < 805:
        details["note"] = (f"{len(ours)} of 805 instructions answered (limit); the official commands are meant "
                           "for all 805")
    if judge is None:
        return None, {**details, "judge": "none", "skipped": f"AlpacaEval judge skipped: {NO_JUDGE}"}
    details["judge"] = f"{judge.describe()}, {JUDGE_NAME}"
    prompt = files.read_judge_prompts(benchmarks_dir)[PAIR_PROMPT]
    rates = {}
    try:
        for version, baseline in baselines.items():
            verdicts = judge_against(judge, ours, baseline, prompt, work / f"judgments-{version}.progress.json",
                                     model_id)
            write_json(work / f"judgments-{version}.json", verdicts, indent=1)
            rates[version] = win_rate(verdicts)
    except JudgeUnavailable as err:
        return None, {**details, "skipped": f"AlpacaEval judge skipped: {err}"}
    details.update({f"win_rate_{v}": r for v, (r, _) in rates.items()},
                   judged={v: n for v, (_, n) in rates.items()})
    if rates["2.0"][0] is None:
        return None, {**details, "skipped": "AlpacaEval: no judgment held a [[A]]/[[B]]/[[C]] verdict"}
    return rates["2.0"][0], details
