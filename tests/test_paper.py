import re

import pytest

from radis_utils import paper, prompts
from radis_utils.config import load_profile, profile_names
from radis_utils.evaluate import relative_performance

#: Figure 5 of the paper, typed from the figure (not from prompts.py).
FIG5 = """Instruction 1:
Could you please translate this sentence from {lang1} to {lang2}?
{sent1}
Instruction 2:
Translate the following sentence from {lang1} to {lang2}:
{sent1}
Instruction 3:
Translate this sentence from {lang1} to {lang2}.
{sent1}
Instruction 4:
Translate from {lang1} to {lang2}:
{sent1}
Instruction 5:
{sent1}
Translate this sentence to {lang2}."""


def half_unit(value: float) -> float:
    """Half a unit in the last printed digit of ``value`` (the paper prints 2 decimals or fewer)."""
    return 0.5 * 10 ** -len(repr(float(value)).partition(".")[2])


def test_instructions_are_figure_5_character_for_character():
    blocks = re.split(r"Instruction \d:\n", FIG5)[1:]
    assert tuple(b.rstrip("\n") for b in blocks) == prompts.INSTRUCTIONS
    assert load_profile("ci").prompts.instructions == prompts.INSTRUCTIONS == load_profile("a100").prompts.instructions
    assert paper.INSTRUCTIONS_FIG5.value == len(prompts.INSTRUCTIONS)


def test_facts_carry_their_source():
    facts = [*paper.SETTINGS.values(), *paper.RESULT_TABLES.values(), paper.OBSERVATION,
             paper.TRANSLATION_DELTAS, paper.COMPARABLE_TO_VANILLA]
    for fact in facts:
        assert fact.where and fact.value is not None
        assert re.match(r"(tables? \d|§\d|app\. [A-C]|fig\. \d)", fact.where), fact.where
    assert paper.OBSERVATION.value == {"with_rationale": 139, "replies": 200}
    assert paper.GRADIENT_SIGNS.value == {"layers": 32, "radis_positive": 25, "seqkd_negative": 24}
    assert "not stated" in paper.GRADIENT_SIGNS.note and "not stated" in paper.OBSERVATION_CATEGORIES.note
    assert paper.SETTINGS["seqkd_batch"].value == 256 and "2,500" in paper.SETTINGS["steps"].value


def test_table4_has_eight_categories_that_may_overlap():
    cats = paper.OBSERVATION_CATEGORIES.value
    assert len(cats) == 8 and all(isinstance(c, str) and 0 < s < 100 for c, s in cats.values())
    shares = [s for _, s in cats.values()]
    assert shares == sorted(shares, reverse=True) and sum(shares) != 100  # the paper: shares do not sum to 100


def test_settings_rows_compare_each_profile():
    profiles = {n: load_profile(n) for n in profile_names()}
    rows = {r["setting"]: r for r in paper.settings_rows(profiles)}
    assert rows["learning_rate"]["paper"] == rows["learning_rate"]["a100"] == 1e-4
    assert rows["effective_batch"]["a100"] == 128
    assert "nf4" in rows["adapter"]["qlora"] and rows["backbones"]["ci"] == "organism"
    assert rows["synthesis_engine"]["a100"] == "vllm" and rows["seqkd_batch"]["paper"] == 256
    assert "not merged" in rows["merge"]["qlora"] and "merged" in rows["merge"]["a100"]
    assert {"steps", "eval_decoding", "instructions"} <= set(rows)


def cells(fact_name: str):
    """``(key, value)`` for every cell of tables 1-3 and 5, keyed like ``paper.CELL_NOTES``."""
    if fact_name == "TRANSLATION":
        for d, groups in paper.TRANSLATION.value.items():
            for g, rows in groups.items():
                for r, row in rows.items():
                    for c, v in row.items():
                        yield (fact_name, d, g, r, c), v
    elif fact_name == "GENERAL_ABILITY":
        for g, rows in paper.GENERAL_ABILITY.value.items():
            for r, row in rows.items():
                for c, v in row.items():
                    yield (fact_name, "", g, r, c), v
    else:
        for r, row in paper.RATIONALE_SOURCE_ABLATION.value.items():
            for c, v in row.items():
                yield (fact_name, "", "", r, c), v


def test_every_lost_cell_says_why_and_every_note_names_a_cell():
    all_cells = dict(kv for name in ("TRANSLATION", "GENERAL_ABILITY", "RATIONALE_SOURCE_ABLATION") for kv in cells(name))
    for key, value in all_cells.items():
        assert value is None or value == paper.NOT_REPORTED or isinstance(value, (int, float)), key
        if value is None:
            assert paper.cell_note(*key).startswith(paper.UNREADABLE), key
    for key, note in paper.CELL_NOTES.items():
        assert key in all_cells, key
        assert (all_cells[key] is None) == note.startswith(paper.UNREADABLE), key
    for fact in paper.RESULT_TABLES.values():
        assert "not transcribed" not in fact.note


def test_derived_cells_follow_from_the_deltas_they_name():
    derived = paper.derived_cells()
    assert derived, "tables 1-2 have cells the extraction lost"
    values = dict(cells("TRANSLATION"))
    for key, note in derived:
        found = re.match(r"derived: (\d+\.\d+) ([−+]) (\d+\.\d+)", note)
        if found is None:
            assert note.startswith("read from"), key  # a read cell whose column was placed
            continue
        a, op, b = found.groups()
        expected = float(a) - float(b) if op == "−" else float(a) + float(b)
        assert values[key] == pytest.approx(expected, abs=1e-9), key


def test_table_1_2_cells_agree_with_their_printed_deltas():
    checked = 0
    for d, groups in paper.TRANSLATION_DELTAS.value.items():
        for g, rows in groups.items():
            base = paper.TRANSLATION.value[d][g]["backbone"]
            for r, deltas in rows.items():
                for c, delta in deltas.items():
                    value = paper.TRANSLATION.value[d][g][r][c]
                    if delta is None or value is None:
                        assert value is None or delta is None
                        continue
                    assert value == pytest.approx(base[c] + delta, abs=0.011), (d, g, r, c)  # each rounded
                    checked += 1
    assert checked >= 70


def test_table_1_2_averages_follow_from_their_cells():
    checked = 0
    for key, row in ((k, r) for d, gs in paper.TRANSLATION.value.items() for g, rs in gs.items()
                     for k, r in ((f"{d}/{g}/{m}", r) for m, r in rs.items())):
        langs = [row[c] for c in paper.LANGUAGES]
        if not all(isinstance(v, float) for v in langs) or not isinstance(row["avg"], float):
            continue
        # cells and average each rounded to 2 decimals: they agree within one unit of the last digit
        assert sum(langs) / 4 == pytest.approx(row["avg"], abs=0.01 + 1e-9), key
        checked += 1
    assert checked == 20  # 2 tables x (10 backbone-group rows + 3 prior models), less 6 Mistral rows with a lost cell


def test_table3_rp_column_follows_from_its_raw_columns():
    checked = 0
    for backbone in paper.BACKBONES:
        rows = paper.GENERAL_ABILITY.value[backbone]
        base = {k: v for k, v in rows["backbone"].items() if k != "rp"}
        for method, row in rows.items():
            if row["rp"] == paper.NOT_REPORTED:
                assert method == "backbone"
                continue
            scores = {k: v for k, v in row.items() if k != "rp"}
            assert relative_performance(base, scores) == pytest.approx(row["rp"], abs=half_unit(row["rp"]) + 1e-9), (
                backbone, method)
            checked += 1
    assert checked == 8


def test_table5_repeats_tables_1_to_3_for_mistral():
    t5 = paper.RATIONALE_SOURCE_ABLATION.value
    for row, method in (("backbone", "backbone"), ("vanilla", "vanilla"), ("radis (self-generated)", "radis")):
        assert t5[row]["xx_en"] == paper.TRANSLATION.value["xx-en"][paper.MISTRAL][method]["avg"]
        assert t5[row]["en_xx"] == paper.TRANSLATION.value["en-xx"][paper.MISTRAL][method]["avg"]
        general = paper.GENERAL_ABILITY.value[paper.MISTRAL][method]
        assert all(t5[row][c] == general[c] for c in paper.GENERAL_COLUMNS if c != "rp")


def test_table4_rows_map_our_kinds_onto_the_eight_categories():
    from radis_utils.organism import RATIONALE_CATEGORIES
    from radis_utils.observation import HEURISTIC_PATTERNS

    categories = set(paper.OBSERVATION_CATEGORIES.value)
    assert set(RATIONALE_CATEGORIES) | set(HEURISTIC_PATTERNS) | {"other"} == set(paper.TABLE4_CATEGORY_OF_KIND)
    assert {c for c in paper.TABLE4_CATEGORY_OF_KIND.values() if c} <= categories
    rows = paper.table4_rows({"gloss": 70.0, "arithmetic": 20.0})
    by_category = {r["category (table 4)"]: r for r in rows[:8]}
    assert set(by_category) == categories
    assert by_category["Word/phrase translation"]["ours %"] == 70.0 and by_category["Grammar"]["ours %"] == 0.0
    assert by_category["Semantic explanation"]["ours %"] is None  # no kind of ours maps there
    assert rows[8]["our kind"] == "arithmetic" and rows[8]["paper %"] is None


def test_the_introductions_headline_gains_against_the_tables():
    """§1 says RaDis gains 5.6 and 8.9 COMET (LLaMA-2, Mistral); tables 1-2's deltas give 5.7 and
    8.9 (the mean of the en→X and X→en averages), so the first is off by 0.1 in the paper itself."""
    from radis_utils import paper

    typed = paper.HEADLINE_GAINS.value["radis"]
    llama, mistral = paper.headline_gains()
    assert round(llama, 1) == 5.7 and round(mistral, 1) == typed[1] == 8.9
    assert abs(llama - typed[0]) == pytest.approx(0.11, abs=0.01)
    points = {(r["backbone"], r["method"]): r for r in paper.figure1_points()}
    radis = points[(paper.MISTRAL, "radis")]
    assert radis["MT-Bench"] == 7.57 and radis["COMET (mean of en→X, X→en)"] == round((84.39 + 81.94) / 2, 2)
    assert points[(paper.MISTRAL, "sdft")]["COMET (mean of en→X, X→en)"] is None  # a lost cell stays lost
