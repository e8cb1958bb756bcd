"""Score stored translation replies again, without loading any model.

    python -m radis_utils.evaluate --profile qlora --score-only

Every results file of the profile (``runs/<profile>/results/``: the backbone and each adapter)
gains the metrics it lacks and this environment can compute from the replies it stores (COMET,
in the evaluation environment ``environment-eval.yml``); the rest is left as it is.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Sequence

from ..config import load_profile
from .suite import score_stored

#: ``backbone.json`` and ``<method>[-<tag>]-seed<k>.json``: the files ``suite.evaluate`` writes.
RESULTS_NAME = re.compile(r"^(backbone|[a-z]+(-[\w.-]+)?-seed\d+)\.json$")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", required=True)
    ap.add_argument("--score-only", action="store_true", required=True,
                    help="add missing metrics from the stored replies (the only mode)")
    args = ap.parse_args(argv)
    cfg = load_profile(args.profile)
    folder = cfg.runs_dir / "results"
    paths = sorted(p for p in folder.glob("*.json") if RESULTS_NAME.match(p.name) and not p.name.startswith("gradients"))
    if not paths:
        print(f"{folder}: no results files; evaluate first (chapter 06)", file=sys.stderr)
        return 1
    for path in paths:
        before = path.read_text(encoding="utf-8")
        metrics = score_stored(cfg, path).get("metrics", [])
        print(f"{path.name}: {'rescored' if path.read_text(encoding='utf-8') != before else 'unchanged'}; "
              f"metrics {', '.join(metrics) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
