"""The identity gate's verdict reaches triage as a status only, and a name mismatch on patient data is suspicious."""

from dataclasses import fields
from datetime import date

import pytest

from core.identity import IdentityStatus, check_identity
from core.pipeline import pms_facts
from data_contracts.models import ParsedMessage, Patient, Prescription, Reason
from triage_support import message as triage_message
from triage_support import triager

JENS = Patient(patient_id="p1", first_name="Jens Peter", last_name="Hansen", date_of_birth=date(1958, 4, 2),
               email="jens@example.com")
METTE = Patient(patient_id="p3", first_name="Mette", last_name="Hansen", date_of_birth=date(1961, 9, 9),
                email="jens@example.com")
METFORMIN = Prescription(prescription_id="rx1", patient_id="p1", drug="Metformin", strength="500 mg",
                         directions="1 daily", quantity=30, days_supply=30, refills_authorized=3, refills_used=0,
                         issued_on=date(2026, 1, 1), expires_on=date(2027, 1, 1), prescriber="Dr. Lund")
REFILL = "Hej\nKan I gøre min Metformin klar til fredag?\n\nMvh {name}"


def parsed(body: str, sender: str | None = "jens@example.com", name: str | None = None) -> ParsedMessage:
    return ParsedMessage(message_key="k", message_id=None, content_sha256="0", sender=sender, sender_name=name,
                         subject="Recept", thread_id="t", body_text=body)


@pytest.mark.parametrize(("msg", "patients", "status", "known"), [
    (parsed(REFILL.format(name="Jens")), [JENS], IdentityStatus.verified, True),
    (parsed(REFILL.format(name="Mette")), [JENS], IdentityStatus.name_mismatch, True),
    (parsed("Please refill my Metformin.", name="Mette Hansen"), [JENS], IdentityStatus.name_mismatch, True),
    (parsed(REFILL.format(name="Mette")), [], IdentityStatus.unknown_sender, False),
    (parsed(REFILL.format(name="Jens")), [JENS, METTE], IdentityStatus.shared_address, True),
    (parsed("Kan I gøre min mors medicin klar?"), [JENS], IdentityStatus.third_party, True),
    (parsed(REFILL.format(name="Jens"), sender=None), [], IdentityStatus.no_sender, False),
])
def test_pms_facts_carry_the_identity_status(msg, patients, status, known):
    facts = pms_facts(check_identity(msg, patients), patients, [METFORMIN] if len(patients) == 1 else [])
    assert facts.identity is status and facts.known_patient is known
    assert facts.drugs == (("Metformin",) if len(patients) == 1 else ())


def test_pms_facts_hold_no_names():
    facts = pms_facts(check_identity(parsed(REFILL.format(name="Mette")), [JENS]), [JENS], [METFORMIN])
    values = " ".join(str(getattr(facts, f.name)) for f in fields(facts))
    assert not any(name in values for name in ("Jens", "Mette", "Hansen", "jens@example.com"))


def test_name_mismatch_on_a_refill_is_suspicious_with_the_status_as_evidence():
    facts = pms_facts(check_identity(parsed(REFILL.format(name="Mette")), [JENS]), [JENS], [METFORMIN])
    result = triager().triage(triage_message(REFILL.format(name="Mette"), "Recept", pms=facts))
    assert Reason.suspicious in result.reasons and result.escalate
    evidence = [e for e in result.evidence if e.rule_id == "identity-mismatch"]
    assert ("pms", "pms.identity=name_mismatch") in {(e.field, e.matched_text) for e in evidence}
    assert not any(name in e.matched_text for e in result.evidence for name in ("Jens", "Hansen"))


@pytest.mark.parametrize("name", ["Jens", "Jens Peter Hansen"])
def test_the_patients_own_refill_is_not_suspicious(name):
    facts = pms_facts(check_identity(parsed(REFILL.format(name=name)), [JENS]), [JENS], [METFORMIN])
    result = triager().triage(triage_message(REFILL.format(name=name), "Recept", pms=facts))
    assert Reason.suspicious not in result.reasons
