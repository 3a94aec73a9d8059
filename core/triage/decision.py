"""Rules over model: combine the classifier's output and every fired rule into one TriageResult."""

from dataclasses import dataclass

from core.triage.rules import ModelView, RuleHit
from data_contracts.models import Evidence, Intent, Priority, Reason, TriageResult

# A second intent is reported when the model gives it at least this probability.
SECONDARY_MIN = 0.25
# The model's clinical_question as a second intent still escalates above this probability.
CLINICAL_SECONDARY_MIN = 0.40
MAX_EVIDENCE_PER_RULE = 5
# Reasons that mean the message itself raises a clinical matter (not only who/what it is about).
CLINICAL_REASONS = frozenset({
    Reason.adverse_reaction, Reason.allergy, Reason.new_symptoms, Reason.unclear_dosage, Reason.urgent,
    Reason.clinical_judgment,
})
_REASON_ORDER = {reason: index for index, reason in enumerate(Reason)}
_PRIORITY_RANK = {Priority.low: 0, Priority.normal: 1, Priority.high: 2, Priority.urgent: 3}


@dataclass(frozen=True, slots=True)
class Signals:
    """Message facts the decision needs besides the model and the rules."""

    language: str
    auto_generated: bool
    no_reply_hint: bool


def _rule_evidence(hit: RuleHit) -> list[Evidence]:
    seen, out = set(), []
    for field, text, start, end in hit.hits:
        key = (field, start, end, text)
        if key in seen:
            continue
        seen.add(key)
        out.append(Evidence(rule_id=hit.rule.id, reason=hit.rule.reason, field=field, matched_text=text[:200],
                            start=start, end=end))
        if len(out) >= MAX_EVIDENCE_PER_RULE:
            break
    return out


def _model_evidence(model: ModelView, threshold: float, escalation_threshold: float | None,
                    clinical_threshold: float | None) -> list[Evidence]:
    """The model's own escalations: clinical_question (first or strong second), clinical doubt, low confidence
    and the escalation head."""
    out = []
    clinical_p = model.probabilities.get(Intent.clinical_question, 0.0)
    if model.top == Intent.clinical_question or clinical_p >= CLINICAL_SECONDARY_MIN:
        out.append(Evidence(rule_id="model:clinical_question", reason=Reason.clinical_judgment, field="model",
                            matched_text=f"clinical_question p={clinical_p:.2f}"))
    elif clinical_threshold is not None and clinical_p > clinical_threshold:
        # Another intent won, but the model cannot rule out a clinical question.
        out.append(Evidence(rule_id="model:clinical_doubt", reason=Reason.low_confidence, field="model",
                            matched_text=f"clinical_question p={clinical_p:.2f} > {clinical_threshold:.2f}"))
    if model.confidence < threshold:
        out.append(Evidence(rule_id="model:low_confidence", reason=Reason.low_confidence, field="model",
                            matched_text=f"top intent {model.top.value} p={model.confidence:.2f} < {threshold:.2f}"))
    score = model.escalation_score
    if score is not None and escalation_threshold is not None and score > escalation_threshold:
        # Strictly above, as the threshold was chosen; '>=' in the text, as both are rounded there.
        out.append(Evidence(rule_id="model:escalation_head", reason=Reason.clinical_judgment, field="model",
                            matched_text=f"escalation score {score:.2f} >= {escalation_threshold:.2f}"))
    return out


def decide(model: ModelView, threshold: float, fired: list[RuleHit], signals: Signals,
           model_version: str | None = None, escalation_threshold: float | None = None,
           clinical_threshold: float | None = None) -> TriageResult:
    """The final result. Rules only add reasons; nothing here removes one."""
    evidence = [e for hit in fired for e in _rule_evidence(hit)] + _model_evidence(
        model, threshold, escalation_threshold, clinical_threshold)
    reasons = sorted({e.reason for e in evidence if e.reason is not None}, key=_REASON_ORDER.__getitem__)
    escalate = bool(reasons)
    secondary = [i for i, p in sorted(model.probabilities.items(), key=lambda kv: -kv[1])
                 if i != model.top and p >= SECONDARY_MIN][:2]
    if model.top != Intent.clinical_question and Intent.clinical_question not in secondary and (
            CLINICAL_REASONS.intersection(reasons)):
        secondary.append(Intent.clinical_question)
    needs_reply = escalate or not (signals.auto_generated or (signals.no_reply_hint and model.top == Intent.other))
    priority = Priority.normal if needs_reply else Priority.low
    if escalate:
        priority = Priority.urgent if Reason.urgent in reasons else Priority.high
        for hit in fired:
            if _PRIORITY_RANK[Priority(hit.rule.priority)] > _PRIORITY_RANK[priority]:
                priority = Priority(hit.rule.priority)
    return TriageResult(
        intent=model.top, secondary_intents=secondary, escalate=escalate, reasons=reasons, priority=priority,
        language="da" if signals.language == "da" else "en", confidence=round(model.confidence, 4),
        needs_reply=needs_reply, evidence=evidence, model_version=model_version,
    )
