"""The demo pharmacy and mailbox: valid, reproducible from their scripts, and covering what the demo promises."""

import email
import email.policy
import json
import runpy
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from email.utils import parseaddr
from pathlib import Path

import pytest

from core.refill import Thresholds, decide_refill
from data_contracts.models import Intent, PharmacyExport, Reason

DEMO = Path(__file__).resolve().parents[2] / "datasets" / "demo"
TODAY = date(2026, 11, 25)
DEMO_NOW = datetime(2026, 11, 25, 9, 0, tzinfo=timezone(timedelta(hours=1)))
PHARMACY_ADDRESS = "apotek@soendergade-apotek.example"


@pytest.fixture(scope="module")
def pharmacy() -> PharmacyExport:
    return PharmacyExport.model_validate_json((DEMO / "pharmacy.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def labels() -> dict[str, dict]:
    lines = (DEMO / "mailbox_labels.jsonl").read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in lines]
    assert len({e["file"] for e in entries}) == len(entries), "a file is labelled twice"
    return {e["file"]: e for e in entries}


@pytest.fixture(scope="module")
def mails() -> dict[str, email.message.EmailMessage]:
    return {
        path.name: email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted((DEMO / "mailbox").iterdir())
    }


# --- reproducible from the scripts ------------------------------------------------------------------


def test_pharmacy_json_is_what_the_generator_writes():
    generator = runpy.run_path(str(DEMO / "generate_pharmacy.py"))
    assert (DEMO / "pharmacy.json").read_text(encoding="utf-8") == generator["render"](), (
        "run: python datasets/demo/generate_pharmacy.py"
    )


def test_mailbox_and_labels_are_what_the_builder_writes():
    files, label_text = runpy.run_path(str(DEMO / "build_mailbox.py"))["render"]()
    on_disk = {p.name: p.read_bytes() for p in (DEMO / "mailbox").iterdir()}
    assert on_disk == files, "run: python datasets/demo/build_mailbox.py"
    assert (DEMO / "mailbox_labels.jsonl").read_text(encoding="utf-8") == label_text


# --- the pharmacy -----------------------------------------------------------------------------------


def test_pharmacy_has_the_promised_shape(pharmacy):
    assert pharmacy.pharmacy == "Søndergade Apotek"
    assert 25 <= len(pharmacy.patients) <= 35 and 70 <= len(pharmacy.prescriptions) <= 90
    by_email = Counter(p.email for p in pharmacy.patients if p.email)
    assert [address for address, n in by_email.items() if n > 1] == ["familien.andersen@example.dk"]
    assert by_email["familien.andersen@example.dk"] == 2
    assert sum(p.email is None for p in pharmacy.patients) == 1
    languages = Counter(p.preferred_language for p in pharmacy.patients)
    assert languages["da"] > languages["en"] >= 3
    for patient in pharmacy.patients:
        domain = (patient.email or "@example.dk").rpartition("@")[2]
        assert domain == ("example.com" if patient.preferred_language == "en" else "example.dk"), patient.patient_id


def test_prescriptions_cover_controlled_groups_and_blocked_cases(pharmacy):
    rx = pharmacy.prescriptions
    assert {p.controlled_schedule for p in rx} == {None, "II", "IV", "V"}
    assert all(p.dk_dispensing_group == "A§4" for p in rx if p.controlled_schedule == "II")
    assert all(p.dk_dispensing_group in ("A", "B", "HA") for p in rx if p.controlled_schedule != "II")
    assert any(p.status == "expired" and p.expires_on < TODAY for p in rx)
    assert all(p.expires_on >= TODAY for p in rx if p.status == "active")
    assert any(p.status == "active" and p.refills_used == p.refills_authorized for p in rx)
    assert [p.prescription_id for p in rx if p.prior_auth_status == "missing"] == ["rx-0008"]
    assert [p.prescription_id for p in rx if not p.in_stock] == ["rx-0009"]


def test_dispenses_cover_about_a_year_and_end_just_before_the_demo_day(pharmacy):
    issued = {p.prescription_id: p.issued_on for p in pharmacy.prescriptions}
    dates = [d.dispensed_on for d in pharmacy.dispenses]
    assert TODAY - timedelta(days=366) <= min(dates) and TODAY - timedelta(days=7) <= max(dates) < TODAY
    assert all(d.dispensed_on >= issued[d.prescription_id] for d in pharmacy.dispenses)


# --- the mailbox ------------------------------------------------------------------------------------


def test_every_mail_is_labelled_with_known_values(labels, mails):
    assert set(mails) == set(labels)
    for name, label in labels.items():
        assert label["intent"] in set(Intent), name
        assert set(label["reasons"]) <= set(Reason) and set(label["pms_reasons"]) <= set(label["reasons"]), name
        assert label["escalate"] == bool(label["reasons"]), name
        assert label["language"] in ("da", "en"), name


def test_mailbox_covers_every_intent_and_reason_kind(labels):
    assert {label["intent"] for label in labels.values()} == set(Intent)
    reasons = {r for label in labels.values() for r in label["reasons"]}
    assert {"controlled_substance", "early_refill_controlled", "adverse_reaction", "allergy", "unclear_dosage",
            "urgent", "clinical_judgment", "new_symptoms", "suspicious", "missing_prior_authorization"} <= reasons
    assert sum(label["language"] == "da" for label in labels.values()) >= 15
    assert sum(label["language"] == "en" for label in labels.values()) >= 15


def test_mails_have_proper_headers_and_are_dated_before_the_demo_sweep(mails):
    for name, msg in mails.items():
        assert msg["Message-ID"] and parseaddr(str(msg["From"]))[1], name
        assert parseaddr(str(msg["To"]))[1] == PHARMACY_ADDRESS, name
        sent = msg["Date"].datetime
        assert datetime(2026, 11, 1, tzinfo=timezone.utc) <= sent < DEMO_NOW, name


def test_mailbox_has_the_awkward_formats_the_demo_needs(mails):
    def first(prefix: str) -> email.message.EmailMessage:
        return next(msg for name, msg in mails.items() if name.startswith(prefix))

    assert first("34_").get_content_type() == "multipart/report"
    assert first("35_")["List-Unsubscribe"]
    assert first("33_")["Auto-Submitted"] == "auto-replied"
    assert first("16_").get_content_type() == "text/html"
    latin1 = first("17_")
    assert latin1.get_content_charset() == "iso-8859-1" and latin1["Content-Transfer-Encoding"] == "quoted-printable"
    assert "møde" in str(latin1["Subject"]) and "møde" in latin1.get_content()
    attachment = next(first("23_").iter_attachments())
    assert attachment.get_content_type() == "application/pdf" and attachment.get_content().startswith(b"%PDF")
    thread = first("15_")
    assert thread["In-Reply-To"] and thread["References"] and "skrev Søndergade Apotek" in thread.get_content()
    assert "Videresendt" in first("14_").get_content()


def test_labelled_patients_match_the_senders_addresses(labels, mails, pharmacy):
    by_email: dict[str, list[str]] = {}
    for patient in pharmacy.patients:
        if patient.email:
            by_email.setdefault(patient.email.lower(), []).append(patient.patient_id)
    for name, label in labels.items():
        sender = parseaddr(str(mails[name]["From"]))[1].lower()
        assert sorted(label["patients"]) == sorted(by_email.get(sender, [])), name
    assert sum(bool(label["patients"]) for label in labels.values()) >= 10
    assert sum(not label["patients"] for label in labels.values()) >= 10


def test_refill_outcomes_in_the_labels_hold_on_the_demo_day(labels, pharmacy):
    rx = {p.prescription_id: p for p in pharmacy.prescriptions}
    dispenses: dict[str, list] = {}
    for dispense in sorted(pharmacy.dispenses, key=lambda d: d.dispensed_on, reverse=True):
        dispenses.setdefault(dispense.prescription_id, []).append(dispense)
    checked = Counter()
    for name, label in labels.items():
        for item in label["refill"]:
            prescription = rx[item["prescription_id"]]
            assert prescription.patient_id in label["patients"], name
            decision = decide_refill(prescription, dispenses.get(prescription.prescription_id, []), Thresholds(), TODAY)
            assert decision.outcome.value == item["outcome"], (name, decision.rule_ids)
            checked[item["outcome"]] += 1
    assert set(checked) == {"refill_eligible", "refill_too_early", "renewal_needed", "not_automatable"}
