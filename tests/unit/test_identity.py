"""Identity gate (exactly one patient, name consistent, not for someone else) and prescription matching."""

from datetime import date

import pytest

from core.identity import IdentityStatus, check_identity, claimed_names, name_matches
from core.rx_matching import RxMatchStatus, drug_key, match_prescriptions
from data_contracts.models import ParsedMessage, Patient, Prescription

JENS = Patient(patient_id="p1", first_name="Jens Peter", last_name="Hansen", date_of_birth=date(1958, 4, 2),
               email="jens@example.com")
SOREN = Patient(patient_id="p2", first_name="Søren", last_name="Ærø-Østergård", date_of_birth=date(1970, 1, 1),
                email="soren@example.com")
METTE = Patient(patient_id="p3", first_name="Mette", last_name="Hansen", date_of_birth=date(1961, 9, 9),
                email="jens@example.com")


def message(body: str = "Please refill my medicine.", sender: str | None = "jens@example.com",
            name: str | None = None, signature: str = "", subject: str = "Refill") -> ParsedMessage:
    return ParsedMessage(message_key="k", message_id=None, content_sha256="0", sender=sender, sender_name=name,
                         subject=subject, thread_id="t", body_text=body, signature=signature)


def rx(rx_id: str, drug: str, strength: str = "10 mg", status: str = "active") -> Prescription:
    return Prescription(prescription_id=rx_id, patient_id="p1", drug=drug, strength=strength, directions="1 daily",
                        quantity=30, days_supply=30, refills_authorized=3, refills_used=0,
                        issued_on=date(2026, 1, 1), expires_on=date(2027, 1, 1), prescriber="Dr. Lund",
                        status=status)


# --- identity gate ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msg", "patients", "status"),
    [
        (message(sender=None), [JENS], IdentityStatus.no_sender),
        (message(), [], IdentityStatus.unknown_sender),
        (message(), [JENS, METTE], IdentityStatus.shared_address),
        (message(name="Jens Hansen"), [JENS], IdentityStatus.verified),
        (message(name="Hansen, Jens Peter"), [JENS], IdentityStatus.verified),
        (message(name="J. P. Hansen"), [JENS], IdentityStatus.verified),
        (message(name="Jens"), [JENS], IdentityStatus.verified),
        (message(name="jens.hansen"), [JENS], IdentityStatus.verified),            # not a name: ignored
        (message(name="Mette Hansen"), [JENS], IdentityStatus.name_mismatch),
        (message(name="Familien Hansen"), [JENS], IdentityStatus.name_mismatch),
        (message("Hi,\nplease refill.\n\nBest regards,\nJens"), [JENS], IdentityStatus.verified),
        (message("Hej\nKan I sende den?\n\nMvh Mette"), [JENS], IdentityStatus.name_mismatch),
        (message("Hej\nKan I sende den?\n\nVenlig hilsen\nMette Hansen"), [JENS], IdentityStatus.name_mismatch),
        (message("My name is Peter Jensen and I need my pills."), [JENS], IdentityStatus.name_mismatch),
        (message(signature="Mette Hansen\nTlf 12 34 56 78"), [JENS], IdentityStatus.name_mismatch),
        (message(signature="Sent from my iPhone"), [JENS], IdentityStatus.verified),
        (message(signature="Mange hilsner\nJens Hansen"), [JENS], IdentityStatus.verified),
        (message(signature="Mange hilsner\nMette Hansen"), [JENS], IdentityStatus.name_mismatch),
        (message("Please refill this for my mother, she is out."), [JENS], IdentityStatus.third_party),
        (message("Kan I gøre min mors medicin klar?"), [JENS], IdentityStatus.third_party),
        (message("I write on behalf of Mrs Hansen."), [JENS], IdentityStatus.third_party),
        (message("Jeg skriver på vegne af min far."), [JENS], IdentityStatus.third_party),
        (message("Thank you for your help!"), [JENS], IdentityStatus.verified),
        (message("Hi, this is urgent. This is a question about my pills."), [JENS], IdentityStatus.verified),
        (message("Hi, this is Mette, Jens's wife."), [JENS], IdentityStatus.name_mismatch),
        (message(sender="soren@example.com", name="Soren Aero-Ostergard"), [SOREN], IdentityStatus.verified),
        (message(sender="soren@example.com", name="Søren Ærø-Østergård"), [SOREN], IdentityStatus.verified),
    ],
)
def test_identity_gate(msg, patients, status):
    verdict = check_identity(msg, patients)
    assert verdict.status is status
    assert verdict.ok is (status is IdentityStatus.verified)
    assert (verdict.patient is not None) is verdict.ok
    assert verdict.rule_id == f"identity.{status.value}"


def test_gate_detail_never_names_the_patient():
    for patients in ([], [JENS, METTE], [JENS]):
        verdict = check_identity(message(name="Mette Hansen"), patients)
        assert "Jens" not in verdict.detail and "Mette" not in verdict.detail and "Hansen" not in verdict.detail


def test_claimed_names_come_from_display_name_sign_off_and_introduction():
    msg = message("This is Jens Hansen.\nRefill please.\n\nKind regards,\nJens", name="Jens Hansen")
    assert claimed_names(msg) == ["Jens Hansen", "Jens"]


def test_name_matching_folds_danish_letters_and_accepts_initials():
    assert name_matches("SOEREN", SOREN) and name_matches("Aase", SOREN.model_copy(update={"first_name": "Åse"}))
    assert not name_matches("Sara", SOREN)
    assert name_matches("Soren", SOREN) and name_matches("S. Østergård", SOREN.model_copy(
        update={"last_name": "Østergård"}))


# --- which prescription -------------------------------------------------------------------------------


METFORMIN = rx("rx-met", "Metformin", "500 mg")
METFORMIN_HIGH = rx("rx-met2", "Metformin", "850 mg")
AMLODIPINE = rx("rx-aml", "Amlodipine", "5 mg")
GLARGINE = rx("rx-gla", "Insulin glargine", "100 IE/ml")
ASPART = rx("rx-asp", "Insulin aspart", "100 IE/ml")
OLD_ATORVA = rx("rx-ator-old", "Atorvastatin", "20 mg", status="expired")
ATORVA = rx("rx-ator", "Atorvastatin", "20 mg")


@pytest.mark.parametrize(
    ("text", "pool", "status", "ids"),
    [
        ("Can I have my metformin please", [METFORMIN, AMLODIPINE], "matched", ["rx-met"]),
        ("Kan I gøre metforminen klar?", [METFORMIN, AMLODIPINE], "matched", ["rx-met"]),
        ("My Glucophage is running out", [METFORMIN, AMLODIPINE], "matched", ["rx-met"]),
        ("Jeg mangler amlodipin", [METFORMIN, AMLODIPINE], "matched", ["rx-aml"]),
        ("AMLODIPINE and Metformin please", [METFORMIN, AMLODIPINE], "matched", ["rx-aml", "rx-met"]),
        ("Please refill my blood pressure pills", [METFORMIN, AMLODIPINE], "none", []),
        ("Refill metformin please", [METFORMIN, METFORMIN_HIGH], "ambiguous", ["rx-met", "rx-met2"]),
        ("Refill metformin 850mg please", [METFORMIN, METFORMIN_HIGH], "matched", ["rx-met2"]),
        ("Refill metformin 500 mg please", [METFORMIN, METFORMIN_HIGH], "matched", ["rx-met"]),
        ("I need insulin", [GLARGINE, ASPART], "ambiguous", ["rx-gla", "rx-asp"]),
        ("I need my insulin glargine", [GLARGINE, ASPART], "matched", ["rx-gla"]),
        ("I need my Lantus", [GLARGINE, ASPART], "matched", ["rx-gla"]),
        ("No aspartame in it?", [GLARGINE, ASPART], "none", []),
        ("atorvastatin please", [OLD_ATORVA, ATORVA], "matched", ["rx-ator"]),
        ("atorvastatin please", [OLD_ATORVA], "matched", ["rx-ator-old"]),
        ("Metformin", [], "none", []),
    ],
)
def test_match_prescriptions(text, pool, status, ids, aliases={"Glucophage": "metformin", "Lantus": "insulin glargin"}):
    found = match_prescriptions(text, pool, aliases)
    assert found.status is RxMatchStatus(status)
    assert [p.prescription_id for p in found.prescriptions] == ids


def test_drug_keys_meet_across_english_and_danish_spellings():
    pairs = [("morphine", "morfin"), ("methylphenidate", "methylphenidat"), ("oxycodone", "oxycodon"),
             ("furosemide", "furosemid"), ("levothyroxine", "levothyroxin"), ("Søren", "soren")]
    for english, danish in pairs:
        assert drug_key(english) == drug_key(danish)
    assert drug_key("metformin") != drug_key("metoprolol")
