"""One parametrised test per escalation rule file: its examples must fire, its counter-examples must not."""

from functools import lru_cache

import pytest

from core.triage.engine import REQUIRED_LEXICONS
from core.triage.inputs import PmsFacts, TriageInput
from core.triage.lexicon import LexiconSet
from core.triage.context import message_context
from core.triage.rules import ModelView, RuleSet
from policy_rules.loader import EXAMPLES_SUFFIX, RULES_DIR, load_examples, load_policy, rule_files
from policy_rules.rule_schema import RuleExample

RULE_FILES = rule_files(RULES_DIR)


@lru_cache(maxsize=1)
def _compiled() -> tuple[LexiconSet, RuleSet]:
    policy = load_policy(required_lexicons=REQUIRED_LEXICONS)
    lexicons = LexiconSet(list(policy.lexicons))
    return lexicons, RuleSet(list(policy.rules), lexicons)


def fired_rules(example: RuleExample) -> set[str]:
    """Ids of the rules that fire on one example (with the model output it assumes, if any)."""
    lexicons, rules = _compiled()
    pms = None
    if example.pms is not None:
        pms = PmsFacts(example.pms.known_patient, tuple(example.pms.controlled_drugs), tuple(example.pms.drugs),
                       tuple(example.pms.prior_auth_missing))
    item = TriageInput(id="example", sender="patient@example.com", subject=example.subject, body=example.text,
                       quoted=example.quoted, hidden_text=example.hidden_text,
                       attachment_names=tuple(example.attachment_names), auto_generated=example.auto_generated,
                       pms=pms)
    ctx = message_context(lexicons, item)
    if example.model is not None:
        ctx.model = ModelView(example.model.intent, example.model.probability,
                              {example.model.intent: example.model.probability})
    return {hit.rule.id for hit in rules.evaluate(ctx)}


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=[p.stem for p in RULE_FILES])
def test_rule_examples(rule_file):
    examples_file = rule_file.with_name(rule_file.stem + EXAMPLES_SUFFIX)
    assert examples_file.exists(), f"{rule_file.name} has no {examples_file.name}"
    examples = load_examples(examples_file)
    missed = [e.text for e in examples.fire if rule_file.stem not in fired_rules(e)]
    wrongly = [e.text for e in examples.no_fire if rule_file.stem in fired_rules(e)]
    assert not missed, f"{rule_file.stem} did not fire on: {missed}"
    assert not wrongly, f"{rule_file.stem} fired on: {wrongly}"


def test_every_rule_has_examples_and_every_examples_file_a_rule():
    rules = {p.stem for p in RULE_FILES}
    examples = {p.name[: -len(EXAMPLES_SUFFIX)] for p in RULES_DIR.glob(f"*{EXAMPLES_SUFFIX}")}
    assert rules == examples
