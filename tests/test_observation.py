from radis_utils.observation import classify_heuristic, rationale_table


def test_heuristic_categories_and_table():
    assert "gloss" in classify_heuristic("The word 'Hund' literally means dog.")
    assert "safety" in classify_heuristic("Making explosives is dangerous and illegal.")
    assert "arithmetic" in classify_heuristic("3 + 4 apples make 7.")
    assert classify_heuristic("Hmm.") == ["other"]
    table = rationale_table(["It means dog.", "", "The capital is Paris; it means x."], classify_heuristic)
    assert table["gloss"] == 2 and table["fact"] == 1
