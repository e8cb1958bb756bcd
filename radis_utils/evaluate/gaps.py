"""How a run's evaluation differs from the paper's: what a table must say before it may be called paper scale."""

from __future__ import annotations

from ..config import Config


def evaluation_gaps(cfg: Config) -> list[str]:
    """How this profile's evaluation differs from the paper's (COMET-22 on the full WMT'22 test
    sets; MT-Bench, AlpacaEval 1.0 and 2.0 with an LLM judge; AdvBench judged by Llama-Guard-3-8B;
    GSM8K), one line each; empty only for a run that may be called paper scale."""
    from .judge import judge_from_env
    from .translation import comet_available

    if cfg.data.source == "organism":
        return ["the model organism: chrF on a synthetic language and four exact skills, not the paper's benchmarks"]
    gaps = []
    if not cfg.eval.comet_model or not comet_available():
        gaps.append("translation scored by chrF and BLEU only: COMET "
                    + ("not configured (eval.comet_model)" if not cfg.eval.comet_model else
                       "not installed in this environment (it lives in environment-eval.yml)"))
    if cfg.data.max_test_pairs is not None:
        gaps.append(f"WMT'22 test sets capped at {cfg.data.max_test_pairs} sentences per direction")
    if not cfg.eval.guard_model:
        gaps.append("AdvBench judged by refusal keywords, not Llama-Guard-3-8B (eval.guard_model)")
    if judge_from_env() is None:
        gaps.append("MT-Bench and AlpacaEval not judged: no judge endpoint (radis_utils.evaluate.judge)")
    if cfg.eval.benchmark_limit is not None:
        gaps.append(f"general benchmarks on their first {cfg.eval.benchmark_limit} items")
    gaps.append("chapter 09 grades translation claims on chrF, not COMET")
    return gaps
