"""What a chapter's setup cell costs in a fresh interpreter, with and without the organism's
Transformers stack, measured back to back in one run.

    python -m benchmarks.chapter_setup            # ci profile, 3 fresh interpreters per variant

Every chapter starts by loading its profile and printing ``models.environment_report``, whose
config hash used to import ``radis_utils.organism.build`` (torch's Llama model and Transformers'
generation stack) just to hash the organism's config. It now reads ``organism.spec`` only. The
two variants below run the same setup in new processes; "with build" imports the build module
first, as the old report did. Prints the median seconds and their ratio; nothing is written.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from typing import Sequence

SETUP = ("import pandas, matplotlib.pyplot\n"
         "from radis_utils.config import load_profile\n"
         "from radis_utils.runtime import apply_runtime\n"
         "from radis_utils.models import environment_report\n"
         "cfg = load_profile({profile!r}); apply_runtime(cfg); environment_report(cfg)\n")
VARIANTS = {"with build": "import radis_utils.organism.build\n", "spec only": ""}


def run_once(code: str) -> float:
    """Seconds for ``code`` in a fresh interpreter (its start included)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="ci")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(args.repeats):  # interleaved, so that a change in load hits both variants
        for name, head in VARIANTS.items():
            times[name].append(run_once(head + SETUP.format(profile=args.profile)))
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, m in medians.items():
        print(f"{name}: median {m:.2f} s over {args.repeats} fresh interpreters")
    print(f"setup with build / spec only: {medians['with build'] / medians['spec only']:.2f}x")
    return medians


if __name__ == "__main__":
    main()
