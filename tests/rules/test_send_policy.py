"""The send policy file: each rule decides what it says, the safety floor holds, bad files name line and field."""

from pathlib import Path

import pytest

from data_contracts.models import Action, Intent
from policy_rules.pharmacy import DEFAULT_PATH as PHARMACY_PATH
from policy_rules.pharmacy import load_pharmacy
from policy_rules.send_policy import DEFAULT_PATH, load_send_policy
from policy_rules.template_schema import ReplyOutcome
from policy_rules.yaml_errors import RuleFileError

POLICY = load_send_policy()
TEXT = DEFAULT_PATH.read_text(encoding="utf-8")


def test_demo_policy_never_auto_sends():
    assert POLICY.default == "draft_for_approval" and POLICY.escalation_acknowledgement == "draft_for_approval"
    assert all(rule.action != "auto_send" for rule in POLICY.rules)
    for intent in Intent:
        for outcome in ReplyOutcome:
            assert POLICY.decide(intent, outcome)[0] is not Action.auto_send


@pytest.mark.parametrize("rule", POLICY.rules, ids=[r.id for r in POLICY.rules])
def test_each_rule_decides_its_own_cases(rule):
    outcomes = [rule.outcome] if rule.outcome else [o for o in ReplyOutcome
                                                   if not any(r.intent == rule.intent and r.outcome == o
                                                              for r in POLICY.rules)]
    for outcome in outcomes:
        action, rule_id = POLICY.decide(rule.intent, outcome)
        if outcome is ReplyOutcome.not_automatable:
            assert action is Action.escalate
            continue
        assert action is Action(rule.action) and rule_id == rule.id


def test_unlisted_cases_get_the_default():
    assert POLICY.decide(Intent.other, ReplyOutcome.acknowledged) == (Action.draft_for_approval, "send.default")


def test_not_automatable_escalates_even_under_an_intent_wide_rule(tmp_path: Path):
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nknowledge_base: {min_score: 0.0, max_passages: 1}\nrules:\n"
                    "  - {id: all-refills, intent: refill_request, action: auto_send}\n", encoding="utf-8")
    policy = load_send_policy(path)
    assert policy.decide(Intent.refill_request, ReplyOutcome.refill_eligible) == (Action.auto_send, "all-refills")
    assert policy.decide(Intent.refill_request, ReplyOutcome.not_automatable)[0] is Action.escalate
    action, rule_id = policy.decide(Intent.refill_request, ReplyOutcome.identity_unconfirmed)
    assert action is Action.draft_for_approval and rule_id == "all-refills+send.floor.no_auto_send"


def line_of(text: str, needle: str) -> int:
    return next(i for i, row in enumerate(text.splitlines(), 1) if needle in row)


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ("{id: send.complaint, intent: complaint, action: draft_for_approval}",
         "{id: send.complaint, intent: complaint, action: auto_send}", "rules[", "never sent automatically"),
        ("{id: send.clinical, intent: clinical_question, action: escalate}",
         "{id: send.clinical, intent: clinical_question, action: draft_for_approval}", "rules[", "always escalates"),
        ("outcome: not_automatable, action: escalate}", "outcome: not_automatable, action: draft_for_approval}",
         "rules[", "always escalates"),
        ("{id: send.order-status, intent: order_status,", "{id: send.order-status, intent: order_stat,",
         "intent", "Input should be"),
        ("{id: send.transfer, intent: prescription_transfer,",
         "{id: send.transfer, intent: prescription_transfer, outcome: shipped,", "outcome", "Input should be"),
        ("{id: send.appointment, intent: appointment, action: draft_for_approval}",
         "{id: send.appointment, intent: appointment, action: draft_for_approval, when: always}", "when",
         "Extra inputs"),
        ("{id: send.appointment, intent: appointment,", "{id: send.billing.kb, intent: appointment,",
         "", "duplicate rule id"),
    ],
)
def test_bad_policy_files_name_the_line_and_field(tmp_path: Path, old, new, field, message):
    assert old in TEXT
    text = TEXT.replace(old, new)
    path = tmp_path / "send_policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleFileError) as err:
        load_send_policy(path)
    assert message in err.value.message and field in err.value.field
    if field:
        assert err.value.line == line_of(text, new)
    assert str(path) in str(err.value)


def test_yaml_syntax_errors_name_the_line(tmp_path: Path):
    path = tmp_path / "send_policy.yaml"
    path.write_text(TEXT.replace("max_passages: 1", "max_passages: [1"), encoding="utf-8")
    with pytest.raises(RuleFileError, match="invalid YAML") as err:
        load_send_policy(path)
    assert err.value.line is not None


def test_pharmacy_facts_file_loads_and_matches_the_demo_pharmacy():
    facts = load_pharmacy()
    assert facts.name.da == "Søndergade Apotek" and facts.phone == "+45 86 12 34 56"
    assert facts.emergency.emergency_number == "112"
    assert facts.emergency.out_of_hours_doctor.phone == "70 11 31 31"
    assert facts.emergency.poison_helpline.phone == "82 12 12 12"
    assert facts.refill_thresholds.default == 0.75 and facts.refill_thresholds.controlled == 0.85


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [('order_cutoff: "12:00"', 'order_cutoff: "noon"', "pickup.order_cutoff"),
     ("timezone: Europe/Copenhagen", "timezone: Europe/Aarhus", "timezone"),
     ("  default: 0.75", "  default: 1.75", "refill_thresholds.default"),
     ("weekdays: {open: \"08:30\", close: \"18:00\"}", "weekdays: {open: \"18:00\", close: \"08:30\"}",
      "opening_hours.weekdays")],
)
def test_bad_pharmacy_file_names_the_line_and_field(tmp_path: Path, old, new, field):
    text = PHARMACY_PATH.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "pharmacy.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(RuleFileError) as err:
        load_pharmacy(path)
    assert err.value.field == field and err.value.line == line_of(text.replace(old, new), new.strip())
