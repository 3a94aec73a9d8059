"""Lexicon matching: folding, æøå spellings, inflections, one-typo tolerance, negation windows, offsets."""

from functools import lru_cache

import pytest

from core.triage.lexicon import LexiconSet, within_one_edit
from core.triage.normalise import danish_variants, fold, fold_with_offsets, mark_gaps
from policy_rules.lexicon_schema import Lexicon, TermGroup
from policy_rules.loader import load_lexicons


@lru_cache(maxsize=1)
def lexicons() -> LexiconSet:
    return LexiconSet(load_lexicons())


def terms(text: str, lexicon: str, negated: bool = False) -> set[str]:
    scan = lexicons().scan(text)
    return {m.term for m in scan.matches.get(lexicon, ()) if m.negated == negated}


def test_fold_handles_case_danish_letters_and_accents():
    assert fold("ÆØÅ Café Naïve") == "aeoeaa cafe naive"
    folded = fold_with_offsets("Svimmelhed på grund af Stesolid")
    start = folded.text.index("stesolid")
    assert folded.original_text(start, start + len("stesolid")) == "Stesolid"


@pytest.mark.parametrize("text", ["Svimmelhed på grund af Stesolid", "ÆØÅ æøå", "Straße İstanbul ½ ﬁne",
                                  "soft\u00adhyphen and zero\u200bwidth", "plain ascii `quote`", "løb Ångström café"])
def test_every_folded_character_points_back_at_the_character_it_came_from(text):
    folded = fold_with_offsets(text)
    expected = [i for i, char in enumerate(text) for _ in fold(char)]
    assert folded.text == "".join(fold(c) for c in text) == fold(text)
    if all(len(fold(c)) == 1 for c in text):
        assert folded.offsets is None, "equal lengths need no map back"
    else:
        assert list(folded.offsets) == expected
    for start in range(len(folded.text)):
        first, last = folded.span(start, start + 1)
        assert fold(text[first:last]).find(folded.text[start]) >= 0


def test_danish_spellings_without_aeoeaa():
    assert danish_variants(fold("følelsesløs")) >= {"foelelsesloes", "folelseslos"}
    assert danish_variants(fold("øm")) == {"oem"}, "short words keep their spelling: 'om' is another word"


@pytest.mark.parametrize("text", ["Jeg er svimmel og har kvalme", "jeg er svimmel og har kvalme",
                                  "Jeg foeler mig svimmel", "JEG ER SVIMMEL"])
def test_symptoms_match_regardless_of_case_and_spelling(text):
    assert "svimmel" in terms(text, "symptoms")


@pytest.mark.parametrize("text, term", [
    ("I have had headaches all week", "headache"),
    ("bivirkningerne er slemme", "bivirkning"),
    ("rygsmerterne er værre", "*smerter"),
    ("several allergies", "allergies"),
])
def test_inflections_and_compounds(text, term):
    found = terms(text, "symptoms") | terms(text, "adverse_reactions") | terms(text, "allergies")
    assert term in found


@pytest.mark.parametrize("typo, term", [("oxycodne", "oxycodone"), ("Stesolidd", "Stesolid"),
                                        ("Contalign", "Contalgin"), ("alprazolma", "alprazolam")])
def test_one_typo_in_long_drug_names(typo, term):
    assert term in terms(f"Please refill my {typo}", "controlled_medicines")


def test_no_typo_tolerance_for_short_words_and_look_alikes():
    assert not terms("We went to a concert", "controlled_medicines")
    assert not terms("Koden til boksen virker ikke", "controlled_medicines")
    assert not terms("Xanx please", "controlled_medicines"), "five letters: no typo forgiven"
    assert not terms("Det haster ikke", "symptoms"), "haster is no typo of hoster in ordinary words"


@pytest.mark.parametrize("a, b, expected", [("oxycodone", "oxycodne", True), ("stesolid", "stesoild", True),
                                            ("contalgin", "kontalgin", True), ("xanax", "xanaxx", True),
                                            ("tramadol", "tradolan", False), ("abc", "xyz", False)])
def test_within_one_edit(a, b, expected):
    assert within_one_edit(a, b) is expected


@pytest.mark.parametrize("text", ["No side effects so far", "I have not had any side effects",
                                  "Jeg har ingen bivirkninger", "Jeg har ikke haft nogen bivirkninger"])
def test_negated_reactions_do_not_count(text):
    assert not terms(text, "adverse_reactions")


def test_negated_matches_are_kept_and_marked():
    assert terms("I have not had any side effects", "adverse_reactions", negated=True)


@pytest.mark.parametrize("text", ["No side effects, but I have a rash now",
                                  "Ingen bivirkninger, men jeg har fået udslæt"])
def test_negation_stops_at_the_clause(text):
    assert terms(text, "symptoms")


@pytest.mark.parametrize("text", ["I'm not sure if this rash is normal", "I have no idea why the pain came back",
                                  "No allergies except penicillin", "Jeg ved ikke om det er udslæt"])
def test_pseudo_negations_do_not_negate(text):
    assert terms(text, "symptoms") or terms(text, "allergies")


def test_resolved_symptoms_are_negated_after_the_term():
    assert not terms("Kvalmen fra metformin er helt væk nu", "symptoms")
    assert terms("Hovedpinen går ikke væk", "symptoms")


def test_exclusions_and_look_alike_phrases():
    assert not terms("Please refill my pain medication", "symptoms")
    assert not terms("Do you sell the emergency contraceptive pill?", "urgency")
    assert terms("My chest pain started an hour ago", "urgency")


SWELLING = LexiconSet([Lexicon(
    id="swelling", title="Swelling", description="Test swelling.", sources=["tests"], negatable=False,
    groups=[TermGroup(name="da", lang="da", terms=["hævet"])],
    exclude=["hævet prisen", "fik oplyst, hævet", "hævet * beløbet"])])


@pytest.mark.parametrize("text, swollen", [
    ("I har hævet prisen på Eliquis.", False),
    ("Min ankel er hævet, prisen på Eliquis er også steget.", True),   # two clauses: a swollen ankle
    ("Min ankel er hævet. Prisen er steget.", True),
    ("Jeg fik oplyst, hævet beløb skal betales.", False),             # the term writes its comma
    ("Jeg fik oplyst hævet beløb skal betales.", False),
    ("Banken har hævet pengene, beløbet er væk.", False),             # a '*' takes what stands there
])
def test_an_exclusion_is_one_clause_unless_its_term_writes_the_mark(text, swollen):
    assert bool(SWELLING.scan(text).matches.get("swelling")) is swollen


def test_mark_gaps():
    assert mark_gaps("hævet prisen", 2) == frozenset()
    assert mark_gaps("fik oplyst, hvilken medicin", 4) == {1}
    assert mark_gaps("recall the message *", 4) == {2}
    assert mark_gaps("a, b", 3) == {0, 1, 2}  # cannot be lined up: every gap, as before


def test_evidence_offsets_point_into_the_original_text():
    text = "Hej, jeg har fået udslæt og kløe efter Contalgin"
    scan = lexicons().scan(text)
    for matches in scan.matches.values():
        for m in matches:
            first, last = scan.folded.span(m.start, m.end)
            assert fold(text[first:last]) == scan.folded.text[m.start:m.end]
    rash = next(m for m in scan.matches["symptoms"] if m.term == "udslæt")
    assert scan.folded.original_text(rash.start, rash.end) == "udslæt"


# Tokens the rules see: decimal numbers stay one word, and a unit typed onto a number is its own word.
@pytest.mark.parametrize("text, words", [
    ("Can I take 0.5 mg?", ["can", "i", "take", "0.5", "mg"]),
    ("qvar 40mcg", ["qvar", "40", "mcg"]),
    ("Wegovy 1,7 mg", ["wegovy", "1,7", "mg"]),
    ("b12 and hba1c", ["b12", "and", "hba1c"]),
])
def test_numbers_and_units_are_split_as_words(text, words):
    tokens, _ = lexicons().tokenise(text.lower())
    assert [t.text for t in tokens] == words


@pytest.mark.parametrize("text", ["Kan jeg tage Panodil med min Marevan", "Må min søn få Ipren",
                                  "What dose should he have", "Can I take it with food"])
def test_a_sentence_opened_by_a_question_word_or_verb_is_a_question_without_a_question_mark(text):
    assert 0 in lexicons().scan(text).questions


def test_a_statement_is_no_question():
    assert not lexicons().scan("Jeg henter min Marevan i morgen").questions


def test_a_decimal_point_ends_no_sentence():
    scan = lexicons().scan("Can I take 0.5 mg of it? Yes.")
    assert {t.sentence for t in scan.tokens if t.text in ("can", "mg")} == {0}
    assert 0 in scan.questions


def test_an_abbreviations_full_stop_ends_no_sentence_but_a_plain_one_does():
    scan = lexicons().scan("En faktura på 1.249 kr. i e-Boks. Er det jer? Dr. Holm sagde ca. 3 uger. Nej. Jeg har udslæt.")
    sentence = {t.text: t.sentence for t in scan.tokens}
    assert sentence["faktura"] == sentence["boks"] != sentence["er"]
    assert sentence["holm"] == sentence["dr"] == sentence["uger"]
    assert sentence["nej"] != sentence["udslaet"]  # 'nej.' is no abbreviation: the negation stays in its sentence


def test_a_danish_two_part_abbreviation_ends_no_sentence():
    scan = lexicons().scan("Kan I overtage recepterne (bl.a. Orfiril og Furix)? Tak. Fx f.eks. Panodil.")
    sentence = {t.text: t.sentence for t in scan.tokens}
    assert sentence["recepterne"] == sentence["orfiril"] == sentence["furix"] != sentence["tak"]
    assert sentence["recepterne"] in scan.questions
    assert sentence["eks"] == sentence["panodil"]


def test_a_unit_typed_onto_a_number_is_a_dose_unit():
    assert {m.term for m in lexicons().scan("qvar 40mcg").matches.get("dose_units", ())} == {"mcg"}
