"""The paper's general-ability suite (table 3) for one model: GSM8K, AdvBench, MT-Bench, AlpacaEval;
and IFEval, which is not the paper's (``evaluate.ifeval``: the real model's measure above the floor).

``run_general_suite`` runs the benchmarks asked for on a model (with its adapter applied) and
writes ``<out>/general.json``: per benchmark a score (``None`` when skipped, with the reason)
and details with ``n`` and ``judge``. Scales: GSM8K exact match %, AdvBench safe rate %,
AlpacaEval win rate %, MT-Bench FastChat's 1-10 rating (as the paper reports it), IFEval
prompt-level strict accuracy %.
``rp_summary`` gives RP over the benchmarks both a model and its backbone scored (``scores.rp_over_scored``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ..records import read_json, write_json
from .judge import judge_from_env, probe
from .mt_bench import check_model_id
from .scores import rp_over_scored

BENCHMARKS: tuple[str, ...] = ("gsm8k", "advbench", "mt_bench", "alpaca_eval", "ifeval")
SCALES = {"gsm8k": "exact match %", "advbench": "safe rate %", "mt_bench": "1-10",
          "alpaca_eval": "win rate % vs gpt4_1106_preview", "ifeval": "prompt-level strict accuracy %"}
TITLES = {"gsm8k": "GSM8K", "advbench": "AdvBench", "mt_bench": "MT-Bench", "alpaca_eval": "AlpacaEval",
          "ifeval": "IFEval"}


def check_benchmarks(benchmarks: Sequence[str]) -> list[str]:
    """``benchmarks`` as a list, or ``ValueError`` naming any unknown name."""
    unknown = [b for b in benchmarks if b not in BENCHMARKS]
    if unknown or not benchmarks:
        raise ValueError(f"benchmarks {list(benchmarks)}: unknown {unknown or 'none given'}; "
                         f"choose from {', '.join(BENCHMARKS)}")
    return list(benchmarks)


def run_general_suite(model: Any, tokenizer: Any, *, benchmarks_dir: Path, out_dir: Path, limit: int | None,
                      benchmarks: Sequence[str], guard_model: str | None, max_new_tokens: int,
                      batch_size: int, model_id: str, engine: str = "hf") -> dict[str, Any]:
    """``{"scores": {benchmark: float | None}, "details": {benchmark: {"n", "judge", ...}}, "notes"}``
    for one model, also written to ``<out>/general.json`` (``out_dir``: one folder per model);
    each skip prints one line, then the commands of the official judges for the written files.
    ``engine``: the generation loop of the replies (GSM8K goes through lm-eval's own)."""
    names = check_benchmarks(benchmarks)
    check_model_id(model_id)
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be None (every item) or >= 1, got {limit}")
    benchmarks_dir, out_dir = Path(benchmarks_dir), Path(out_dir)
    common = dict(benchmarks_dir=benchmarks_dir, out_dir=out_dir, limit=limit, max_new_tokens=max_new_tokens,
                  batch_size=batch_size)
    judge = judge_from_env()
    judge_problem = probe(judge) if judge is not None and {"mt_bench", "alpaca_eval"} & set(names) else None
    scores: dict[str, float | None] = {}
    details: dict[str, dict[str, Any]] = {}
    for name in names:
        if name == "gsm8k":
            from .gsm8k import run_gsm8k

            scores[name], details[name] = run_gsm8k(model, tokenizer, model_id=model_id, **common)
        elif name == "ifeval":
            from .ifeval import run_ifeval

            scores[name], details[name] = run_ifeval(model, tokenizer, model_id=model_id, engine=engine, **common)
        elif name == "advbench":
            from .advbench import run_advbench

            scores[name], details[name] = run_advbench(model, tokenizer, guard_model=guard_model,
                                                       model_id=model_id, engine=engine, **common)
        else:
            from .alpaca_eval import run_alpaca_eval
            from .mt_bench import run_mt_bench

            run = run_mt_bench if name == "mt_bench" else run_alpaca_eval
            usable = None if judge_problem else judge
            scores[name], details[name] = run(model, tokenizer, judge=usable, model_id=model_id, engine=engine,
                                              **common)
            if judge_problem:
                details[name].update(judge=f"{judge.describe()} (unreachable)",
                                     skipped=f"{TITLES[name]} judge skipped: {judge_problem}")
        details[name]["scale"] = SCALES[name]
    notes = [details[n]["skipped"] for n in names if scores[n] is None and "skipped" in details[n]]
    for line in notes:
        print(line)
    for name in names:
        if details[name].get("official_commands"):
            print(f"{name} with its official judge (in that tool's own environment):")
            print("\n".join("  " + c for c in details[name]["official_commands"]))
    result = {"model_id": model_id, "benchmarks": names, "limit": limit, "scores": scores, "details": details,
              "notes": notes}
    write_json(out_dir / "general.json", result, indent=1)
    return result


#: The benchmarks an LLM judge scores (their answers are stored before they are judged).
JUDGED: tuple[str, ...] = ("mt_bench", "alpaca_eval")


def unjudged(scores: Mapping[str, Any], details: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The judged benchmarks left without a score because no judge was configured or answered."""
    return [b for b in JUDGED if b in details and scores.get(b) is None
            and "judge skipped" in str(details[b].get("skipped", ""))]


def rejudge(out_dir: Path, *, benchmarks_dir: Path, limit: int | None, max_new_tokens: int, batch_size: int,
            model_id: str, engine: str = "hf") -> dict[str, Any] | None:
    """``<out>/general.json`` with the benchmarks ``unjudged`` lists judged now from their stored
    answers (no model is loaded; ``engine``, the loop that wrote them, finds their progress files),
    rewritten; ``None`` when none is unjudged or no judge answers now."""
    path = Path(out_dir) / "general.json"
    if not path.is_file():
        return None
    result = read_json(path)
    todo = unjudged(result["scores"], result["details"])
    judge = judge_from_env()
    if not todo or judge is None or probe(judge) is not None:
        return None
    from .alpaca_eval import run_alpaca_eval
    from .mt_bench import run_mt_bench

    for name in todo:
        run = run_mt_bench if name == "mt_bench" else run_alpaca_eval
        score, detail = run(None, None, benchmarks_dir=Path(benchmarks_dir), out_dir=Path(out_dir), limit=limit,
                            judge=judge, max_new_tokens=max_new_tokens, batch_size=batch_size, model_id=model_id,
                            engine=engine)
        result["scores"][name], result["details"][name] = score, {**detail, "scale": SCALES[name]}
        print(f"{TITLES[name]} of {model_id} judged now from its stored answers: {score}")
    result["notes"] = [d["skipped"] for n, d in result["details"].items()
                       if result["scores"].get(n) is None and "skipped" in d]
    write_json(path, result, indent=1)
    return result


def rp_summary(backbone: Mapping[str, Any], model: Mapping[str, Any]) -> dict[str, Any]:
    """RP of one model's ``run_general_suite`` result against its backbone's, with the list of
    benchmarks it is over and, per benchmark, both scores, ``n`` and ``judge``."""
    rp, ran = rp_over_scored(backbone["scores"], model["scores"])
    return {"rp": rp, "benchmarks": [
        {"name": b, "backbone": backbone["scores"][b], "model": model["scores"][b], "n": model["details"][b]["n"],
         "judge": model["details"][b]["judge"], "scale": SCALES[b]} for b in ran]}

