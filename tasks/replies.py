"""Batch glue between the PMS, triage, the knowledge base and the reply planner (no writes)."""

import logging
from dataclasses import replace
from datetime import datetime

from core import pipeline
from connectors.llm import polish
from core.drafting import ReplyContext, ReplyPlan
from data_contracts.models import Action, AuditEvent, ParsedMessage, Passage
from tasks.context import SweepContext

log = logging.getLogger(__name__)


def plan_replies(
    ctx: SweepContext, mailbox: str, fresh: list[tuple[str, ParsedMessage]], now: datetime
) -> list[pipeline.StoredItem]:
    """Triage and plan a reply for each parsed message; one PMS query per kind for the whole batch."""
    if not fresh:
        return []
    senders = sorted({m.sender for _, m in fresh if m.sender})
    patients_by_sender = ctx.pms.patients_by_email(senders)
    single = {s: ps[0] for s, ps in patients_by_sender.items() if len(ps) == 1}
    prescriptions = ctx.pms.prescriptions_for(sorted({p.patient_id for p in single.values()}))
    dispenses = ctx.pms.dispenses_for(sorted({rx.prescription_id for rxs in prescriptions.values() for rx in rxs}))

    inputs = []
    for _, message in fresh:
        patient = single.get(message.sender or "")
        rxs = prescriptions.get(patient.patient_id, []) if patient else []
        facts = pipeline.pms_facts(message, patients_by_sender.get(message.sender or "", ()), rxs)
        inputs.append(pipeline.triage_input(message, facts))
    results = ctx.triager.triage_many(inputs)

    queries = [pipeline.kb_query(m, r) for (_, m), r in zip(fresh, results)]
    passages = retrieve(ctx, queries)

    items = []
    for (ref, message), triage, found in zip(fresh, results, passages):
        matches = tuple(patients_by_sender.get(message.sender or "", ()))
        patient = matches[0] if len(matches) == 1 else None
        rxs = tuple(prescriptions.get(patient.patient_id, ())) if patient else ()
        reply = ReplyContext(
            case_id=pipeline.make_case_id(mailbox, message.message_key),
            parsed=message,
            triage=triage,
            patients=matches,
            prescriptions=rxs,
            dispenses={rx.prescription_id: tuple(dispenses.get(rx.prescription_id, ())) for rx in rxs},
            passages=tuple(found),
            now=now,
        )
        plan = ctx.drafter.plan(reply)
        plan, rejection = polish_plan(ctx, plan, message, found)
        item = pipeline.case_item(mailbox, ref, message, triage, plan, now)
        if rejection:
            item.audit.append(AuditEvent(at=now, actor=pipeline.ACTOR, event="draft.llm_rejected", subject=reply.case_id,
                                         details={"template_id": plan.draft.template_id, "reason": rejection}))
        items.append(item)
    return items


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
