"""Gradient similarity between the MT loss and each method's regulariser (paper §5.3, fig. 4).

- ``similarity``: validation items and the pair of losses per method, LESS's random projection;
- ``features``: Adam moments of a Trainer checkpoint and the gradient features (sgd, rescaled, LESS);
- ``measure``: streamed per-unit (layer × module) mean and summed cosines, both ``skip_identical`` ways;
- ``runs``: chapter 08's runs at the backbone, mid-training and the end, one results file per seed.
"""

from .features import (
    PRECONDITIONERS, Moments, adam_moments, feature, load_optimizer_state, trainer_param_order, zero_moments,
)
from .measure import SUBSETS, Layout, count_signs, flat_gradient, layer_groups, measure, unit_of, units_of
from .runs import (
    CHECKS, POINTS, PRIMARY, THRESHOLD, acceptance, identical_counts, iter_pairs, last_checkpoint, point_model,
    read_results, results_path, seed_similarity, share_with_sign, validation_items, values, verdict_line,
)
from .similarity import (
    PAIR_METHODS, GradientItem, GradientPair, balanced_sample, items_from_records, layer_of, pairs_for, project,
    span_loss, span_means,
)

__all__ = [
    "CHECKS", "Layout", "PAIR_METHODS", "POINTS", "PRECONDITIONERS", "PRIMARY", "SUBSETS", "THRESHOLD", "GradientItem", "GradientPair",
    "Moments", "acceptance", "adam_moments", "balanced_sample", "count_signs", "feature", "identical_counts",
    "items_from_records", "iter_pairs", "last_checkpoint", "layer_groups", "layer_of", "load_optimizer_state",
    "flat_gradient", "measure", "pairs_for", "point_model", "project", "read_results", "results_path", "seed_similarity",
    "share_with_sign", "span_loss", "span_means", "trainer_param_order", "unit_of", "units_of",
    "validation_items", "values", "verdict_line", "zero_moments",
]
