"""The grounding eval on a small subset: demo mailbox plus 60 generated requests, zero unsupported facts."""

import pytest

from core.grounding import verify
from evals import grounding_eval

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> grounding_eval.Report:
    return grounding_eval.run(tmp_path_factory.mktemp("grounding") / "home", count=60, seed=4, include_demo=True)


def test_every_draft_is_grounded(report):
    assert report.requests == 60 + 41
    assert report.failed == []
    assert report.drafts >= 80  # all but the no-reply mail get a draft (acknowledgements included)
    assert [(template, kinds) for _, template, kinds in report.unsupported] == []


def test_the_drafts_state_facts_of_every_kind_the_replies_use(report):
    # Guards against a vacuous pass: the verifier must have found real facts to check.
    assert {"date", "time", "phone", "medicine", "url"} <= set(report.claims)
    assert {"refill_confirmed", "refill_too_early", "escalation_ack", "general_answer"} <= set(report.templates)


def test_an_invented_fact_in_any_checked_draft_is_caught(report):
    for draft, passages, template_text in report.checked[:: max(len(report.checked) // 20, 1)]:
        invented = draft.body + "\nRing 33 44 55 66 den 3. februar 2027 kl. 07:15, eller brug Xarelto 37 mg.\n"
        verdict = verify(invented, draft.facts, passages, template_text=template_text, language=draft.language)
        assert {"phone", "date", "time", "medicine", "strength"} <= set(verdict.unsupported_kinds), draft.template_id


def test_main_reports_and_checks(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(grounding_eval.tempfile, "tempdir", str(tmp_path))
    assert grounding_eval.main(["--requests", "12", "--no-demo", "--check"]) == 0
    out = capsys.readouterr().out
    assert "requests                 12 " in out
    assert "unsupported facts        0 drafts   target 0  PASS" in out
