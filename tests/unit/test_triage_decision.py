"""The decision's model evidence: clinical_question, low confidence and the escalation head add reasons only."""

import pytest

from core.triage.decision import Signals, decide
from core.triage.rules import ModelView
from data_contracts.models import Intent, Priority, Reason

SIGNALS = Signals(language="en", auto_generated=False, no_reply_hint=False)


def view(score: float | None, top: Intent = Intent.refill_request, p: float = 0.9) -> ModelView:
    return ModelView(top, p, {top: p, Intent.clinical_question: 0.05}, escalation_score=score)


def head_evidence(result):
    return [e for e in result.evidence if e.rule_id == "model:escalation_head"]


@pytest.mark.parametrize("score, fires", [(-1.2, False), (0.29, False), (0.3, False), (0.31, True), (2.5, True)])
def test_the_head_escalates_only_above_its_threshold(score, fires):
    result = decide(view(score), 0.0, [], SIGNALS, "v", escalation_threshold=0.3)
    assert result.escalate is fires and bool(head_evidence(result)) is fires
    if fires:
        (evidence,) = head_evidence(result)
        assert evidence.reason is Reason.clinical_judgment and evidence.field == "model"
        assert evidence.matched_text == f"escalation score {score:.2f} >= 0.30"
        assert result.reasons == [Reason.clinical_judgment] and result.priority is Priority.high
        assert Intent.clinical_question in result.secondary_intents
    else:
        assert result.reasons == [] and result.priority is Priority.normal


def test_no_head_no_head_evidence():
    assert not decide(view(None), 0.0, [], SIGNALS, escalation_threshold=0.3).escalate
    assert not decide(view(5.0), 0.0, [], SIGNALS, escalation_threshold=None).escalate
    assert not decide(view(5.0), 0.0, [], SIGNALS).escalate


def test_the_head_adds_to_the_other_model_reasons():
    result = decide(view(1.0, p=0.2), 0.5, [], SIGNALS, escalation_threshold=0.3)
    assert {e.rule_id for e in result.evidence} == {"model:escalation_head", "model:low_confidence"}
    assert result.reasons == sorted(result.reasons, key=list(Reason).index)
    assert set(result.reasons) == {Reason.clinical_judgment, Reason.low_confidence}
    clinical = decide(view(1.0, top=Intent.clinical_question), 0.0, [], SIGNALS, escalation_threshold=0.3)
    assert {e.rule_id for e in clinical.evidence} == {"model:clinical_question", "model:escalation_head"}
    assert clinical.reasons == [Reason.clinical_judgment]


def test_a_zero_low_confidence_threshold_never_fires():
    assert not decide(view(None, p=0.01), 0.0, [], SIGNALS).escalate
