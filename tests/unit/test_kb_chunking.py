"""Knowledge-base Markdown → sections: headings, ids, hashes, long sections."""

from core.kb_chunking import (
    CHUNKER_VERSION,
    DANISH_STOPWORDS,
    GREETING_WORDS,
    MAX_SECTION_CHARS,
    Section,
    lexical_text,
    slugify,
    split_markdown,
)

DOC = """# Åbningstider

Indledning før første afsnit.

## Almindelige åbningstider
Mandag til fredag: 08:30–18:00

Lørdag: 09:00–14:00

## Helligdage 2026
Lukket på alle helligdage.

```
## not a heading inside a code fence
```
"""


def test_sections_follow_level_two_headings_and_keep_the_preamble_under_the_title():
    sections = split_markdown(DOC, "opening-hours", "da")
    assert [s.heading for s in sections] == ["Åbningstider", "Almindelige åbningstider", "Helligdage 2026"]
    assert all(s.title == "Åbningstider" and s.doc == "opening-hours" and s.language == "da" for s in sections)
    assert sections[1].text == "Mandag til fredag: 08:30–18:00\n\nLørdag: 09:00–14:00"
    assert "## not a heading" in sections[2].text


def test_ids_are_stable_slugs_with_danish_letters():
    sections = split_markdown(DOC, "opening-hours", "da")
    assert sections[1].section_id == "da/opening-hours#almindelige-åbningstider"
    assert slugify("Sygeforsikring \"danmark\"") == "sygeforsikring-danmark"


def test_content_hash_changes_with_text_heading_or_language_only():
    base = Section("d", "da", "T", "H", "text")
    assert base.content_hash == Section("d", "da", "T", "H", "text").content_hash
    changed = {Section("d", "da", "T", "H", "text!").content_hash, Section("d", "da", "T", "H2", "text").content_hash,
               Section("d", "en", "T", "H", "text").content_hash}
    assert base.content_hash not in changed and len(changed) == 3
    assert CHUNKER_VERSION


def test_embed_text_carries_title_and_heading():
    section = split_markdown(DOC, "opening-hours", "da")[2]
    assert section.embed_text.startswith("Åbningstider: Helligdage 2026\n")


def test_long_section_is_split_on_paragraphs_with_numbered_parts():
    paragraph = "Ord " * 150
    doc = "# T\n\n## Lang\n" + "\n\n".join([paragraph.strip()] * 6)
    sections = split_markdown(doc, "long", "en")
    assert len(sections) > 1
    assert all(len(s.text) <= MAX_SECTION_CHARS for s in sections)
    assert [s.part for s in sections] == list(range(1, len(sections) + 1))
    assert len({s.section_id for s in sections}) == len(sections)
    assert sections[1].section_id.endswith("~2")


def test_duplicate_headings_get_distinct_ids_and_empty_sections_are_dropped():
    doc = "# T\n\n## E-mail\nfirst\n\n## Tom\n\n## E-mail\nsecond\n"
    sections = split_markdown(doc, "contact", "en")
    assert [s.text for s in sections] == ["first", "second"]
    assert sections[0].section_id != sections[1].section_id


def test_lexical_text_drops_stopwords_and_greetings_in_both_languages():
    stop = DANISH_STOPWORDS | GREETING_WORDS | {"how", "do", "i"}
    assert lexical_text("Hej! Hvornår lukker I på lørdag? Mvh", stop) == "lukker lørdag"
    assert lexical_text("How do I park?", stop) == "park"
