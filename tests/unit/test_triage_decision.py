"""The decision's model evidence: clinical_question, clinical doubt, low confidence and the escalation head add
reasons only."""

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


def doubt_view(clinical_p: float, top: Intent = Intent.general_inquiry) -> ModelView:
    return ModelView(top, 0.7, {top: 0.7, Intent.clinical_question: clinical_p}, escalation_score=None)


@pytest.mark.parametrize("clinical_p, fires", [(0.05, False), (0.2, False), (0.21, True), (0.39, True)])
def test_clinical_doubt_escalates_as_low_confidence_above_its_threshold(clinical_p, fires):
    result = decide(doubt_view(clinical_p), 0.0, [], SIGNALS, clinical_threshold=0.2)
    assert result.escalate is fires
    doubt = [e for e in result.evidence if e.rule_id == "model:clinical_doubt"]
    assert bool(doubt) is fires
    if fires:
        assert result.reasons == [Reason.low_confidence]
        assert doubt[0].matched_text == f"clinical_question p={clinical_p:.2f} > 0.20"


def test_clinical_doubt_gives_way_to_the_models_clinical_question():
    strong = decide(doubt_view(0.45), 0.0, [], SIGNALS, clinical_threshold=0.2)
    assert {e.rule_id for e in strong.evidence} == {"model:clinical_question"}
    assert not decide(doubt_view(0.39), 0.0, [], SIGNALS, clinical_threshold=None).escalate
