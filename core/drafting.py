"""The reply planner: from triage, the sender's PMS record and KB passages to an action and a grounded draft."""

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.identity import IdentityCheck, check_identity
from core.rx_matching import DrugAliases, RxMatch, RxMatchStatus, match_prescriptions
from core.refill import PickupCalendar, RefillDecision, RefillOutcome, Thresholds, decide_refill, worst
from core.summary import PharmacistSummary, build_summary
from core.templating import TemplateRenderer
from data_contracts.models import (
    Action, Dispense, Draft, Intent, ParsedMessage, Passage, Patient, PmsRequest, Prescription, Priority, Reason,
    Source, TriageResult,
)
from policy_rules import pharmacy as pharmacy_rules
from policy_rules import send_policy as send_rules
from policy_rules.pharmacy import PharmacyFacts, load_pharmacy, template_values
from policy_rules.send_policy import SendPolicy, load_send_policy
from policy_rules.template_schema import ReplyOutcome, TemplateCatalog, TemplateEntry, load_templates

O = ReplyOutcome
KB_INTENTS = frozenset({Intent.billing, Intent.insurance, Intent.general_inquiry})
# Answered by a fixed acknowledgement that also quotes a passage when one was retrieved.
KB_OPTIONAL_INTENTS = frozenset({Intent.appointment})
ACK_INTENTS = frozenset(Intent) - KB_INTENTS - {Intent.refill_request, Intent.clinical_question}
# Every (intent, outcome) the planner can ask for; load() fails if the catalog leaves one without a template.
SITUATIONS = (
    [(i, o) for i in Intent for o in (O.escalated, O.escalated_urgent)]
    + [(Intent.refill_request, o) for o in (O.refill_eligible, O.refill_too_early, O.renewal_needed,
                                             O.refill_mixed, O.identity_unconfirmed, O.prescription_unclear)]
    + [(i, o) for i in KB_INTENTS for o in (O.answered_from_kb, O.no_kb_answer)]
    + [(i, O.acknowledged) for i in ACK_INTENTS]
)
_REPLY_PREFIX = re.compile(r"^\s*((re|sv|aw|vs|fw|fwd)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


@dataclass(frozen=True)
class ReplyContext:
    case_id: str
    parsed: ParsedMessage
    triage: TriageResult
    patients: tuple[Patient, ...]                  # PMS patients whose e-mail equals the sender
    prescriptions: tuple[Prescription, ...]        # of the single matched patient (empty otherwise)
    dispenses: Mapping[str, tuple[Dispense, ...]]  # by prescription_id, newest first
    passages: tuple[Passage, ...]                  # knowledge-base passages (may be empty)
    now: datetime
    identity: IdentityCheck | None = None          # the gate's verdict when triage already ran it


@dataclass(frozen=True)
class ReplyPlan:
    action: Action
    action_reason: str
    outcome: str | None
    draft: Draft | None
    pms_requests: tuple[PmsRequest, ...] = ()
    summary: PharmacistSummary | None = None
    reply_outcome: str | None = None        # the situation the template and send policy were chosen for
    patient_id: str | None = None           # set only when the identity gate confirmed exactly one patient
    acknowledgement_auto_send: bool = False  # escalate only: policy lets the acknowledgement go out unapproved


def request_id(case_id: str, prescription_id: str, kind: str) -> str:
    return "req-" + hashlib.sha256(f"{case_id}\x00{prescription_id}\x00{kind}".encode()).hexdigest()[:24]


def reply_subject(original: str, fallback: str) -> str:
    rest = _REPLY_PREFIX.sub("", " ".join(original.split()))[:200]
    return f"Re: {rest}" if rest else fallback


@dataclass
class _Parts:
    """What a reply is built from, accumulated while planning."""

    values: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, str] = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)


class Drafter:
    """Templates compiled, policy and pharmacy facts validated once; plan() is pure and fast."""

    def __init__(self, catalog: TemplateCatalog, texts: Mapping[str, str], policy: SendPolicy,
                 pharmacy: PharmacyFacts, auto_send: bool = False) -> None:
        self.catalog, self.policy, self.pharmacy = catalog, policy, pharmacy
        self.auto_send = auto_send  # the master switch (settings.auto_send): off turns every auto_send into a draft
        self.renderer = TemplateRenderer(texts)
        self.thresholds = Thresholds(pharmacy.refill_thresholds.default, pharmacy.refill_thresholds.controlled,
                                     dict(pharmacy.refill_thresholds.payers))
        p = pharmacy.pickup
        self.calendar = PickupCalendar(p.order_cutoff, p.ready_from, p.short_day_cutoff, p.short_day_ready_from,
                                       pharmacy.holidays, pharmacy.short_day_set, p.out_of_stock_extra_weekdays)
        self.aliases = DrugAliases(pharmacy.drug_aliases)
        self._pharmacy: dict[tuple[str, str], dict[str, Any]] = {}
        for entry in catalog.templates:
            for lang in ("en", "da"):
                values = template_values(pharmacy, lang)
                self._pharmacy[(entry.id, lang)] = {k: values[k] for k in entry.pharmacy_facts}
                undeclared = self.renderer.variables(f"{lang}/{entry.id}.j2") - {"pharmacy", *entry.facts}
                if undeclared:
                    raise ValueError(f"template {lang}/{entry.id} uses undeclared fact(s) {sorted(undeclared)}")
        missing = [f"{i.value}/{o.value}" for i, o in SITUATIONS if catalog.lookup(i, o) is None]
        if missing:
            raise ValueError(f"templates/catalog.yaml: no template for {', '.join(missing[:5])}")

    @classmethod
    def load(cls, templates_dir: Path | None = None, send_policy_path: Path | None = None,
             pharmacy_path: Path | None = None, auto_send: bool = False) -> "Drafter":
        """Load and validate templates, send policy and pharmacy facts; pass settings.auto_send as auto_send."""
        catalog, texts = load_templates(templates_dir)
        return cls(catalog, texts, load_send_policy(send_policy_path), load_pharmacy(pharmacy_path), auto_send)

    # --- planning --------------------------------------------------------------------------------------

    def plan(self, ctx: ReplyContext) -> ReplyPlan:
        triage = ctx.triage
        identity = ctx.identity or check_identity(ctx.parsed, ctx.patients)
        if triage.escalate:
            rules = sorted({e.rule_id for e in triage.evidence})
            why = f"triage escalated: {', '.join(r.value for r in triage.reasons) or 'no reason given'}"
            why += f" (rules {', '.join(rules)})" if rules else ""
            # The pharmacist still sees what the refill rules say (and the case keeps the outcome).
            decisions = self._decisions(ctx, identity)[1] if triage.intent is Intent.refill_request else []
            outcome = worst([d.outcome for d in decisions]).value if decisions else None
            return self._escalate(ctx, identity, why, decisions, outcome)
        if not triage.needs_reply:
            return ReplyPlan(Action.close_without_reply, "triage: no reply needed", None, None)
        if not ctx.parsed.sender:
            return ReplyPlan(Action.close_without_reply, "planner.no_sender: no address to reply to", None, None)
        if triage.intent in send_rules.ESCALATE_ONLY_INTENTS:
            return self._escalate(ctx, identity, f"send.floor.escalate: {triage.intent.value} goes to a pharmacist")
        if triage.intent is Intent.refill_request:
            return self._refill(ctx, identity)
        if triage.intent in KB_INTENTS:
            parts = self._passages(ctx)
            if parts.values["passages"]:
                return self._reply(ctx, identity, O.answered_from_kb, parts, "kb.passage")
            return self._reply(ctx, identity, O.no_kb_answer, _Parts(), "kb.no_passage_above_min_score")
        parts = self._passages(ctx) if triage.intent in KB_OPTIONAL_INTENTS else _Parts()
        return self._reply(ctx, identity, O.acknowledged, parts, f"intent.{triage.intent.value}")

    def _passages(self, ctx: ReplyContext) -> _Parts:
        """The passages a reply may quote: the sender's language, above the policy's minimum score, best first."""
        kb = self.policy.knowledge_base
        ok = [p for p in ctx.passages if p.language == ctx.triage.language and p.score >= kb.min_score]
        chosen = sorted(ok, key=lambda p: -p.score)[: kb.max_passages]
        parts = _Parts(values={"passages": [{"heading": p.heading, "text": p.text} for p in chosen]})
        for n, p in enumerate(chosen):
            parts.facts[f"passages[{n}]"] = f"{p.doc}#{p.heading}"
            parts.sources.append(Source(kind="knowledge_base", ref=f"{p.doc}#{p.heading}",
                                        detail=f"{p.language}, score {p.score:.2f}"))
        return parts

    def _decisions(self, ctx: ReplyContext, identity: IdentityCheck) -> tuple[RxMatch | None, list[RefillDecision]]:
        """The prescriptions the verified patient names, and the refill decision for each (none if unclear)."""
        if not identity.ok or identity.patient is None:
            return None, []
        own = [rx for rx in ctx.prescriptions if rx.patient_id == identity.patient.patient_id]
        match = match_prescriptions(f"{ctx.parsed.subject}\n{ctx.parsed.body_text}", own, self.aliases)
        if match.status is not RxMatchStatus.matched:
            return match, []
        now = ctx.now if ctx.now.tzinfo else ctx.now.replace(tzinfo=timezone.utc)
        local = now.astimezone(self.pharmacy.zone)
        return match, [decide_refill(rx, ctx.dispenses.get(rx.prescription_id, ()), self.thresholds, local.date(),
                                     order_time=local.time(), calendar=self.calendar) for rx in match.prescriptions]

    def _refill(self, ctx: ReplyContext, identity: IdentityCheck) -> ReplyPlan:
        match, decisions = self._decisions(ctx, identity)
        if match is None or identity.patient is None:
            return self._reply(ctx, identity, O.identity_unconfirmed, _Parts(), identity.rule_id)
        patient = identity.patient
        if match.status is not RxMatchStatus.matched:
            return self._reply(ctx, identity, O.prescription_unclear, self._patient_parts(patient),
                               f"identity.verified+rx.{match.status.value}")
        rules = ", ".join(dict.fromkeys(r for d in decisions for r in d.rule_ids))
        outcome = worst([d.outcome for d in decisions])
        if outcome is RefillOutcome.not_automatable:
            return self._escalate(ctx, identity, f"refill not automatable ({rules})", decisions, outcome.value)
        parts = self._patient_parts(patient)
        by_id = {rx.prescription_id: rx for rx in match.prescriptions}
        groups: dict[RefillOutcome, list[dict[str, Any]]] = {o: [] for o in RefillOutcome}
        for n, dec in enumerate(decisions):
            groups[dec.outcome].append(self._medicine(by_id[dec.prescription_id], dec, n, ctx, parts))
        kinds = {d.outcome for d in decisions}
        if len(kinds) == 1:
            reply_outcome = O(outcome.value)
            parts.values["medicines"] = groups[outcome]
        else:
            reply_outcome = O.refill_mixed
            parts.values.update(ready=groups[RefillOutcome.refill_eligible],
                                too_early=groups[RefillOutcome.refill_too_early],
                                renewal=groups[RefillOutcome.renewal_needed])
        requests = tuple(self._request(ctx, patient, dec) for dec in decisions
                         if dec.outcome in (RefillOutcome.refill_eligible, RefillOutcome.renewal_needed))
        return self._reply(ctx, identity, reply_outcome, parts, f"identity.verified; refill {rules}",
                           outcome=outcome.value, requests=requests)

    def _patient_parts(self, patient: Patient) -> _Parts:
        return _Parts(values={"patient_first_name": patient.first_name},
                      facts={"patient_first_name": patient.first_name},
                      sources=[Source(kind="pms", ref=f"patient:{patient.patient_id}", detail="first_name")])

    def _medicine(self, rx: Prescription, dec: RefillDecision, n: int, ctx: ReplyContext,
                  parts: _Parts) -> dict[str, Any]:
        """One medicine line: only what this outcome states, each value recorded with its PMS/policy source."""
        item: dict[str, Any] = {"name": f"{rx.drug} {rx.strength}"}
        parts.facts[f"medicines[{n}].name"] = item["name"]
        parts.sources.append(Source(kind="pms", ref=f"prescription:{rx.prescription_id}",
                                    detail=f"drug, strength; {dec.outcome.value}: {', '.join(dec.rule_ids)}"))
        if dec.outcome is RefillOutcome.refill_eligible and dec.ready_on and dec.ready_from:
            item.update(ready_date=dec.ready_on, ready_from=dec.ready_from, from_wholesaler=not rx.in_stock)
            parts.facts[f"medicines[{n}].ready_date"] = dec.ready_on.isoformat()
            parts.facts[f"medicines[{n}].ready_from"] = f"{dec.ready_from:%H:%M}"
            parts.sources.append(Source(kind="policy", ref=f"{pharmacy_rules.SOURCE_REF}#pickup",
                                        detail="order cut-off and ready time"))
        if dec.outcome is RefillOutcome.refill_too_early and dec.earliest_date:
            item["earliest_date"] = dec.earliest_date
            parts.facts[f"medicines[{n}].earliest_date"] = dec.earliest_date.isoformat()
            last = ctx.dispenses.get(rx.prescription_id, ())
            if last:
                parts.sources.append(Source(kind="pms", ref=f"dispense:{last[0].dispense_id}",
                                            detail="dispensed_on, days_supply"))
            parts.sources.append(Source(kind="policy", ref=f"{pharmacy_rules.SOURCE_REF}#refill_thresholds",
                                        detail=f"threshold {dec.threshold:.0%}"))
        return item

    def _request(self, ctx: ReplyContext, patient: Patient, dec: RefillDecision) -> PmsRequest:
        kind = "refill" if dec.outcome is RefillOutcome.refill_eligible else "renewal"
        return PmsRequest(request_id=request_id(ctx.case_id, dec.prescription_id, kind), kind=kind,
                          prescription_id=dec.prescription_id, patient_id=patient.patient_id, case_id=ctx.case_id,
                          ready_on=dec.ready_on if kind == "refill" else None, created_at=ctx.now)

    # --- composing -------------------------------------------------------------------------------------

    def _compose(self, ctx: ReplyContext, entry: TemplateEntry, parts: _Parts) -> Draft:
        lang = ctx.triage.language
        pharmacy = self._pharmacy[(entry.id, lang)]
        body = self.renderer.render(entry.id, lang, {**parts.values, "pharmacy": pharmacy}, required=entry.facts)
        facts = {**parts.facts, **{f"pharmacy.{k}": str(v) for k, v in pharmacy.items()}}
        sources = [Source(kind="template", ref=f"{lang}/{entry.id}"),
                   Source(kind="policy", ref=pharmacy_rules.SOURCE_REF, detail=", ".join(pharmacy)),
                   *{(s.kind, s.ref, s.detail): s for s in parts.sources}.values()]
        return Draft(template_id=entry.id, language=lang, facts=facts, sources=sources, body=body,
                     subject=reply_subject(ctx.parsed.subject, entry.subject[lang]))

    def _reply(self, ctx: ReplyContext, identity: IdentityCheck, reply_outcome: ReplyOutcome, parts: _Parts,
               why: str, outcome: str | None = None, requests: tuple[PmsRequest, ...] = ()) -> ReplyPlan:
        intent = ctx.triage.intent
        action, rule_id = self.policy.decide(intent, reply_outcome)
        if action is Action.auto_send and not self.auto_send:
            action, rule_id = Action.draft_for_approval, f"{rule_id}+send.master_switch_off"
        reason = f"{intent.value}/{reply_outcome.value}: {why}; {send_rules.SOURCE_REF} {rule_id} -> {action.value}"
        if action is Action.escalate:
            return self._escalate(ctx, identity, reason, outcome=outcome)
        entry = self.catalog.lookup(intent, reply_outcome)
        assert entry is not None  # checked for every situation at load
        patient_id = identity.patient.patient_id if identity.ok and identity.patient else None
        return ReplyPlan(action, reason, outcome, self._compose(ctx, entry, parts), requests, None,
                         reply_outcome.value, patient_id)

    def _escalate(self, ctx: ReplyContext, identity: IdentityCheck, why: str,
                  decisions: Sequence[RefillDecision] = (), outcome: str | None = None) -> ReplyPlan:
        """A pharmacist takes the case: an acknowledgement with no clinical content, and the summary."""
        triage = ctx.triage
        urgent = Reason.urgent in triage.reasons or triage.priority is Priority.urgent
        reply_outcome = O.escalated_urgent if urgent else O.escalated
        draft = None
        if triage.needs_reply and ctx.parsed.sender:
            entry = self.catalog.lookup(triage.intent, reply_outcome)
            assert entry is not None
            draft = self._compose(ctx, entry, _Parts())
        summary = build_summary(
            case_id=ctx.case_id, subject=ctx.parsed.subject, triage_intent=triage.intent, priority=triage.priority,
            language=triage.language, reasons=triage.reasons, evidence=triage.evidence, action_reason=why,
            identity=identity, patients=ctx.patients, prescriptions=ctx.prescriptions, dispenses=ctx.dispenses,
            decisions=decisions, passages=ctx.passages)
        auto_ack = draft is not None and self.auto_send and self.policy.escalation_acknowledgement == "auto_send"
        patient_id = identity.patient.patient_id if identity.ok and identity.patient else None
        return ReplyPlan(Action.escalate, why, outcome, draft, (), summary, reply_outcome.value, patient_id, auto_ack)

