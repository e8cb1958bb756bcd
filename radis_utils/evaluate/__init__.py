"""Evaluation: translation metrics, the general-ability suite, relative performance (paper §4, tables 1-3).

- ``translation``: extraction of the translation from a reply, BLEU/chrF, COMET when available;
- ``general``: the full-scale general benchmarks (GSM8K, AdvBench, MT-Bench, AlpacaEval) as
  commands and file formats, skipped with a message when a tool or judge is missing;
- ``scores``: relative performance (RP) and gain ratios;
- ``suite``: evaluate one model and keep the result as JSON;
- ``gaps``: how a run's evaluation differs from the paper's.
"""

from .gaps import evaluation_gaps
from .scores import gain_ratio, relative_performance
from .suite import (
    ACCEPTANCE, BACKBONE, ResultsError, acceptance, acceptance_values, evaluate, evaluate_model,
    extraction_effect, headline,
    read_results, results_path, threshold_holds,
)
from .translation import corpus_metrics, extract_translation, per_direction_table, score_comet_or_skip

__all__ = [
    "ACCEPTANCE", "BACKBONE", "ResultsError", "acceptance", "acceptance_values", "corpus_metrics", "evaluate", "evaluate_model",
    "evaluation_gaps",
    "extract_translation", "extraction_effect", "gain_ratio", "headline", "per_direction_table",
    "read_results", "relative_performance", "results_path", "score_comet_or_skip", "threshold_holds",
]
