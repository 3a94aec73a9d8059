"""Tokens the rules see: decimal numbers stay one word, and a unit typed onto a number is its own word."""

from functools import lru_cache

import pytest

from core.triage.lexicon import LexiconSet
from policy_rules.loader import load_lexicons


@lru_cache(maxsize=1)
def lexicons() -> LexiconSet:
    return LexiconSet(load_lexicons())


@pytest.mark.parametrize("text, words", [
    ("Can I take 0.5 mg?", ["can", "i", "take", "0.5", "mg"]),
    ("qvar 40mcg", ["qvar", "40", "mcg"]),
    ("Wegovy 1,7 mg", ["wegovy", "1,7", "mg"]),
    ("b12 and hba1c", ["b12", "and", "hba1c"]),
])
def test_numbers_and_units_are_split_as_words(text, words):
    tokens, _ = lexicons().tokenise(text.lower())
    assert [t.text for t in tokens] == words


def test_a_decimal_point_ends_no_sentence():
    scan = lexicons().scan("Can I take 0.5 mg of it? Yes.")
    assert {t.sentence for t in scan.tokens if t.text in ("can", "mg")} == {0}
    assert 0 in scan.questions


def test_a_unit_typed_onto_a_number_is_a_dose_unit():
    assert {m.term for m in lexicons().scan("qvar 40mcg").matches.get("dose_units", ())} == {"mcg"}
