"""The knowledge-base question drawn from a routine e-mail: the asking part, no greeting, names or numbers."""

import pytest

from core.kb_question import MAX_QUESTION_CHARS, question_text


@pytest.mark.parametrize(
    ("subject", "body", "expected"),
    [
        ("Parking", "Hi,\n\nIs there parking near the pharmacy?\n\nThanks,\nAnna Holm",
         "Parking Is there parking near the pharmacy?"),
        ("Parkering", "Hej\n\nFindes der parkering tæt ved apoteket?\n\nMvh\nBo Dahl",
         "Parkering Findes der parkering tæt ved apoteket?"),
        # Abbreviations and domain names do not end a sentence.
        ("Brystpumpe", "Hej. Hvad koster det pr. uge? Står det på Sundhed.dk?",
         "Brystpumpe Hvad koster det pr. uge? Står det på Sundhed.dk?"),
        # Reference, phone and CPR numbers and addresses never reach the embedder.
        ("Invoice", "Dear pharmacy, please send invoice 4471 to ap@firm.example. Call 12345678.\n\nRef. 55123",
         "Invoice please send invoice to"),
    ],
)
def test_question_text_keeps_the_asking_part(subject, body, expected):
    assert question_text(subject, body) == expected


def test_the_first_question_survives_a_long_story():
    story = " ".join(f"Sentence number {word} tells the story." for word in ("one", "two", "three", "four", "five"))
    text = question_text("Price", f"{story} How much does the flu vaccine cost?")
    assert text.endswith("How much does the flu vaccine cost?")
    assert len(text) <= MAX_QUESTION_CHARS


def test_nothing_after_the_sign_off_is_read():
    text = question_text("Hours", "When do you open on Saturday?\nKind regards\nJens Jensen\nCPR 010203-1234")
    assert "Jens" not in text and "CPR" not in text


def test_same_question_with_different_reference_numbers_is_one_query():
    first = question_text("Opening hours", "Hi, when do you open on Sunday?\n\nRef. 10001")
    second = question_text("Opening hours", "Hi, when do you open on Sunday?\n\nRef. 99999")
    assert first == second == "Opening hours when do you open on Sunday?"


def test_an_empty_body_gives_the_subject():
    assert question_text("Opening hours", "") == "Opening hours"
