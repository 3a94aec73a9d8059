"""Every reply template renders in English and Danish with sample facts, and none renders with a fact missing."""

import shutil
from datetime import date, time
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError

from core.templating import MissingFact, TemplateRenderer, date_da, date_en
from policy_rules.pharmacy import load_pharmacy, template_values
from policy_rules.template_schema import FACTS, PHARMACY_FACTS, TEMPLATES_DIR, load_templates
from policy_rules.yaml_errors import RuleFileError

CATALOG, TEXTS = load_templates()
RENDERER = TemplateRenderer(TEXTS)
PHARMACY = load_pharmacy()
MEDICINE = {"name": "Metformin 500 mg", "ready_date": date(2026, 12, 3), "ready_from": time(15, 0),
            "from_wholesaler": True, "earliest_date": date(2026, 12, 10)}
SAMPLE_FACTS = {
    "patient_first_name": "Jens",
    "medicines": [MEDICINE],
    "ready": [MEDICINE],
    "too_early": [dict(MEDICINE, name="Amlodipin 5 mg")],
    "renewal": [dict(MEDICINE, name="Atorvastatin 20 mg")],
    "passages": [{"heading": "Parking", "text": "The nearest car park is Bruuns Galleri."}],
}
CASES = [(entry, lang) for entry in CATALOG.templates for lang in ("en", "da")]
IDS = [f"{lang}/{entry.id}" for entry, lang in CASES]


def context(entry, lang, drop: str | None = None, drop_pharmacy: str | None = None) -> dict:
    values = template_values(PHARMACY, lang)
    pharmacy = {k: values[k] for k in entry.pharmacy_facts if k != drop_pharmacy}
    facts = {k: SAMPLE_FACTS[k] for k in entry.facts if k != drop}
    return {**facts, "pharmacy": pharmacy}


def test_sample_facts_cover_the_whole_vocabulary():
    assert set(SAMPLE_FACTS) == set(FACTS)


@pytest.mark.parametrize(("entry", "lang"), CASES, ids=IDS)
def test_template_renders_with_its_declared_facts(entry, lang):
    body = RENDERER.render(entry.id, lang, context(entry, lang), required=entry.facts)
    assert "{{" not in body and "{%" not in body and body.endswith("\n") and "\n\n\n" not in body
    assert PHARMACY.name.get(lang) in body and PHARMACY.phone in body  # the signature
    for fact in entry.facts:
        if fact == "patient_first_name":
            assert "Jens" in body
        if fact in ("medicines", "ready"):
            assert "Metformin 500 mg" in body
        if fact == "passages":
            assert "Bruuns Galleri" in body
    fmt = date_da if lang == "da" else date_en
    if entry.id in ("refill_confirmed", "refill_mixed"):
        assert fmt(date(2026, 12, 3)) in body  # the ready date
    if entry.id == "refill_too_early":
        assert fmt(date(2026, 12, 10)) in body and fmt(date(2026, 12, 3)) not in body
    other = "Kind regards" if lang == "da" else "Venlig hilsen"
    assert other not in body


@pytest.mark.parametrize(("entry", "lang"), CASES, ids=IDS)
def test_template_uses_exactly_what_it_declares(entry, lang):
    used = RENDERER.variables(f"{lang}/{entry.id}.j2")
    assert used - {"pharmacy"} == set(entry.facts)
    assert set(entry.pharmacy_facts) <= PHARMACY_FACTS


@pytest.mark.parametrize(("entry", "lang"), CASES, ids=IDS)
def test_no_template_renders_with_a_missing_fact(entry, lang):
    for fact in entry.facts:
        with pytest.raises(MissingFact):
            RENDERER.render(entry.id, lang, context(entry, lang, drop=fact), required=entry.facts)
        # Even a caller that forgets `required` cannot get a blank where the fact was.
        with pytest.raises(MissingFact):
            RENDERER.render(entry.id, lang, context(entry, lang, drop=fact))


@pytest.mark.parametrize(("entry", "lang"), CASES, ids=IDS)
def test_no_template_renders_with_a_missing_pharmacy_fact(entry, lang):
    for name in entry.pharmacy_facts:
        with pytest.raises(MissingFact):
            RENDERER.render(entry.id, lang, context(entry, lang, drop_pharmacy=name), required=entry.facts)


def test_urgent_acknowledgement_gives_the_emergency_numbers_in_both_languages():
    entry = CATALOG.by_id()["escalation_ack_urgent"]
    for lang in ("en", "da"):
        body = RENDERER.render(entry.id, lang, context(entry, lang))
        assert "112" in body and "70 11 31 31" in body and "82 12 12 12" in body


def test_dates_are_written_the_way_each_language_does():
    assert date_en(date(2026, 12, 3)) == "Thursday 3 December 2026"
    assert date_da(date(2026, 12, 3)) == "torsdag den 3. december 2026"


def test_the_sandbox_blocks_python_internals_and_mutation():
    renderer = TemplateRenderer({"en/evil.j2": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
                                 "en/mutate.j2": "{{ medicines.append(1) }}"})
    with pytest.raises(SecurityError):
        renderer.render("evil", "en", {})
    with pytest.raises(SecurityError):
        renderer.render("mutate", "en", {"medicines": []})


@pytest.fixture()
def template_copy(tmp_path: Path) -> Path:
    target = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, target)
    return target


def test_catalog_rejects_an_unknown_fact_with_its_line(template_copy: Path):
    catalog = template_copy / "catalog.yaml"
    text = catalog.read_text(encoding="utf-8")
    catalog.write_text(text.replace("facts: [patient_first_name]", "facts: [patient_cpr]", 1), encoding="utf-8")
    line = next(i for i, row in enumerate(catalog.read_text().splitlines(), 1) if "patient_cpr" in row)
    with pytest.raises(RuleFileError) as err:
        load_templates(template_copy)
    assert err.value.line == line and "facts" in err.value.field and "patient_cpr" in str(err.value)


def test_catalog_rejects_an_unknown_key(template_copy: Path):
    catalog = template_copy / "catalog.yaml"
    catalog.write_text(catalog.read_text(encoding="utf-8").replace("    description:", "    descripton:", 1),
                       encoding="utf-8")
    with pytest.raises(RuleFileError, match="templates\\[0\\]"):
        load_templates(template_copy)


def test_every_template_needs_both_languages(template_copy: Path):
    (template_copy / "da" / "holding_reply.j2").unlink()
    with pytest.raises(RuleFileError, match="da/holding_reply.j2"):
        load_templates(template_copy)


def test_a_template_file_not_in_the_catalog_is_an_error(template_copy: Path):
    (template_copy / "en" / "stray.j2").write_text("Hello", encoding="utf-8")
    with pytest.raises(RuleFileError, match="stray"):
        load_templates(template_copy)
