"""Per-layer gradient similarity between the MT loss and each method's regulariser (paper §5.3, fig. 4).

- ``similarity``: pairs of losses per method, per-layer gradients, optional Adam preconditioning
  and random projection, the streamed mean cosine per layer;
- ``runs``: chapter 08's runs on each method's trained adapter, one results file per seed.
"""

from .runs import (
    iter_pairs, last_checkpoint, read_results, results_path, seed_similarity, sign_verdict,
    validation_items, without_identical,
)
from .similarity import (
    PAIR_METHODS, GradientItem, GradientPair, adam_preconditioner, balanced_sample, count_signs,
    gradient_similarity, items_from_records, layer_of, load_optimizer_state, pairs_for, params_by_layer,
    per_layer_gradients, project, span_loss, trainer_param_order,
)

__all__ = [
    "PAIR_METHODS", "GradientItem", "GradientPair", "adam_preconditioner", "balanced_sample", "count_signs",
    "gradient_similarity", "items_from_records", "iter_pairs", "last_checkpoint", "layer_of",
    "load_optimizer_state", "pairs_for", "params_by_layer", "per_layer_gradients", "project", "read_results",
    "results_path", "seed_similarity", "sign_verdict", "span_loss", "trainer_param_order",
    "validation_items", "without_identical",
]
