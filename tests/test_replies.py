import pytest

from radis_utils.replies import EXTRACTION_RULES, split_reply, translation_agreement

CASES = [
    ("first_line", ("Der Hund schläft.", "Note: 'schläft' means sleeps.\n\nAlternatively: ...")),
    ("first_paragraph", ("Der Hund schläft.\nNote: 'schläft' means sleeps.", "Alternatively: ...")),
    ("first_sentence", ("Der Hund schläft.", "Note: 'schläft' means sleeps.\n\nAlternatively: ...")),
    ("whole", ("Der Hund schläft.\nNote: 'schläft' means sleeps.\n\nAlternatively: ...", "")),
]


def test_every_rule_a_profile_may_name_is_tested():
    assert [rule for rule, _ in CASES] == list(EXTRACTION_RULES)


@pytest.mark.parametrize("rule, expected", CASES)
def test_split_rules(rule, expected):
    reply = " Der Hund schläft.\nNote: 'schläft' means sleeps.\n\nAlternatively: ...\n"
    assert split_reply(reply, rule) == expected


def test_bare_translation_has_no_rationale():
    assert split_reply("Der Hund schläft.") == ("Der Hund schläft.", "")
    with pytest.raises(ValueError, match="known: first_line"):
        split_reply("x", "last_line")


def test_translation_agreement_counts_reference_own_and_rationale():
    replies = ["ka bo . Mira lives in X .", "ka ti .", "zu bo . It is red ."]
    counts = translation_agreement(replies, ["ka bo .", "ka bo .", "ka bo ."], ["zu bo .", "ka ti .", "zu bo ."],
                                   "first_sentence")
    assert counts == {"n": 3, "translation = reference": 1, "translation = own": 2, "with a rationale": 2}
    with pytest.raises(ValueError, match="differ in length: 1, 2, 2"):
        translation_agreement(["a ."], ["a .", "b ."], ["a .", "b ."])
