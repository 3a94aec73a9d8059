"""The reply planner: action per triage, identity gate and refill outcome; drafts carry their facts and sources."""

import shutil
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from core.drafting import SITUATIONS, Drafter, ReplyContext, reply_subject, request_id
from data_contracts.models import (
    Action, Dispense, Evidence, Intent, ParsedMessage, Passage, Patient, Prescription, Priority, Reason,
    TriageResult,
)
from policy_rules.send_policy import DEFAULT_PATH as POLICY_PATH
from policy_rules.template_schema import TEMPLATES_DIR

DRAFTER = Drafter.load()
NOW = datetime(2026, 3, 10, 9, 30, tzinfo=timezone.utc)  # Tuesday 10:30 in Aarhus: before the 12:00 cut-off
JENS = Patient(patient_id="p1", first_name="Jens", last_name="Hansen", date_of_birth=date(1958, 4, 2),
               email="jens@example.com", allergies=["penicillin"])
METTE = JENS.model_copy(update={"patient_id": "p2", "first_name": "Mette"})


def rx(rx_id: str, drug: str, **extra) -> Prescription:
    fields = dict(prescription_id=rx_id, patient_id="p1", drug=drug, strength="500 mg", directions="1 twice daily",
                  quantity=100, days_supply=50, refills_authorized=3, refills_used=1, issued_on=date(2026, 1, 2),
                  expires_on=date(2027, 1, 2), prescriber="Dr. Lund")
    fields.update(extra)
    return Prescription(**fields)


METFORMIN = rx("rx-met", "Metformin")
ATORVA = rx("rx-ator", "Atorvastatin", strength="20 mg", refills_used=3)               # none left: renewal
AMLO = rx("rx-aml", "Amlodipin", strength="5 mg")                                        # dispensed recently
OXY = rx("rx-oxy", "Oxycodon", strength="5 mg", dk_dispensing_group="A§4")
PRESCRIPTIONS = (METFORMIN, ATORVA, AMLO, OXY)
DISPENSES = {
    "rx-met": (Dispense(dispense_id="d1", prescription_id="rx-met", dispensed_on=date(2026, 1, 20), quantity=100,
                        days_supply=50),),
    "rx-ator": (Dispense(dispense_id="d2", prescription_id="rx-ator", dispensed_on=date(2026, 1, 5), quantity=100,
                         days_supply=50),),
    "rx-aml": (Dispense(dispense_id="d3", prescription_id="rx-aml", dispensed_on=date(2026, 3, 1), quantity=100,
                        days_supply=50),),
    "rx-oxy": (Dispense(dispense_id="d4", prescription_id="rx-oxy", dispensed_on=date(2026, 2, 1), quantity=20,
                        days_supply=10),),
}
PARKING_EN = Passage(doc="address-and-parking", heading="Parking", language="en", score=0.91,
                     text="The nearest car park is the Bruuns Galleri multi-storey car park.")
PARKING_DA = Passage(doc="address-and-parking", heading="Parkering", language="da", score=0.90,
                     text="Den nærmeste parkering er Bruuns Galleri.")


def ctx(body: str = "Please refill my metformin.", intent: Intent = Intent.refill_request, lang: str = "en",
        escalate: bool = False, reasons=(), priority: Priority = Priority.normal, needs_reply: bool = True,
        patients=(JENS,), name: str | None = "Jens Hansen", subject: str = "Refill", passages=(),
        sender: str | None = "jens@example.com") -> ReplyContext:
    parsed = ParsedMessage(message_key="k1", message_id="<m1@example.com>", content_sha256="0", sender=sender,
                           sender_name=name, subject=subject, thread_id="t", body_text=body)
    triage = TriageResult(intent=intent, escalate=escalate, reasons=list(reasons), priority=priority, language=lang,
                          confidence=0.9, needs_reply=needs_reply,
                          evidence=[Evidence(rule_id="r-test", reason=r, matched_text="x") for r in reasons])
    single = len(patients) == 1
    return ReplyContext("case-1", parsed, triage, tuple(patients), PRESCRIPTIONS if single else (),
                        DISPENSES if single else {}, tuple(passages), NOW)


# Counts written as words ("one working day") by the count filters.
SPELLED_OUT = {"pharmacy.email_response_working_days", "pharmacy.booking_cancel_hours", "pharmacy.complaints_ack_days",
               "pharmacy.complaints_answer_days"}


def phi_free(body: str) -> bool:
    return not any(word in body for word in ("Jens", "Hansen", "Metformin", "Atorvastatin", "Oxycodon", "penicillin"))


def test_every_planner_situation_has_a_template():
    for intent, outcome in SITUATIONS:
        assert DRAFTER.catalog.lookup(intent, outcome) is not None, (intent, outcome)


def test_eligible_refill_is_confirmed_with_a_ready_date_and_a_pms_request():
    plan = DRAFTER.plan(ctx())
    assert plan.action is Action.draft_for_approval and plan.outcome == "refill_eligible"
    draft = plan.draft
    assert draft.template_id == "refill_confirmed" and draft.language == "en" and draft.subject == "Re: Refill"
    assert "Metformin 500 mg" in draft.body and "Tuesday 10 March 2026 after 15:00" in draft.body
    assert "Atorvastatin" not in draft.body and "Amlodipin" not in draft.body  # minimum necessary
    assert draft.facts["medicines[0].ready_date"] == "2026-03-10" and draft.facts["patient_first_name"] == "Jens"
    refs = {(s.kind, s.ref) for s in draft.sources}
    assert {("template", "en/refill_confirmed"), ("pms", "patient:p1"), ("pms", "prescription:rx-met"),
            ("policy", "pharmacy.yaml#pickup")} <= refs
    (request,) = plan.pms_requests
    assert request.kind == "refill" and request.ready_on == date(2026, 3, 10) and request.patient_id == "p1"
    again = DRAFTER.plan(ctx()).pms_requests[0]
    assert request.request_id == request_id("case-1", "rx-met", "refill") == again.request_id
    assert plan.patient_id == "p1" and plan.summary is None


def test_order_after_the_cut_off_is_ready_the_next_weekday():
    late = ctx()
    late = ReplyContext(**{**late.__dict__, "now": datetime(2026, 3, 13, 12, 5, tzinfo=timezone.utc)})  # Fri 13:05
    plan = DRAFTER.plan(late)
    assert plan.pms_requests[0].ready_on == date(2026, 3, 16)
    assert "Monday 16 March 2026" in plan.draft.body


def test_too_early_says_when_and_files_nothing():
    plan = DRAFTER.plan(ctx("Kan jeg få min amlodipin?", lang="da", name="Jens"))
    assert plan.outcome == "refill_too_early" and plan.draft.template_id == "refill_too_early"
    assert plan.draft.language == "da" and "onsdag den 8. april 2026" in plan.draft.body
    assert plan.draft.facts["medicines[0].earliest_date"] == "2026-04-08" and plan.pms_requests == ()
    assert ("pms", "dispense:d3") in {(s.kind, s.ref) for s in plan.draft.sources}


def test_renewal_files_a_renewal_request_for_the_prescriber():
    plan = DRAFTER.plan(ctx("Atorvastatin refill please"))
    assert plan.outcome == "renewal_needed" and plan.draft.template_id == "renewal_needed"
    assert [r.kind for r in plan.pms_requests] == ["renewal"] and plan.pms_requests[0].ready_on is None


def test_several_medicines_with_different_outcomes_get_one_mixed_reply():
    plan = DRAFTER.plan(ctx("Metformin and atorvastatin please"))
    assert plan.draft.template_id == "refill_mixed" and plan.outcome == "renewal_needed"
    assert sorted(r.kind for r in plan.pms_requests) == ["refill", "renewal"]
    assert "Metformin 500 mg" in plan.draft.body and "Atorvastatin 20 mg" in plan.draft.body


def test_controlled_medicine_escalates_with_a_summary_and_a_clinical_free_acknowledgement():
    plan = DRAFTER.plan(ctx("I need my oxycodon"))
    assert plan.action is Action.escalate and plan.outcome == "not_automatable" and plan.pms_requests == ()
    assert plan.draft.template_id == "escalation_ack" and phi_free(plan.draft.body)
    assert "refill.controlled" in plan.action_reason
    summary = plan.summary
    assert summary.refill_decisions[0].outcome == "not_automatable" and summary.patients[0].allergies == ["penicillin"]
    text = summary.render_text()
    assert "Oxycodon" in text and "penicillin" in text and "Last dispenses" in text
    by_triage = DRAFTER.plan(ctx("I need my oxycodon", escalate=True, reasons=[Reason.controlled_substance]))
    assert by_triage.outcome == "not_automatable" and by_triage.summary.refill_decisions[0].prescription_id == "rx-oxy"
    assert by_triage.action_reason.startswith("triage escalated: controlled_substance")


@pytest.mark.parametrize(
    ("patients", "name", "rule"),
    [((), "Jens Hansen", "identity.unknown_sender"), ((JENS, METTE), "Jens Hansen", "identity.shared_address"),
     ((JENS,), "Mette Hansen", "identity.name_mismatch")],
)
def test_identity_gate_failures_get_no_patient_data(patients, name, rule):
    plan = DRAFTER.plan(ctx("Please refill my metformin", patients=patients, name=name))
    assert plan.draft.template_id == "identity_confirm" and plan.action is Action.draft_for_approval
    assert phi_free(plan.draft.body) and plan.pms_requests == () and plan.patient_id is None
    assert not any(s.kind == "pms" for s in plan.draft.sources) and rule in plan.action_reason


@pytest.mark.parametrize("body", ["Please refill my tablets", "Refill everything please"])
def test_unclear_medicine_asks_which_one(body):
    plan = DRAFTER.plan(ctx(body))
    assert plan.draft.template_id == "refill_which_medicine" and plan.outcome is None and plan.pms_requests == ()
    assert "Metformin" not in plan.draft.body and "rx.none" in plan.action_reason


def test_escalated_mail_gets_an_acknowledgement_and_urgent_mail_the_emergency_numbers():
    plan = DRAFTER.plan(ctx("I took too many pills", intent=Intent.clinical_question, escalate=True,
                            reasons=[Reason.urgent], priority=Priority.urgent))
    assert plan.action is Action.escalate and plan.draft.template_id == "escalation_ack_urgent"
    assert all(n in plan.draft.body for n in ("112", "70 11 31 31", "82 12 12 12")) and phi_free(plan.draft.body)
    assert plan.summary.reasons == [Reason.urgent] and "r-test" in plan.action_reason
    assert plan.acknowledgement_auto_send is False
    calm = DRAFTER.plan(ctx("Side effects?", intent=Intent.clinical_question, escalate=True,
                            reasons=[Reason.adverse_reaction], lang="da"))
    assert calm.draft.template_id == "escalation_ack" and calm.draft.language == "da"
    assert "70 11 31 31" not in calm.draft.body


def test_escalated_mail_that_needs_no_reply_gets_no_acknowledgement():
    plan = DRAFTER.plan(ctx("auto reply", escalate=True, reasons=[Reason.suspicious], needs_reply=False))
    assert plan.action is Action.escalate and plan.draft is None and plan.summary is not None


def test_no_reply_needed_closes_without_a_draft():
    plan = DRAFTER.plan(ctx("Thanks!", intent=Intent.other, needs_reply=False))
    assert plan.action is Action.close_without_reply and plan.draft is None and plan.pms_requests == ()


def test_a_clinical_question_that_triage_did_not_escalate_still_escalates():
    plan = DRAFTER.plan(ctx("Can I take ibuprofen with this?", intent=Intent.clinical_question))
    assert plan.action is Action.escalate and "send.floor.escalate" in plan.action_reason


def test_general_question_is_answered_from_the_passage_in_the_senders_language():
    plan = DRAFTER.plan(ctx("Hvor kan jeg parkere?", intent=Intent.general_inquiry, lang="da",
                            passages=(PARKING_EN, PARKING_DA)))
    assert plan.draft.template_id == "general_answer" and "Bruuns Galleri" in plan.draft.body
    assert [s.ref for s in plan.draft.sources if s.kind == "knowledge_base"] == ["address-and-parking#Parkering"]
    assert plan.action is Action.draft_for_approval and plan.patient_id == "p1"


def test_no_passage_in_the_senders_language_gets_a_holding_reply():
    plan = DRAFTER.plan(ctx("Hvor kan jeg parkere?", intent=Intent.general_inquiry, lang="da", passages=(PARKING_EN,)))
    assert plan.draft.template_id == "holding_reply" and "Bruuns" not in plan.draft.body


@pytest.mark.parametrize(
    ("intent", "template", "must", "must_not"),
    [
        (Intent.appointment, "appointment_booking", "https://soendergade-apotek.example/booking", "is booked"),
        (Intent.order_status, "order_status_check", "will check", "is ready"),
        (Intent.prescription_transfer, "transfer_received", "Receptserver", "Metformin"),
        (Intent.complaint, "complaint_ack", "https://stpk.dk", "Metformin"),
        (Intent.lab_followup, "holding_reply", "reply to you", "Metformin"),
        (Intent.other, "holding_reply", "reply to you", "Metformin"),
        (Intent.billing, "holding_reply", "reply to you", "Metformin"),
    ],
)
def test_acknowledged_intents_never_invent_a_status(intent, template, must, must_not):
    plan = DRAFTER.plan(ctx("About my metformin order", intent=intent))
    assert plan.draft.template_id == template and must in plan.draft.body and must_not not in plan.draft.body
    assert plan.action is Action.draft_for_approval and plan.pms_requests == ()


@pytest.mark.parametrize("intent", list(Intent))
@pytest.mark.parametrize("body", ["Please refill my metformin", "Metformin and atorvastatin", "oxycodon", "hello"])
@pytest.mark.parametrize("escalate", [False, True])
def test_every_pharmacy_fact_in_a_draft_is_recorded_and_stated(intent, body, escalate):
    for lang in ("en", "da"):
        plan = DRAFTER.plan(ctx(body, intent=intent, lang=lang, escalate=escalate, passages=(PARKING_EN, PARKING_DA)))
        if plan.draft is None:
            continue
        draft = plan.draft
        assert draft.sources[0].kind == "template" and draft.sources[0].ref == f"{lang}/{draft.template_id}"
        assert all(isinstance(v, str) and v for v in draft.facts.values())
        for key, value in draft.facts.items():
            if key.startswith("pharmacy.") and key not in SPELLED_OUT:
                assert value in draft.body, (draft.template_id, key)


@pytest.mark.parametrize(
    ("original", "subject"),
    [("Refill", "Re: Refill"), ("SV: Re: Refill", "Re: Refill"), ("  ", "Fallback"), ("RE:  a   b", "Re: a b")],
)
def test_reply_subject(original, subject):
    assert reply_subject(original, "Fallback") == subject


def test_empty_subject_uses_the_template_subject():
    plan = DRAFTER.plan(ctx(subject=""))
    assert plan.draft.subject == "Your prescription is being prepared"


def write_policy(tmp_path: Path, old: str, new: str) -> Path:
    path = tmp_path / "send_policy.yaml"
    text = POLICY_PATH.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_auto_send_needs_the_policy_and_the_master_switch(tmp_path: Path):
    path = write_policy(tmp_path, "outcome: answered_from_kb, action: draft_for_approval}\n  - {id: send.complaint",
                        "outcome: answered_from_kb, action: auto_send}\n  - {id: send.complaint")
    question = ctx("Parking?", intent=Intent.general_inquiry, passages=(PARKING_EN,))
    assert Drafter.load(send_policy_path=path, auto_send=True).plan(question).action is Action.auto_send
    off = Drafter.load(send_policy_path=path).plan(question)
    assert off.action is Action.draft_for_approval and "send.master_switch_off" in off.action_reason
    no_passage = ctx("Parking?", intent=Intent.general_inquiry)
    assert Drafter.load(send_policy_path=path, auto_send=True).plan(no_passage).action is Action.draft_for_approval


def test_policy_can_send_an_intent_to_a_pharmacist(tmp_path: Path):
    path = write_policy(tmp_path, "{id: send.order-status, intent: order_status, action: draft_for_approval}",
                        "{id: send.order-status, intent: order_status, action: escalate}")
    plan = Drafter.load(send_policy_path=path).plan(ctx("Where is my order?", intent=Intent.order_status))
    assert plan.action is Action.escalate and plan.draft.template_id == "escalation_ack" and plan.summary
    assert "send.order-status" in plan.action_reason


def test_escalation_acknowledgement_can_be_switched_to_auto_send(tmp_path: Path):
    path = write_policy(tmp_path, "escalation_acknowledgement: draft_for_approval",
                        "escalation_acknowledgement: auto_send")
    urgent = ctx("help", intent=Intent.clinical_question, escalate=True, reasons=[Reason.urgent])
    assert Drafter.load(send_policy_path=path, auto_send=True).plan(urgent).acknowledgement_auto_send is True
    assert Drafter.load(send_policy_path=path).plan(urgent).acknowledgement_auto_send is False


def test_out_of_stock_medicine_is_confirmed_with_the_wholesaler_day():
    stock = ReplyContext(**{**ctx().__dict__, "prescriptions": (METFORMIN.model_copy(update={"in_stock": False}),)})
    plan = DRAFTER.plan(stock)
    assert plan.pms_requests[0].ready_on == date(2026, 3, 11)
    assert "Wednesday 11 March 2026" in plan.draft.body and "wholesaler" in plan.draft.body


def test_summary_of_an_unconfirmed_sender_flags_every_candidate():
    plan = DRAFTER.plan(ctx("Side effects?", intent=Intent.clinical_question, escalate=True,
                            reasons=[Reason.adverse_reaction], patients=(JENS, METTE)))
    assert [p.confirmed for p in plan.summary.patients] == [False, False]
    assert plan.summary.active_prescriptions == [] and "shared_address" in plan.summary.identity
    assert "NOT confirmed" in plan.summary.render_text() and plan.patient_id is None


def test_a_catalog_that_leaves_a_situation_without_a_template_fails_at_load(tmp_path: Path):
    target = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, target)
    catalog = target / "catalog.yaml"
    catalog.write_text(catalog.read_text(encoding="utf-8").replace(
        "      - {intent: any, outcome: no_kb_answer}\n", ""), encoding="utf-8")
    with pytest.raises(ValueError, match="no template for .*no_kb_answer"):
        Drafter.load(templates_dir=target)


def test_appointment_reply_quotes_the_service_passage_and_never_books():
    flu = Passage(doc="services", heading="Influenza vaccination", language="en", score=0.88,
                  text="You can book or come without booking Monday to Friday 09:00–17:00.")
    plan = DRAFTER.plan(ctx("Can I just show up for a flu shot?", intent=Intent.appointment, passages=(flu,)))
    body = plan.draft.body
    assert plan.draft.template_id == "appointment_booking" and "come without booking" in body
    assert "no booking has been made" in body
    assert ("knowledge_base", "services#Influenza vaccination") in {(s.kind, s.ref) for s in plan.draft.sources}
    bare = DRAFTER.plan(ctx("Can I just show up for a flu shot?", intent=Intent.appointment)).draft.body
    assert "Here is what we can tell you" not in bare and "\n\n\n" not in bare
