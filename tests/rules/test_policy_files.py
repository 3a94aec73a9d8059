"""Every policy YAML validates; the JSON Schemas are current; a broken file fails naming file, line and field."""

import shutil
import textwrap

import pytest

from core.triage.context import message_context
from core.triage.engine import REQUIRED_LEXICONS
from core.triage.inputs import TriageInput
from core.triage.lexicon import LexiconSet
from core.triage.ruleset import RuleSet
from policy_rules.lexicon_schema import Lexicon
from policy_rules.loader import (
    CONDITIONS_DIR,
    EXAMPLES_SUFFIX,
    LEXICON_DIR,
    RULES_DIR,
    SCHEMA_DIR,
    SCHEMA_FILES,
    load_examples,
    load_lexicons,
    load_policy,
    load_rules,
    schema_text,
)
from policy_rules.yaml_errors import RuleFileError

GOOD_RULE = """\
id: {rule_id}
title: A test rule
description: Fires on the word zyxwv, for the reload test.
reason: clinical_judgment
priority: high
when:
  lexicon: {lexicon}
metadata:
  why: Only exists inside this test.
  source: [tests]
  added: 2025-11-25
"""
NAMED = """\
id: {name}
title: A named test condition
description: Exists only inside this test.
when:
  {condition}
metadata:
  why: Only exists inside this test.
  source: [tests]
  added: 2026-11-26
"""


def test_every_policy_file_validates():
    policy = load_policy(required_lexicons=REQUIRED_LEXICONS)
    assert len(policy.rules) >= 20
    assert {lex.id for lex in policy.lexicons} >= set(REQUIRED_LEXICONS) | {"controlled_medicines", "negation_cues"}
    for path in RULES_DIR.glob(f"*{EXAMPLES_SUFFIX}"):
        load_examples(path)


def test_rule_ids_are_unique_and_stable():
    rules = load_rules(RULES_DIR, {lex.id for lex in load_lexicons()})
    ids = [rule.id for rule in rules]
    assert len(ids) == len(set(ids))
    assert all(rule.metadata.why and rule.metadata.source for rule in rules)


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_json_schema_is_current(name):
    committed = (SCHEMA_DIR / name).read_text(encoding="utf-8")
    assert committed == schema_text(SCHEMA_FILES[name]), f"run: python -m policy_rules.loader ({name} is stale)"


def _copy_policy(tmp_path):
    rules = tmp_path / "escalation"
    lexicons = tmp_path / "lexicons"
    shutil.copytree(RULES_DIR, rules)
    shutil.copytree(LEXICON_DIR, lexicons)
    shutil.copytree(CONDITIONS_DIR, tmp_path / "conditions")
    return rules, lexicons


def _load_with_named(tmp_path, **conditions: str):
    """Load the policy plus named conditions (id → its `when`); the load error."""
    rules, lexicons = _copy_policy(tmp_path)
    for name, condition in conditions.items():
        (tmp_path / "conditions" / f"{name}.yaml").write_text(NAMED.format(name=name, condition=condition),
                                                             encoding="utf-8")
    with pytest.raises(RuleFileError) as caught:
        load_policy(rules, lexicons, conditions_dir=tmp_path / "conditions")
    return caught.value


def _load_with_condition(tmp_path, condition: str):
    """Load the policy plus one test rule whose `when` is `condition`; the rule's path and the load error."""
    rules, lexicons = _copy_policy(tmp_path)
    path = rules / "zz-test.yaml"
    path.write_text(GOOD_RULE.format(rule_id="zz-test", lexicon="symptoms").replace(
        "  lexicon: symptoms", f"  {condition}"), encoding="utf-8")
    with pytest.raises(RuleFileError) as caught:
        load_policy(rules, lexicons)
    return path, caught.value


def test_broken_rule_field_names_file_line_and_field(tmp_path):
    rules, lexicons = _copy_policy(tmp_path)
    path = rules / "adverse-reaction.yaml"
    text = path.read_text(encoding="utf-8").replace("priority: high", "priority: high\nseverety: high")
    path.write_text(text, encoding="utf-8")
    line = text.splitlines().index("severety: high") + 1
    with pytest.raises(RuleFileError) as caught:
        load_policy(rules, lexicons)
    message = str(caught.value)
    assert str(path) in message and f":{line}:" in message and "severety" in message


def test_unknown_condition_name_fails_loudly(tmp_path):
    path, error = _load_with_condition(tmp_path, "any:\n    - lexicon: symptoms\n    - keyword: pain")
    assert error.path == str(path) and error.line == 9 and "keyword" in error.message


def test_unknown_lexicon_name_fails_with_its_line(tmp_path):
    rules, lexicons = _copy_policy(tmp_path)
    path = rules / "zz-test.yaml"
    path.write_text(GOOD_RULE.format(rule_id="zz-test", lexicon="symptomz"), encoding="utf-8")
    with pytest.raises(RuleFileError) as caught:
        load_policy(rules, lexicons)
    assert caught.value.line == 7 and "symptomz" in str(caught.value)


def test_broken_lexicon_fails_with_location(tmp_path):
    rules, lexicons = _copy_policy(tmp_path)
    path = lexicons / "symptoms.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("negatable: true", "negatable: maybe"), encoding="utf-8")
    with pytest.raises(RuleFileError) as caught:
        load_policy(rules, lexicons)
    assert caught.value.path == str(path) and caught.value.field == "negatable" and caught.value.line is not None


def test_invalid_yaml_and_regex_fail_with_location(tmp_path):
    path, error = _load_with_condition(tmp_path, "pattern: '(unclosed'")
    assert error.line == 7 and "regular expression" in error.message
    path.write_text("id: [unclosed\n", encoding="utf-8")
    with pytest.raises(RuleFileError) as caught:
        load_policy(path.parent, tmp_path / "lexicons")
    assert "invalid YAML" in caught.value.message and caught.value.line is not None


def test_a_key_given_twice_fails_with_its_line(tmp_path):
    """Plain YAML keeps the last of two equal keys: a second `exclude:` would silently drop the first list."""
    rules, lexicons = _copy_policy(tmp_path)
    path = lexicons / "symptoms.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "exclude:\n  - only this one\n", encoding="utf-8")
    with pytest.raises(RuleFileError) as caught:
        load_policy(rules, lexicons)
    assert caught.value.path == str(path) and "'exclude' appears twice" in caught.value.message
    assert caught.value.line == len(text.splitlines()) + 1


def test_rules_reload_without_code_changes(tmp_path):
    """A pharmacy adds a lexicon and a rule as YAML; loading again picks both up."""
    rules, lexicons = _copy_policy(tmp_path)
    (lexicons / "local_words.yaml").write_text(textwrap.dedent("""\
        id: local_words
        title: Local words
        description: A pharmacy's own vocabulary.
        sources: [pharmacy]
        groups:
          - {name: words, lang: any, terms: [zyxwv]}
        """), encoding="utf-8")
    (rules / "local-word.yaml").write_text(GOOD_RULE.format(rule_id="local-word", lexicon="local_words"),
                                           encoding="utf-8")
    policy = load_policy(rules, lexicons)
    lexicon_set = LexiconSet(list(policy.lexicons))
    ctx = message_context(lexicon_set, TriageInput(id="1", sender=None, subject="", body="Hello zyxwv"))
    rule_set = RuleSet(list(policy.rules), lexicon_set, policy.conditions)
    assert "local-word" in {hit.rule.id for hit in rule_set.evaluate(ctx)}
    assert isinstance(policy.lexicons[0], Lexicon)


def test_unknown_identity_status_fails_loudly(tmp_path):
    path, error = _load_with_condition(tmp_path, "pms: {identity: [name_mismatched]}")
    message = str(error)
    assert error.path == str(path) and error.line == 7
    assert "when.pms.identity" in message and "'name_mismatch'" in message, "names the field and the allowed statuses"


def test_a_ref_resolves_to_its_named_condition(tmp_path):
    rules, lexicons = _copy_policy(tmp_path)
    (tmp_path / "conditions" / "sting-words.yaml").write_text(
        NAMED.format(name="sting-words", condition="pattern: 'zyx(wv|qq)'"), encoding="utf-8")
    (rules / "zz-test.yaml").write_text(GOOD_RULE.format(rule_id="zz-test", lexicon="symptoms").replace(
        "  lexicon: symptoms", "  ref: sting-words"), encoding="utf-8")
    policy = load_policy(rules, lexicons, conditions_dir=tmp_path / "conditions")
    assert {"sting-words", "broadcast-mail"} <= {cond.id for cond in policy.conditions}
    lexicon_set = LexiconSet(list(policy.lexicons))
    rule_set = RuleSet(list(policy.rules), lexicon_set, policy.conditions)
    for body, fires in (("Hello zyxqq", True), ("Hello zyxab", False)):
        ctx = message_context(lexicon_set, TriageInput(id="1", sender=None, subject="", body=body))
        assert ("zz-test" in {hit.rule.id for hit in rule_set.evaluate(ctx)}) is fires


def test_an_unknown_ref_fails_with_its_location(tmp_path):
    path, error = _load_with_condition(tmp_path, "any:\n    - lexicon: symptoms\n    - ref: broadcast-mial")
    assert error.path == str(path) and error.line == 9 and "broadcast-mial" in error.message
    assert "broadcast-mail" in error.message, "names the known conditions"


def test_an_unknown_lexicon_in_a_named_condition_fails_with_its_location(tmp_path):
    error = _load_with_named(tmp_path, **{"bad-words": "lexicon: symptomz"})
    assert error.path.endswith("bad-words.yaml") and error.line == 5 and "symptomz" in error.message


def test_a_ref_cycle_fails_with_its_location(tmp_path):
    error = _load_with_named(tmp_path, **{"cycle-a": "ref: cycle-b",
                                          "cycle-b": "all:\n    - lexicon: symptoms\n    - ref: cycle-a"})
    assert error.path.endswith(".yaml") and error.line is not None and "cycle" in error.message
    assert "cycle-a -> cycle-b -> cycle-a" in error.message or "cycle-b -> cycle-a -> cycle-b" in error.message
    self_ref = _load_with_named(tmp_path / "self", **{"loop": "ref: loop"})
    assert self_ref.path.endswith("loop.yaml") and self_ref.line == 5 and "loop -> loop" in self_ref.message
