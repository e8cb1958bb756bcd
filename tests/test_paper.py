import pytest

from radis_utils import paper
from radis_utils.config import load_profile, profile_names


def test_facts_carry_their_source():
    for fact in [*paper.SETTINGS.values(), paper.OBSERVATION, paper.GRADIENT_SIGNS]:
        assert fact.where and fact.value is not None
    assert paper.OBSERVATION.value == {"with_rationale": 139, "replies": 200}


def test_settings_rows_compare_each_profile():
    profiles = {n: load_profile(n) for n in profile_names()}
    rows = {r["setting"]: r for r in paper.settings_rows(profiles)}
    assert rows["learning_rate"]["paper"] == rows["learning_rate"]["a100"] == 1e-4
    assert rows["effective_batch"]["a100"] == 128
    assert "nf4" in rows["adapter"]["qlora"] and rows["backbones"]["ci"] == "organism"


def test_result_tables_are_typed_in_or_say_why_not():
    for name, fact in paper.RESULT_TABLES.items():
        assert fact.where.startswith(("table", "tables", "§")), name
        if not paper.transcribed(fact):
            assert "not transcribed" in fact.note, f"{name}: say why the numbers are missing"


def test_table3_rp_column_follows_from_its_raw_columns():
    from radis_utils.evaluate.scores import relative_performance

    table = paper.GENERAL_ABILITY.value
    if table is None:
        pytest.skip(f"table 3 {paper.GENERAL_ABILITY.note}")
    for backbone, rows in table.items():
        base = {k: v for k, v in rows["backbone"].items() if k != "rp"}
        for method, row in rows.items():
            scores = {k: v for k, v in row.items() if k != "rp"}
            printed = repr(float(row["rp"])).partition(".")[2]
            half_unit = 0.5 * 10 ** -len(printed) + 1e-9  # agree to the paper's rounding
            assert relative_performance(base, scores) == pytest.approx(row["rp"], abs=half_unit), (
                backbone, method)
