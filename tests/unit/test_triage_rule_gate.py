"""A rule's `unless` gate and the `none` condition: a gate that holds keeps the rule quiet, and nothing else."""

from datetime import date

import pytest
from pydantic import ValidationError

from core.triage.context import message_context
from core.triage.inputs import TriageInput
from core.triage.lexicon import LexiconSet
from core.triage.ruleset import RuleSet
from policy_rules.lexicon_schema import Lexicon, TermGroup
from policy_rules.rule_schema import NamedCondition, Rule

LEXICONS = LexiconSet([
    Lexicon(id="pains", title="Pains", description="Test symptoms.", sources=["tests"],
            groups=[TermGroup(name="en", lang="en", terms=["muscle pain", "headache"])]),
    Lexicon(id="bulk", title="Bulk", description="Test list-mail markers.", sources=["tests"], negatable=False,
            groups=[TermGroup(name="en", lang="en", terms=["newsletter", "unsubscribe"])]),
    Lexicon(id="own", title="Own voice", description="Test first-person words.", sources=["tests"],
            negatable=False, groups=[TermGroup(name="en", lang="en", terms=["my", "i have"])]),
])
NEWSLETTER = "Weekly newsletter: statins and muscle pain, what to tell customers. Unsubscribe"
OWN_REPORT = "Your newsletter was about statins. I have had muscle pain for a week. Unsubscribe"


def rule(**extra) -> Rule:
    return Rule.model_validate({
        "id": "pain-report", "title": "Pain report", "description": "A pain is reported.", "reason": "new_symptoms",
        "when": {"lexicon": "pains"},
        "metadata": {"why": "Only exists inside this test.", "source": ["tests"], "added": date(2025, 11, 26)},
        **extra,
    })


def named(name: str, when: dict) -> NamedCondition:
    return NamedCondition.model_validate({
        "id": name, "title": "Named test condition", "description": "Exists only inside this test.", "when": when,
        "metadata": {"why": "Only exists inside this test.", "source": ["tests"], "added": date(2026, 11, 26)},
    })


BULK = named("bulk-mail", {"lexicon": "bulk"})


def fired(rule_: Rule, body: str, conditions: tuple[NamedCondition, ...] = ()) -> set[str]:
    ctx = message_context(LEXICONS, TriageInput(id="1", sender=None, subject="", body=body))
    return {hit.rule.id for hit in RuleSet([rule_], LEXICONS, conditions).evaluate(ctx)}


def test_without_a_gate_the_rule_fires_on_a_newsletter():
    assert fired(rule(), NEWSLETTER) == {"pain-report"}


def test_a_gate_that_holds_keeps_the_rule_quiet():
    assert fired(rule(unless={"lexicon": "bulk"}), NEWSLETTER) == set()


def test_a_gate_that_does_not_hold_changes_nothing():
    gated = rule(unless={"lexicon": "bulk"})
    assert fired(gated, "I have had muscle pain since Monday.") == {"pain-report"}
    assert fired(gated, "No pains here, but a newsletter.") == set(), "the gate never makes a rule fire"


def test_none_lets_the_senders_own_report_through_the_gate():
    gated = rule(unless={"all": [{"lexicon": "bulk"},
                                 {"none": [{"near": {"left": ["own"], "right": ["pains"], "scope": "sentence",
                                                     "window": 30}}]}]})
    assert fired(gated, NEWSLETTER) == set()
    assert fired(gated, OWN_REPORT) == {"pain-report"}


def test_a_rule_needs_when_and_a_gate_is_one_condition():
    with pytest.raises(ValidationError):
        rule(unless={"lexicon": "bulk", "pattern": "x"})
    with pytest.raises(ValidationError):
        Rule.model_validate({k: v for k, v in rule().model_dump(mode="json").items() if k != "when"})


def test_a_ref_gate_acts_as_its_named_condition():
    gated = rule(unless={"ref": "bulk-mail"})
    assert fired(gated, NEWSLETTER, (BULK,)) == set()
    assert fired(gated, "I have had muscle pain since Monday.", (BULK,)) == {"pain-report"}


def test_named_conditions_compile_once_and_may_refer_to_each_other():
    own = named("own-pain", {"all": [{"ref": "bulk-mail"}, {"lexicon": "own"}]})
    rule_set = RuleSet([rule(unless={"ref": "own-pain"}), rule(id="other", unless={"ref": "bulk-mail"})],
                       LEXICONS, (own, BULK))
    assert rule_set.rules[1].unless is rule_set.conditions["bulk-mail"], "one evaluator, shared"
    ctx = message_context(LEXICONS, TriageInput(id="1", sender=None, subject="", body=OWN_REPORT))
    assert {hit.rule.id for hit in rule_set.evaluate(ctx)} == set()


def test_a_ref_needs_its_named_condition():
    with pytest.raises(KeyError, match="bulk-mail"):
        RuleSet([rule(unless={"ref": "bulk-mail"})], LEXICONS)
    with pytest.raises(ValueError, match="cycle"):
        RuleSet([], LEXICONS, (named("loop", {"ref": "loop"}),))
