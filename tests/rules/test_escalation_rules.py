"""One parametrised test per escalation rule file: its examples must fire, its counter-examples must not."""

from datetime import date
from functools import lru_cache

import pytest

from core.identity import check_identity
from core.triage.engine import REQUIRED_LEXICONS
from core.triage.inputs import PmsFacts, TriageInput
from core.triage.lexicon import LexiconSet
from core.triage.context import message_context
from core.triage.rules import ModelView
from core.triage.ruleset import RuleSet
from data_contracts.models import ParsedMessage, Patient
from policy_rules.loader import EXAMPLES_SUFFIX, RULES_DIR, load_examples, load_policy, rule_files
from policy_rules.example_schema import RuleExample

RULE_FILES = rule_files(RULES_DIR)
SENDER = "patient@example.com"


@lru_cache(maxsize=1)
def _compiled() -> tuple[LexiconSet, RuleSet]:
    policy = load_policy(required_lexicons=REQUIRED_LEXICONS)
    lexicons = LexiconSet(list(policy.lexicons))
    return lexicons, RuleSet(list(policy.rules), lexicons, policy.conditions)


def example_facts(example: RuleExample) -> PmsFacts | None:
    """The example's PMS stub as triage sees it; a patient_name runs the real identity gate on the text."""
    stub = example.pms
    if stub is None:
        return None
    identity = stub.identity
    if stub.patient_name is not None:
        first, _, last = stub.patient_name.rpartition(" ")
        patient = Patient(patient_id="example", first_name=first, last_name=last, date_of_birth=date(1970, 1, 1),
                          email=SENDER)
        parsed = ParsedMessage(message_key="example", message_id=None, content_sha256="0", sender=SENDER,
                               subject=example.subject, thread_id="example", body_text=example.text,
                               quoted_text=example.quoted, hidden_text=example.hidden_text)
        identity = check_identity(parsed, [patient]).status
    return PmsFacts(stub.known_patient, tuple(stub.controlled_drugs), tuple(stub.drugs),
                    tuple(stub.prior_auth_missing), identity)


def fired_rules(example: RuleExample) -> set[str]:
    """Ids of the rules that fire on one example (with the model output it assumes, if any)."""
    lexicons, rules = _compiled()
    item = TriageInput(id="example", sender=SENDER, subject=example.subject, body=example.text,
                       quoted=example.quoted, hidden_text=example.hidden_text,
                       attachment_names=tuple(example.attachment_names), auto_generated=example.auto_generated,
                       pms=example_facts(example))
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
