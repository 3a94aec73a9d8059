"""Batch glue between the PMS, triage, the knowledge base and the reply planner (no writes)."""

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime

from core import pipeline
from core.identity import IdentityCheck, check_identity
from connectors.llm import polish
from core.drafting import ReplyContext, ReplyPlan
from data_contracts.models import (
    Action, AuditEvent, Dispense, ParsedMessage, Passage, Patient, Prescription, TriageResult,
)
from tasks.context import SweepContext

log = logging.getLogger(__name__)


@dataclass
class TriagedBatch:
    """A batch's fresh messages, triaged, with the PMS records drafting needs (nothing written yet)."""

    mailbox: str
    now: datetime
    fresh: list[tuple[str, ParsedMessage]]
    results: list[TriageResult] = field(default_factory=list)
    patients_by_sender: dict[str, list[Patient]] = field(default_factory=dict)
    prescriptions: dict[str, list[Prescription]] = field(default_factory=dict)
    dispenses: dict[str, list[Dispense]] = field(default_factory=dict)
    identities: list[IdentityCheck] = field(default_factory=list)  # run once, read by triage and drafting

    def kb_queries(self) -> list[tuple[str, str] | None]:
        return [pipeline.kb_query(m, r) for (_, m), r in zip(self.fresh, self.results)]


def triage_batch(
    ctx: SweepContext, mailbox: str, fresh: list[tuple[str, ParsedMessage]], now: datetime
) -> TriagedBatch:
    """Triage each parsed message with its sender's PMS facts; one PMS query per kind for the whole batch."""
    batch = TriagedBatch(mailbox=mailbox, now=now, fresh=fresh)
    if not fresh:
        return batch
    senders = sorted({m.sender for _, m in fresh if m.sender})
    batch.patients_by_sender = ctx.pms.patients_by_email(senders)
    single = {s: ps[0] for s, ps in batch.patients_by_sender.items() if len(ps) == 1}
    batch.prescriptions = ctx.pms.prescriptions_for(sorted({p.patient_id for p in single.values()}))
    batch.dispenses = ctx.pms.dispenses_for(
        sorted({rx.prescription_id for rxs in batch.prescriptions.values() for rx in rxs}))
    inputs = []
    for _, message in fresh:
        patient = single.get(message.sender or "")
        rxs = batch.prescriptions.get(patient.patient_id, []) if patient else []
        patients = batch.patients_by_sender.get(message.sender or "", ())
        identity = check_identity(message, patients)
        batch.identities.append(identity)
        facts = pipeline.pms_facts(identity, patients, rxs)
        inputs.append(pipeline.triage_input(message, facts))
    batch.results = ctx.triager.triage_many(inputs)
    return batch


def draft_batch(ctx: SweepContext, batch: TriagedBatch, passages: list[list[Passage]]) -> list[pipeline.StoredItem]:
    """Plan a reply (or an escalation) for each triaged message from its PMS records and KB passages."""
    items = []
    for (ref, message), triage, found, identity in zip(batch.fresh, batch.results, passages, batch.identities):
        matches = tuple(batch.patients_by_sender.get(message.sender or "", ()))
        patient = matches[0] if len(matches) == 1 else None
        rxs = tuple(batch.prescriptions.get(patient.patient_id, ())) if patient else ()
        reply = ReplyContext(
            case_id=pipeline.make_case_id(batch.mailbox, message.message_key),
            parsed=message,
            triage=triage,
            patients=matches,
            prescriptions=rxs,
            dispenses={rx.prescription_id: tuple(batch.dispenses.get(rx.prescription_id, ())) for rx in rxs},
            passages=tuple(found),
            now=batch.now,
            identity=identity,
        )
        plan = ctx.drafter.plan(reply)
        plan, rejection = polish_plan(ctx, plan, message, found)
        item = pipeline.case_item(batch.mailbox, ref, message, triage, plan, batch.now)
        if rejection:
            item.audit.append(AuditEvent(at=batch.now, actor=pipeline.ACTOR, event="draft.llm_rejected",
                                         subject=reply.case_id,
                                         details={"template_id": plan.draft.template_id, "reason": rejection}))
        items.append(item)
    return items


def plan_replies(
    ctx: SweepContext, mailbox: str, fresh: list[tuple[str, ParsedMessage]], now: datetime
) -> list[pipeline.StoredItem]:
    """Triage, retrieve and plan a reply for each parsed message, in one call (the sweep pipelines the three)."""
    batch = triage_batch(ctx, mailbox, fresh, now)
    return draft_batch(ctx, batch, retrieve(ctx, batch.kb_queries()))


def polish_plan(ctx: SweepContext, plan: ReplyPlan, message: ParsedMessage,
                passages: list[Passage]) -> tuple[ReplyPlan, str | None]:
    """Let the optional LLM reword a routine draft; a rewrite with any unsupported fact is discarded."""
    if ctx.chat_model is None or plan.draft is None or plan.action == Action.escalate:
        return plan, None
    draft = plan.draft
    result = polish(draft, draft.facts, passages, message.body_text, ctx.chat_model,
                    template_text=ctx.drafter.renderer.template_sources(draft.template_id, draft.language))
    return replace(plan, draft=result.draft), result.rejection


def retrieve(ctx: SweepContext, queries: list[tuple[str, str] | None]) -> list[list[Passage]]:
    """Knowledge-base passages for the messages that need them; empty lists for the rest."""
    wanted = [(i, q) for i, q in enumerate(queries) if q is not None]
    found: list[list[Passage]] = [[] for _ in queries]
    if not wanted or ctx.kb is None:
        return found
    for (index, _), hits in zip(wanted, ctx.kb.search_many([q for _, q in wanted], k=3)):
        found[index] = hits
    return found
