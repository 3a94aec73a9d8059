"""Pure steps of a sweep: from a parsed message, its triage and its reply plan to stored records."""

from datetime import datetime
from typing import Sequence

from core import drafting
from core.drafting import ReplyPlan
from core.identity import IdentityCheck
from core.ids import case_id as make_case_id
from core.ids import outbound_id
from core.kb_question import question_text
from core.parsing import ParseOutcome
from core.records import StoredItem
from core.triage.engine import PmsFacts, TriageInput
from data_contracts.models import (
    Action,
    AuditEvent,
    Case,
    OutboundMessage,
    ParsedMessage,
    Patient,
    PmsRequest,
    Prescription,
    QuarantineRecord,
    TriageResult,
)

ACTOR = "rxinbox.sweep"

# Retrieve exactly where a reply can quote a passage: embedding a query is the sweep's costliest step.
KB_INTENTS = drafting.KB_INTENTS | drafting.KB_OPTIONAL_INTENTS


def pms_facts(identity: IdentityCheck, patients: Sequence[Patient], prescriptions: list[Prescription]) -> PmsFacts:
    """What triage may know from the PMS about a sender: drug names and schedules, the identity gate's status."""
    # The gate reads the patients' names; triage gets only its verdict (minimum necessary).
    active = [p for p in prescriptions if p.status == "active"]
    return PmsFacts(
        known_patient=bool(patients),
        controlled_drugs=tuple(p.drug for p in active if p.controlled_schedule or p.dk_dispensing_group == "A§4"),
        drugs=tuple(p.drug for p in active),
        prior_auth_missing=tuple(
            p.drug for p in active if p.prior_auth_required and p.prior_auth_status in ("missing", "denied")
        ),
        identity=identity.status,
    )


def triage_input(parsed: ParsedMessage, facts: PmsFacts | None) -> TriageInput:
    return TriageInput(
        id=parsed.message_key,
        sender=parsed.sender,
        subject=parsed.subject,
        body=parsed.body_text,
        quoted=parsed.quoted_text,
        hidden_text=parsed.hidden_text,
        attachment_names=tuple(a.filename or "" for a in parsed.attachments),
        auto_generated=parsed.auto_generated,
        pms=facts,
    )


def kb_query(parsed: ParsedMessage, triage: TriageResult) -> tuple[str, str] | None:
    """The knowledge-base question for a routine message, or None when no reply will quote the KB."""
    if triage.escalate or not triage.needs_reply or triage.intent not in KB_INTENTS:
        return None
    return (question_text(parsed.subject, parsed.body_text), triage.language)


def quarantine_item(mailbox: str, ref: str, outcome: ParseOutcome, raw_path: str, now: datetime) -> StoredItem:
    reason = outcome.reason or "failed its contract"
    record = QuarantineRecord(
        mailbox=mailbox, message_key=outcome.message_key, ref=ref, reason=reason, raw_path=raw_path, quarantined_at=now
    )
    event = AuditEvent(at=now, actor=ACTOR, event="message.quarantined", subject=outcome.message_key,
                       details={"mailbox": mailbox, "reason": reason, "content_sha256": outcome.content_sha256})
    return StoredItem(ref=ref, message_key=outcome.message_key, content_sha256=outcome.content_sha256,
                      quarantine=record, audit=[event])


def _outbound(case: Case, parsed: ParsedMessage, plan: ReplyPlan) -> list[OutboundMessage]:
    if plan.draft is None or not parsed.sender:
        return []
    # Only policy-approved routine replies leave automatically; everything else waits in Drafts.
    auto = plan.action == Action.auto_send or (plan.action == Action.escalate and plan.acknowledgement_auto_send)
    kind = "send" if auto else "draft"
    references = [*parsed.references, parsed.message_id] if parsed.message_id else list(parsed.references)
    return [OutboundMessage(
        outbound_id=outbound_id(case.case_id, kind), case_id=case.case_id, kind=kind,
        to=parsed.reply_to or parsed.sender, subject=plan.draft.subject, body=plan.draft.body,
        in_reply_to=parsed.message_id, references=[r for r in references if r],
    )]


def case_item(mailbox: str, ref: str, parsed: ParsedMessage, triage: TriageResult, plan: ReplyPlan,
              now: datetime) -> StoredItem:
    """The case, its outbox entry, PMS requests and audit events for one processed message."""
    cid = make_case_id(mailbox, parsed.message_key)
    case = Case(
        case_id=cid, mailbox=mailbox, message_key=parsed.message_key, sender=parsed.sender, subject=parsed.subject,
        received_at=parsed.date, triage=triage, action=plan.action, action_reason=plan.action_reason,
        outcome=plan.outcome, patient_id=plan.patient_id, draft=plan.draft,
        summary=plan.summary.model_dump(mode="json") if plan.summary else None, created_at=now,
    )
    requests = [r.model_copy(update={"case_id": cid}) for r in plan.pms_requests]
    details = {
        "mailbox": mailbox, "intent": triage.intent.value, "escalate": triage.escalate,
        "reasons": [r.value for r in triage.reasons], "priority": triage.priority.value,
        "rule_ids": sorted({e.rule_id for e in triage.evidence}), "model_version": triage.model_version,
        "action": plan.action.value, "action_reason": plan.action_reason, "outcome": plan.outcome,
        "template_id": plan.draft.template_id if plan.draft else None,
        "sources": [f"{s.kind}:{s.ref}" for s in plan.draft.sources] if plan.draft else [],
    }
    audit = [AuditEvent(at=now, actor=ACTOR, event="case.created", subject=cid, details=details)]
    audit += [AuditEvent(at=now, actor=ACTOR, event=f"pms.{r.kind}_requested", subject=r.request_id,
                         details={"case_id": cid, "prescription_id": r.prescription_id}) for r in requests]
    return StoredItem(ref=ref, message_key=parsed.message_key, content_sha256=parsed.content_sha256, case=case,
                      outbound=_outbound(case, parsed, plan), pms_requests=requests, audit=audit)
