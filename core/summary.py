"""The one-screen summary a pharmacist reads for an escalated case (PHI: store it encrypted)."""

from collections.abc import Mapping, Sequence
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from core.identity import IdentityCheck
from core.refill import RefillDecision
from data_contracts.models import Dispense, Evidence, Intent, Passage, Patient, Prescription, Priority, Reason

MAX_DISPENSES = 5


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SummaryPatient(_Strict):
    patient_id: str
    name: str
    date_of_birth: date
    allergies: list[str] = Field(default_factory=list)
    confirmed: bool = Field(description="False when the identity gate did not tie the mail to this patient.")


class SummaryPrescription(_Strict):
    prescription_id: str
    drug: str
    strength: str
    directions: str
    refills_left: int
    issued_on: date
    expires_on: date
    prescriber: str
    controlled_schedule: str | None = None
    dk_dispensing_group: str | None = None
    prior_auth: str | None = None
    in_stock: bool = True


class SummaryDispense(_Strict):
    prescription_id: str
    drug: str
    dispensed_on: date
    quantity: int
    days_supply: int


class SummaryRefill(_Strict):
    prescription_id: str
    drug: str
    outcome: str
    earliest_date: date | None = None
    reasons: list[str] = Field(default_factory=list)
    rule_ids: list[str] = Field(default_factory=list)


class PharmacistSummary(_Strict):
    """Reasons and evidence, the patient's medicines, last dispenses, allergies and knowledge-base passages."""

    case_id: str
    subject: str
    intent: Intent
    priority: Priority
    language: str
    reasons: list[Reason] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    action_reason: str
    identity: str = Field(description="Identity-gate status and rule, e.g. 'verified (identity.verified)'.")
    patients: list[SummaryPatient] = Field(default_factory=list)
    active_prescriptions: list[SummaryPrescription] = Field(default_factory=list)
    last_dispenses: list[SummaryDispense] = Field(default_factory=list)
    refill_decisions: list[SummaryRefill] = Field(default_factory=list)
    passages: list[Passage] = Field(default_factory=list)

    def render_text(self) -> str:
        """Plain text for the CLI and the approval screen."""
        lines = [f"Case {self.case_id}  [{self.priority.value}]  {self.intent.value} ({self.language})",
                 f"Subject: {self.subject}", f"Why: {self.action_reason}"]
        if self.reasons:
            lines.append("Reasons: " + ", ".join(r.value for r in self.reasons))
        for ev in self.evidence:
            text = f' "{ev.matched_text}"' if ev.matched_text else ""
            lines.append(f"  - {ev.rule_id} [{ev.field}]{text}")
        lines.append(f"Identity: {self.identity}")
        for p in self.patients:
            flag = "" if p.confirmed else "  (NOT confirmed)"
            allergies = ", ".join(p.allergies) if p.allergies else "none recorded"
            lines.append(f"Patient: {p.name}, born {p.date_of_birth}, id {p.patient_id}{flag}")
            lines.append(f"  Allergies: {allergies}")
        if self.active_prescriptions:
            lines.append("Active prescriptions:")
        for rx in self.active_prescriptions:
            flags = [f for f in (rx.controlled_schedule and f"C-{rx.controlled_schedule}",
                                 rx.dk_dispensing_group and f"group {rx.dk_dispensing_group}",
                                 rx.prior_auth and f"prior auth {rx.prior_auth}",
                                 not rx.in_stock and "out of stock") if f]
            extra = f"  [{', '.join(flags)}]" if flags else ""
            lines.append(f"  - {rx.drug} {rx.strength}: {rx.directions}; {rx.refills_left} refill(s) left, "
                         f"expires {rx.expires_on}, prescriber {rx.prescriber}{extra}")
        if self.last_dispenses:
            lines.append("Last dispenses:")
        for d in self.last_dispenses:
            lines.append(f"  - {d.dispensed_on} {d.drug}: {d.quantity} units, {d.days_supply} days")
        for r in self.refill_decisions:
            when = f", earliest {r.earliest_date}" if r.earliest_date else ""
            lines.append(f"Refill {r.drug}: {r.outcome}{when} ({'; '.join(r.reasons)}) [{', '.join(r.rule_ids)}]")
        for p in self.passages:
            lines.append(f"Knowledge base {p.doc}#{p.heading} (score {p.score:.2f}): {p.text[:200]}")
        return "\n".join(lines) + "\n"


def build_summary(
    *, case_id: str, subject: str, triage_intent: Intent, priority: Priority, language: str,
    reasons: Sequence[Reason], evidence: Sequence[Evidence], action_reason: str, identity: IdentityCheck,
    patients: Sequence[Patient], prescriptions: Sequence[Prescription], dispenses: Mapping[str, Sequence[Dispense]],
    decisions: Sequence[RefillDecision], passages: Sequence[Passage],
) -> PharmacistSummary:
    """Everything the pharmacist needs about the case; candidate patients are shown, flagged if unconfirmed."""
    drug = {rx.prescription_id: f"{rx.drug} {rx.strength}" for rx in prescriptions}
    active = [rx for rx in prescriptions if rx.status == "active"]
    recent = sorted((d for rx in prescriptions for d in dispenses.get(rx.prescription_id, ())),
                    key=lambda d: d.dispensed_on, reverse=True)[:MAX_DISPENSES]
    return PharmacistSummary(
        case_id=case_id, subject=subject, intent=triage_intent, priority=priority, language=language,
        reasons=list(reasons), evidence=list(evidence), action_reason=action_reason,
        identity=f"{identity.status.value} ({identity.rule_id}): {identity.detail}",
        patients=[SummaryPatient(patient_id=p.patient_id, name=f"{p.first_name} {p.last_name}",
                                 date_of_birth=p.date_of_birth, allergies=list(p.allergies),
                                 confirmed=identity.ok and identity.patient is not None
                                 and identity.patient.patient_id == p.patient_id) for p in patients],
        active_prescriptions=[SummaryPrescription(
            prescription_id=rx.prescription_id, drug=rx.drug, strength=rx.strength, directions=rx.directions,
            refills_left=max(rx.refills_authorized - rx.refills_used, 0), issued_on=rx.issued_on,
            expires_on=rx.expires_on, prescriber=rx.prescriber, controlled_schedule=rx.controlled_schedule,
            dk_dispensing_group=rx.dk_dispensing_group,
            prior_auth=(rx.prior_auth_status or "missing") if rx.prior_auth_required else None,
            in_stock=rx.in_stock) for rx in active],
        last_dispenses=[SummaryDispense(prescription_id=d.prescription_id, drug=drug.get(d.prescription_id, "?"),
                                        dispensed_on=d.dispensed_on, quantity=d.quantity,
                                        days_supply=d.days_supply) for d in recent],
        refill_decisions=[SummaryRefill(prescription_id=dec.prescription_id,
                                        drug=drug.get(dec.prescription_id, dec.prescription_id),
                                        outcome=dec.outcome.value, earliest_date=dec.earliest_date,
                                        reasons=list(dec.reasons), rule_ids=list(dec.rule_ids))
                          for dec in decisions],
        passages=list(passages),
    )
