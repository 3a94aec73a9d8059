"""The two rule prefilters (a regex's required literals, a rule's needed lexicons) never change a result."""

import re
from dataclasses import replace
from datetime import date
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import core.triage.rules as rules_module
from core.triage.context import message_context
from core.triage.dataset import load_split
from core.triage.inputs import PmsFacts, TriageInput
from core.triage.lexicon import LexiconSet
from core.triage.literals import required_literals
from core.triage.prefilter import NeedAnalyser, fields_read, may_hold
from core.triage.rules import ModelView, RuleContext
from core.triage.ruleset import ENGINE_FIELDS, RuleSet
from policy_rules.lexicon_schema import Lexicon, TermGroup
from policy_rules.loader import load_policy
from policy_rules.rule_schema import NamedCondition, PatternCondition, Rule, walk_conditions

SAMPLE_ROWS = 1500  # enough bodies to meet every common wording, small enough for a unit test

# (regex, the literal set expected): None means the regex always runs.
LITERAL_CASES = [
    (r"refill|renew", ("refill", "renew")),
    (r"\b(?:oxycodon|morfin)\b", ("oxycodon", "morfin")),
    (r"colou?r", ("colour", "color")),
    (r"[bp]ill", ("bill", "pill")),
    (r"\d+ ?mg\b", ("mg",)),
    (r"dose (?:doubled|twice)", ("dose doubled", "dose twice")),
    (r"(?:dobbelt|double) ?dos[ie]s?", ("dobbelt dose", "dobbelt dosi", "dobbeltdose", "dobbeltdosi", "double dose",
                                      "double dosi", "doubledose", "doubledosi")),
    (r"\bpain(?! free)", ("pain",)),
    (r"(?=\w*pain)\w+ache", ("ache",)),
    (r"(?<=dr\. )\w+", None),                  # the lookbehind's words are not part of the match
    (r"(?:side effect|bivirkning)s?\W+\w+", ("side effect", "bivirkning")),
    (r"pre[a-z]y", ("pre",)),                  # 26 strings: cut back to their common beginning
    (r"(?i)urgent", None),                     # case-insensitive: the analysis does not model it
    (r"(?i:stop)ped", None),
    (r"(\w+) and \1", None),                   # back-reference
    (r"(a)?(?(1)b|c)d", None),                 # conditional group
    (r"(?:abc)?", None),                       # matches the empty string
    (r"x*", None),
    (r"\d+", None),                            # no literal at all
    (r"\w+@\w+\.\w+", ("@",)),
    (r"[^a]bc|\wd", ("bc", "d")),               # each alternative gives its own literal
    (r"[^a]bc|\w", None),                      # one alternative has no literal
    (r"(?:ring|call) (?:us|me)+ back", (" back",)),  # the unbounded repeat ends the run: the longest is kept
]
SAMPLE_TEXTS = [
    "", " ", "please refill my inhaler", "can you renew the prescription", "my colour is off", "the color",
    "a pill a day", "the bill for october", "taken 500 mg twice", "500mg", "dose doubled by the doctor",
    "dose twice a day", "jeg tog en dobbelt dosis", "a doubledose", "pain free since monday", "pain in my back",
    "headache again", "dr. hansen said", "side effects: nausea", "bivirkninger, kvalme", "preay", "prezy",
    "URGENT please", "stopped", "STOPped", "this and this", "bd", "cd", "abc", "xx", "12345",
    "write to a@b.dk", "xbc", "zd", "oxycodon 5 mg", "morfinpumpe", "painache", "please call us back",
    "ring me back", "ring usus back", "refilled",
]


def _matches_hold_a_literal(regex: str, literals: tuple[str, ...] | None, text: str) -> bool:
    """The filter's promise: a text it skips (no literal in it) is one the regex finds nothing in."""
    return literals is None or re.search(regex, text) is None or any(lit in text for lit in literals)


@pytest.mark.parametrize(("regex", "expected"), LITERAL_CASES)
def test_required_literals_of_a_regex(regex, expected):
    assert required_literals(regex) == expected


@pytest.mark.parametrize("regex", [case[0] for case in LITERAL_CASES])
def test_every_match_holds_a_literal(regex):
    literals = required_literals(regex)
    assert all(_matches_hold_a_literal(regex, literals, text) for text in SAMPLE_TEXTS)
    # The samples must exercise the filter: a regex with literals matches at least one of them.
    assert literals is None or any(re.search(regex, text) for text in SAMPLE_TEXTS)


def _near_misses(regex: str) -> st.SearchStrategy[str]:
    """Texts of the letters and literal runs written in the regex itself, not in the computed set (a set that
    forgot an alternative would never generate it): the near misses where a wrong set skips a match."""
    runs = re.findall(r"[a-z ]+", regex)
    letters = sorted(set("".join(runs)) | set(" 1@."))
    pieces = sorted({run[i:j] for run in runs for i in range(len(run)) for j in range(i + 1, len(run) + 1)})
    part = st.one_of(st.sampled_from(pieces), st.text(st.sampled_from(letters), max_size=3))
    return st.lists(part, max_size=8).map("".join)


@pytest.mark.parametrize("regex", [regex for regex, expected in LITERAL_CASES if expected is not None])
def test_the_literal_filter_never_skips_a_match(regex):
    literals = required_literals(regex)

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_near_misses(regex))
    def check(text):
        assert _matches_hold_a_literal(regex, literals, text), text
    check()


# --- the real policy over training rows -------------------------------------------------------------------


@lru_cache(maxsize=1)
def policy():
    return load_policy()


@lru_cache(maxsize=1)
def contexts() -> tuple[RuleContext, ...]:
    """Scanned training rows (never held-out ones), with the row's label standing in for the model and every
    other row a PMS record, so intent and pms conditions take part too."""
    lexicons = LexiconSet(list(policy().lexicons))
    pms = PmsFacts(known_patient=True, controlled_drugs=("Oxycodone 5 mg",), drugs=("Oxycodone 5 mg", "Metformin"))
    result = []
    for i, row in enumerate(load_split()[0][:SAMPLE_ROWS]):
        item = TriageInput(id=row.id, sender=row.sender, subject=row.subject, body=row.body,
                           pms=pms if i % 2 else None)
        ctx = message_context(lexicons, item)
        ctx.model = ModelView(top=row.intent, confidence=0.9, probabilities={row.intent: 0.9})
        result.append(ctx)
    return tuple(result)


def policy_patterns() -> list[str]:
    trees = [rule.when for rule in policy().rules] + [rule.unless for rule in policy().rules if rule.unless]
    trees += [cond.when for cond in policy().conditions]
    return sorted({node.pattern.regex for tree in trees for node, _ in walk_conditions(tree)
                   if isinstance(node, PatternCondition)})


def test_every_policy_pattern_holds_a_literal_in_every_match():
    texts = [scan.folded.text for ctx in contexts() for scan in ctx.scans.values()]  # what the regexes run on
    patterns = policy_patterns()
    assert patterns, "the policy has pattern conditions"
    literals = {regex: required_literals(regex) for regex in patterns}
    skipped = [(regex, text) for regex in patterns for text in texts
               if not _matches_hold_a_literal(regex, literals[regex], text)]
    assert not skipped, skipped[:3]


def _fired(rule_set: RuleSet, ctx: RuleContext) -> list[tuple[str, tuple]]:
    return [(hit.rule.id, hit.hits) for hit in rule_set.evaluate(ctx)]


def _fired_unfiltered(rule_set: RuleSet, ctx: RuleContext) -> list[tuple[str, tuple]]:
    """Every rule's own fire, with no lexicon prefilter (the rule set was compiled with no literal filter)."""
    return [(c.rule.id, tuple(hits)) for c in rule_set.rules if (hits := c.fire(ctx)) is not None]


def test_prefilters_change_no_fired_rule_or_hit(monkeypatch):
    filtered = RuleSet(list(policy().rules), LexiconSet(list(policy().lexicons)), policy().conditions)
    assert any(c.need for c in filtered.rules), "some rule has a lexicon need to test"
    monkeypatch.setattr(rules_module, "required_literals", lambda regex: None)
    unfiltered = RuleSet(list(policy().rules), LexiconSet(list(policy().lexicons)), policy().conditions)
    differ = [ctx.texts["body"][:80] for ctx in contexts()
              if _fired(filtered, ctx) != _fired_unfiltered(unfiltered, ctx)]
    assert not differ, differ[:3]
    assert sum(bool(_fired(filtered, ctx)) for ctx in contexts()) > 0, "rules fire on the sample"


def test_fields_no_condition_reads_are_not_scanned_and_change_nothing():
    rule_set = RuleSet(list(policy().rules), LexiconSet(list(policy().lexicons)), policy().conditions)
    assert ENGINE_FIELDS <= rule_set.fields and "sender" not in rule_set.fields  # no rule reads the sender today
    lexicons = LexiconSet(list(policy().lexicons))
    for row in load_split()[0][:300]:
        item = TriageInput(id=row.id, sender=row.sender, subject=row.subject, body=row.body)
        every, read = message_context(lexicons, item), message_context(lexicons, item, fields=rule_set.fields)
        for ctx in (every, read):
            ctx.model = ModelView(top=row.intent, confidence=0.9, probabilities={row.intent: 0.9})
        assert "sender" not in read.scans and _fired(rule_set, every) == _fired(rule_set, read)


def test_a_field_a_rule_reads_is_scanned():
    assert fields_read([rule({"lexicon": {"name": "aches", "fields": ["sender"]}}).when]) == {"sender"}
    assert fields_read([rule({"any": [{"pattern": {"regex": "x", "fields": ["html"]}},
                                      {"near": {"left": ["aches"], "right": ["rashes"], "fields": ["attachment"]}}]}
                             ).when]) == {"html", "attachment"}
    assert "sender" in RuleSet([rule({"lexicon": {"name": "aches", "fields": ["sender"]}})], LEXICONS).fields


# --- the lexicon prefilter on rules built here ------------------------------------------------------------

LEXICONS = LexiconSet([
    Lexicon(id="aches", title="Aches", description="Test symptoms.", sources=["tests"], negatable=False,
            groups=[TermGroup(name="en", lang="en", terms=["headache", "back pain"])]),
    Lexicon(id="rashes", title="Rashes", description="Test skin signs.", sources=["tests"], negatable=False,
            groups=[TermGroup(name="en", lang="en", terms=["rash", "hives"])]),
])
ACHE, RASH, NEITHER = "I have a headache today.", "A rash on my arm.", "Where is my order?"


def rule(when: dict) -> Rule:
    return Rule.model_validate({
        "id": "test-rule", "title": "Test rule", "description": "Exists only inside this test.",
        "reason": "new_symptoms", "when": when,
        "metadata": {"why": "Only exists inside this test.", "source": ["tests"], "added": date(2026, 11, 26)},
    })


def named(name: str, when: dict) -> NamedCondition:
    return NamedCondition.model_validate({
        "id": name, "title": "Named test condition", "description": "Exists only inside this test.", "when": when,
        "metadata": {"why": "Only exists inside this test.", "source": ["tests"], "added": date(2026, 11, 26)},
    })


def evaluated(when: dict, body: str, conditions: tuple[NamedCondition, ...] = ()) -> tuple[bool, bool]:
    """(whether the rule's condition ran, whether the rule fired) for one message."""
    rule_set = RuleSet([rule(when)], LEXICONS, conditions)
    calls = []

    def spy(ctx, evaluate=rule_set.rules[0].evaluate):
        calls.append(ctx)
        return evaluate(ctx)
    rule_set.rules = [replace(rule_set.rules[0], evaluate=spy)]
    ctx = message_context(LEXICONS, TriageInput(id="1", sender=None, subject="", body=body))
    fired = bool(rule_set.evaluate(ctx))
    return bool(calls), fired


def test_an_all_with_a_lexicon_is_skipped_without_it():
    when = {"all": [{"lexicon": "aches"}, {"pattern": "a"}]}
    assert evaluated(when, NEITHER) == (False, False)
    assert evaluated(when, RASH) == (False, False)
    assert evaluated(when, ACHE) == (True, True)


def test_an_any_of_lexicons_needs_one_of_them():
    when = {"any": [{"lexicon": "aches"}, {"lexicon": "rashes"}]}
    assert NeedAnalyser({}).need(rule(when).when) == (frozenset({"aches", "rashes"}),)
    assert evaluated(when, NEITHER) == (False, False)
    assert evaluated(when, ACHE) == (True, True)
    assert evaluated(when, RASH) == (True, True)


@pytest.mark.parametrize("other", [
    {"pattern": "order"}, {"intent": {"any_of": ["order_status"]}}, {"pms": {"known_patient": True}},
    {"detector": "base64_blob"}, {"none": [{"lexicon": "rashes"}]}, {"message": {"has_attachments": False}},
])
def test_an_any_with_a_branch_needing_no_lexicon_is_never_skipped(other):
    when = {"any": [{"lexicon": "aches"}, other]}
    assert NeedAnalyser({}).need(rule(when).when) == ()
    ran, _ = evaluated(when, NEITHER)
    assert ran


def test_a_ref_is_followed_to_its_named_condition():
    conditions = (named("achy", {"all": [{"lexicon": "aches"}, {"pattern": "head"}]}),)
    when = {"all": [{"ref": "achy"}, {"pattern": "today"}]}
    assert evaluated(when, RASH, conditions) == (False, False)
    assert evaluated(when, ACHE, conditions) == (True, True)


def test_near_and_all_need_every_lexicon_they_read():
    near = rule({"near": {"left": ["aches"], "right": ["rashes"], "window": 5}}).when
    both = frozenset({"aches"}), frozenset({"rashes"})
    assert NeedAnalyser({}).need(near) == both
    assert not may_hold(both, frozenset({"aches"}))
    assert may_hold(both, frozenset({"aches", "rashes", "other"}))
