"""Grounding verifier: every medicine, strength, quantity, date, time, price, phone, URL and e-mail is checked."""

import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from core.drafting import Drafter, ReplyContext
from core.grounding import extract_claims, load_lexicon, missing_claims, verify
from core.parsing import parse_message
from data_contracts.models import Passage, PharmacyExport, TriageResult

FACTS = {
    "patient_first_name": "Anna",
    "medicines[0].name": "Metformin 500 mg",
    "medicines[0].ready_date": "2026-12-03",
    "medicines[0].ready_from": "15:00",
    "pharmacy.phone": "+45 86 12 34 56",
    "pharmacy.website": "https://soendergade-apotek.example",
    "pharmacy.email": "apotek@soendergade-apotek.example",
    "pharmacy.hold_days": "14",
    "delivery_price": "49.00",
}
PASSAGE = Passage(doc="delivery-and-pickup", heading="Sending medicine by post", language="en", score=0.9,
                  text="Sending by post costs 49 kr. and is free over 500 kr. Book at "
                       "https://soendergade-apotek.example/booking. Ready within 2 working days.")


def kinds(text: str, language: str | None = None) -> list[tuple[str, str]]:
    return [(c.kind, c.value) for c in extract_claims(text, language)]


def unsupported(text: str, language: str = "da", **kwargs) -> list[tuple[str, str]]:
    verdict = verify(text, FACTS, [PASSAGE], language=language, **kwargs)
    assert verdict.ok is (not verdict.unsupported)
    return [(c.kind, c.text) for c in verdict.unsupported]


def test_supported_template_draft_passes():
    draft = ("Kære Anna\n\n- Metformin 500 mg: klar til afhentning torsdag den 3. december 2026 efter kl. 15:00\n"
             "Vi gemmer din medicin i 14 dage. Ring på +45 86 12 34 56 eller skriv til "
             "apotek@soendergade-apotek.example. https://soendergade-apotek.example")
    verdict = verify(draft, FACTS, [PASSAGE], language="da")
    assert verdict.ok, verdict.unsupported
    assert {c.kind for c in verdict.claims} >= {"medicine", "strength", "date", "time", "quantity", "phone",
                                                "email", "url"}


@pytest.mark.parametrize("text", ["3. december", "den 3. dec.", "2026-12-03", "3/12", "03.12.2026",
                                  "torsdag den 3. december", "3 December 2026", "December 3rd", "Thursday, 3 December"])
def test_reformatted_dates_are_the_same_fact(text):
    assert unsupported(f"Klar {text}.", language="da" if "/" in text else "en") == []


@pytest.mark.parametrize("text", ["4. december", "2026-12-04", "3. november", "3 December 2027", "4/12"])
def test_a_different_date_is_unsupported(text):
    assert [k for k, _ in unsupported(f"Klar {text}.")] == ["date"]


def test_a_weekday_that_does_not_match_the_date_is_unsupported():
    assert [k for k, _ in unsupported("Klar fredag den 3. december 2026.")] == ["date"]
    assert [k for k, _ in unsupported("Klar fredag.")] == ["weekday"]
    assert unsupported("Klar torsdag.") == []  # 2026-12-03 is a Thursday


def test_ambiguous_slash_dates_read_day_first_in_danish_and_either_way_in_english():
    assert kinds("12/3", "da") == [("date", "--03-12")]
    assert unsupported("Ready 12/3.", language="en") == []
    assert [k for k, _ in unsupported("Klar 12/3.", language="da")] == ["date"]


@pytest.mark.parametrize("text", ["49 kr.", "49,00 DKK", "DKK 49", "kr. 49,00", "49,-", "49.00 kr"])
def test_reformatted_prices_are_the_same_fact(text):
    assert unsupported(f"Forsendelse koster {text}") == []


def test_price_from_a_fact_key_and_an_invented_price():
    assert verify("Levering 49 kroner", {"delivery_price": "49.00"}).ok
    assert not verify("Levering 49 kr.", {"hold_days": "49"}).ok  # a bare number is a price only by its key
    assert [k for k, _ in unsupported("Rabat: 39 kr. i dag")] == ["price"]
    assert kinds("1.299,50 kr og $12.50") == [("price", "DKK 1299.50"), ("price", "USD 12.50")]


@pytest.mark.parametrize("text", ["+45 86 12 34 56", "86123456", "86 12 34 56", "0045 86123456", "8612 3456"])
def test_reformatted_phone_numbers_are_the_same_fact(text):
    assert unsupported(f"Ring på {text}.") == []


def test_an_invented_phone_number_and_emergency_numbers():
    assert [k for k, _ in unsupported("Ring på 86 12 34 57.")] == ["phone"]
    assert [k for k, _ in unsupported("Ring 112 nu.")] == ["phone"]
    assert verify("Ring 112 nu.", FACTS, template_text="ring {{ n }} eller 112").ok
    assert kinds("112 tabletter") == [("quantity", "112 tablet")]


def test_made_up_url_and_email_are_unsupported_but_the_site_root_is_fine():
    assert [k for k, _ in unsupported("Se https://soendergade-apotek.example/rabat")] == ["url"]
    assert [k for k, _ in unsupported("Se www.cheap-meds.example.com/offer")] == ["url"]
    assert unsupported("Book på soendergade-apotek.example/booking/ eller https://www.soendergade-apotek.example.") == []
    assert [k for k, _ in unsupported("Skriv til farmaceut@soendergade-apotek.example")] == ["email"]


def test_times_in_many_spellings():
    assert kinds("kl. 15", "da") == [("time", "15:00")]
    assert kinds("kl 9-17") == [("time", "09:00"), ("time", "17:00")]
    assert kinds("08:30–18:00 or 3 pm") == [("time", "08:30"), ("time", "18:00"), ("time", "15:00")]
    assert unsupported("Klar efter kl. 15.00") == []
    assert [k for k, _ in unsupported("Klar efter kl. 16")] == ["time"]


def test_medicines_strengths_and_quantities():
    assert [k for k, _ in unsupported("Din Ibuprofen 400 mg er klar.")] == ["medicine", "strength"]
    assert [k for k, _ in unsupported("Metformin 850 mg")] == ["strength"]
    assert [k for k, _ in unsupported("Vi har sendt 30 tabletter.")] == ["quantity"]
    assert unsupported("Klar inden for 2 hverdage.") == []  # the passage says '2 working days'
    assert kinds("20 mg/ml og 0,5 mg og 100 mikrogram") == [("strength", "20 mg/ml"), ("strength", "0.5 mg"),
                                                              ("strength", "100 mcg")]


def test_unknown_medicine_caught_by_its_stem_but_not_april():
    assert [c.kind for c in extract_claims("Prøv candesartan i april")] == ["medicine"]
    assert "metformin" in load_lexicon().names


def test_medicine_named_in_facts_joins_the_lexicon():
    facts = {"medicines[0].name": "Zyxelon 5 mg"}
    assert verify("Zyxelon 5 mg er klar", facts).ok
    assert [c.kind for c in extract_claims("Zyxelon 5 mg", drug_words=["Zyxelon"])] == ["medicine", "strength"]


def test_passage_and_template_text_support_their_own_facts():
    assert unsupported("Forsendelse koster 49 kr. og er gratis over 500 kr.") == []
    assert not verify("Vi svarer inden for 3 timer.", FACTS).ok
    assert verify("Vi svarer inden for 3 timer.", FACTS, template_text="inden for 3 timer").ok


def test_missing_claims_finds_dropped_facts():
    required = extract_claims("Metformin 500 mg klar 3. december kl. 15:00", "da")
    assert missing_claims(required, extract_claims("Metformin 500 mg ready on 3 December 2026 at 15:00", "en")) == []
    dropped = missing_claims(required, extract_claims("Your Metformin 500 mg is ready soon", "en"))
    assert sorted(c.kind for c in dropped) == ["date", "time"]


def test_audit_safe_kinds_have_no_values():
    verdict = verify("Ibuprofen 400 mg klar 9. maj", FACTS)
    assert verdict.unsupported_kinds == ["date", "medicine", "strength"]


def test_every_template_draft_for_the_demo_mailbox_is_grounded():
    """The planner's drafts for the labelled demo mailbox state nothing their facts and templates do not."""
    demo = Path(__file__).resolve().parents[2] / "datasets" / "demo"
    drafter = Drafter.load()
    export = PharmacyExport.model_validate_json((demo / "pharmacy.json").read_text(encoding="utf-8"))
    patients, dispenses = defaultdict(list), defaultdict(list)
    for patient in export.patients:
        patients[str(patient.email).lower()].append(patient)
    for d in sorted(export.dispenses, key=lambda d: d.dispensed_on, reverse=True):
        dispenses[d.prescription_id].append(d)
    now = datetime.fromisoformat("2026-11-25T09:00:00+01:00")
    checked, claims = 0, 0
    for line in (demo / "mailbox_labels.jsonl").read_text(encoding="utf-8").splitlines():
        label = json.loads(line)
        parsed = parse_message((demo / "mailbox" / label["file"]).read_bytes()).message
        triage = TriageResult(intent=label["intent"], escalate=label["escalate"], reasons=label["reasons"],
                              language=label["language"], needs_reply=label["needs_reply"], confidence=0.9)
        senders = tuple(patients.get((parsed.sender or "").lower(), ()))
        rxs = tuple(r for r in export.prescriptions if len(senders) == 1 and r.patient_id == senders[0].patient_id)
        history = {r.prescription_id: tuple(dispenses[r.prescription_id]) for r in rxs}
        draft = drafter.plan(ReplyContext("case-x", parsed, triage, senders, rxs, history, (), now)).draft
        if draft is None:
            continue
        templates = [text for name, text in drafter.renderer._texts.items()
                     if name.startswith(f"{draft.language}/") and (name.endswith(f"/{draft.template_id}.j2")
                                                                   or "/_" in name)]
        verdict = verify(draft.body, draft.facts, (), templates, language=draft.language)
        assert verdict.ok, (label["file"], [(c.kind, c.text) for c in verdict.unsupported])
        checked, claims = checked + 1, claims + len(verdict.claims)
    assert checked >= 20 and claims >= 100
