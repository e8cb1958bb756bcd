"""One tidy table per results file: a row per model, benchmark or direction, metric and value.

The results JSON is nested (translation per direction, general per benchmark, RP, notes); pandas,
R or a spreadsheet read a long table directly. ``write_tidy`` writes ``<results>.csv`` beside the
JSON whenever the JSON is written, with the columns ``TIDY_COLUMNS``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Mapping

from ..records import write_text

TIDY_COLUMNS: tuple[str, ...] = ("profile", "method", "seed", "tag", "benchmark", "metric", "value", "n")
#: Translation values that are numbers per direction (signatures and notes stay in the JSON).
TRANSLATION_METRICS: tuple[str, ...] = ("chrf", "bleu", "comet", "rationale_share")


def tidy_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The long rows of one results file: each direction's metrics (``n`` test sentences), the
    averages over directions, each general benchmark's score and RP."""
    head = {"profile": result.get("profile"), "method": result.get("method"), "seed": result.get("seed"),
            "tag": result.get("tag", "")}
    rows = []
    for direction, scores in result.get("translation", {}).items():
        for metric in TRANSLATION_METRICS:
            if isinstance(scores.get(metric), (int, float)):
                rows.append({**head, "benchmark": direction, "metric": metric, "value": scores[metric],
                             "n": scores.get("n")})
    for benchmark, score in (result.get("general") or {}).items():
        rows.append({**head, "benchmark": benchmark, "metric": "score", "value": score, "n": None})
    if result.get("rp") is not None:
        rows.append({**head, "benchmark": "general", "metric": "rp", "value": result["rp"], "n": None})
    return rows


def tidy_path(results: Path) -> Path:
    """``<results>.csv`` beside ``<results>.json``."""
    return Path(results).with_suffix(".csv")


def write_tidy(results: Path, result: Mapping[str, Any]) -> Path:
    """Write ``tidy_rows(result)`` as CSV beside the results file (atomically, as the JSON)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TIDY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(tidy_rows(result))
    path = tidy_path(results)
    write_text(path, buffer.getvalue())
    return path
