"""The tidy table beside every results file."""

from __future__ import annotations

import pandas as pd

from radis_utils.evaluate import tables


def test_a_results_file_becomes_one_long_table_pandas_reads_directly(tmp_path):
    result = {"profile": "ci", "method": "radis", "seed": 0, "tag": "",
              "translation": {"en-sy": {"chrf": 96.5, "bleu": 94.6, "n": 200, "chrf_signature": "nrefs:1",
                                        "comet_note": "skipped"},
                              "avg_en_xx": {"chrf": 96.5, "bleu": 94.6, "directions": ["en-sy"]}},
              "general": {"arithmetic": 56.1, "safety": 93.0}, "rp": 73.81}
    path = tables.write_tidy(tmp_path / "radis-seed0.json", result)
    assert path == tmp_path / "radis-seed0.csv"
    table = pd.read_csv(path)
    assert list(table.columns) == list(tables.TIDY_COLUMNS)
    assert len(table) == 2 + 2 + 2 + 1  # en-sy chrF/BLEU, the average's two, two benchmarks, RP
    row = table[(table.benchmark == "en-sy") & (table.metric == "chrf")].iloc[0]
    assert row.value == 96.5 and row.n == 200 and row.method == "radis" and row.seed == 0
    assert table[table.metric == "rp"].value.tolist() == [73.81]
