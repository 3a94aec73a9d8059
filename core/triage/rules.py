"""Rule evaluation: each leaf condition of the schema compiles to a function over one message's facts (all, any,
none and ref combine them in compound.py)."""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core.triage.compound import ConditionCompiler, Evaluator, Hit
from core.triage.inputs import PmsFacts
from core.triage.lexicon import LexiconSet, Match, Scan
from core.triage.literals import required_literals
from core.triage.normalise import fold
from core.triage.suspicious import DETECTORS
from data_contracts.models import Intent
from policy_rules.rule_schema import (
    DetectorCondition, IntentCondition, LexiconCondition, MessageCondition, NamedCondition, NearCondition,
    PatternCondition, PmsCondition, QuestionCondition, Rule,
)

_DRUG_WORD = re.compile(r"[a-z][a-z\-]{2,}")


@dataclass(frozen=True, slots=True)
class ModelView:
    """What the classifier said about one message."""

    top: Intent
    confidence: float
    probabilities: dict[Intent, float]
    escalation_score: float | None = None  # the escalation head's score (None: the model has none)


@dataclass(slots=True)
class RuleContext:
    """The facts one message offers the rules: scans per field, raw texts, PMS facts, model output."""

    scans: dict[str, Scan]
    texts: dict[str, str]
    model: ModelView | None = None
    pms: PmsFacts | None = None
    auto_generated: bool = False
    has_attachments: bool = False
    _detected: dict[str, list[Hit]] = field(default_factory=dict)
    # A machine reply's whole text, before what it hands back was blanked: the suspicious rules read this.
    unblanked: "RuleContext | None" = None


@dataclass(frozen=True, slots=True)
class RuleHit:
    rule: Rule
    hits: tuple[Hit, ...]


def _span_hit(scan: Scan, name: str, start: int, end: int) -> Hit:
    first, last = scan.folded.span(start, end)
    return (name, scan.folded.original[first:last], first, last)


def _lexicon(cond: LexiconCondition, lexicons: LexiconSet) -> Evaluator:
    spec = cond.lexicon
    groups = set(spec.groups) if spec.groups else None
    respect = spec.negation == "respect"

    def evaluate(ctx: RuleContext) -> list[Hit] | None:
        hits: list[Hit] = []
        terms: set[str] = set()
        for name in spec.fields:
            scan = ctx.scans.get(name)
            if scan is None:
                continue
            for m in scan.matches.get(spec.name, ()):
                if (respect and m.negated) or (groups is not None and m.group not in groups):
                    continue
                terms.add(m.term)
                hits.append(_span_hit(scan, name, m.start, m.end))
        return hits if len(terms) >= spec.min_count else None
    return evaluate


def _near(cond: NearCondition, lexicons: LexiconSet) -> Evaluator:
    spec = cond.near
    respect = spec.negation == "respect"

    def same(scan: Scan, a: Match, b: Match) -> bool:
        if spec.scope == "clause":
            return a.clause == b.clause
        return spec.scope == "text" or scan.tokens[a.first].sentence == scan.tokens[b.first].sentence

    def usable(scan: Scan, names: list[str]) -> list[Match]:
        return [m for name in names for m in scan.matches.get(name, ()) if not (respect and m.negated)]

    def blocked_sentences(scan: Scan) -> set[int]:
        return {scan.tokens[m.first].sentence for name in spec.unless_in_sentence for m in scan.matches.get(name, ())}

    def evaluate(ctx: RuleContext) -> list[Hit] | None:
        hits: list[Hit] = []
        for name in spec.fields:
            scan = ctx.scans.get(name)
            if scan is None:
                continue
            right = usable(scan, spec.right)
            blocked = blocked_sentences(scan) if right and spec.unless_in_sentence else set()
            for a in usable(scan, spec.left) if right else ():
                if scan.tokens[a.first].sentence in blocked:
                    continue
                for b in right:
                    gap = max(a.first, b.first) - min(a.last, b.last)
                    if gap <= spec.window and same(scan, a, b) and scan.tokens[b.first].sentence not in blocked:
                        start, end = min(a.start, b.start), max(a.end, b.end)
                        hits.append(_span_hit(scan, name, start, end))
        return hits or None
    return evaluate


def _question(cond: QuestionCondition, lexicons: LexiconSet) -> Evaluator:
    spec = cond.question

    def evaluate(ctx: RuleContext) -> list[Hit] | None:
        hits: list[Hit] = []
        for name in spec.fields:
            scan = ctx.scans.get(name)
            if scan is None or not scan.questions:
                continue
            blocked = {scan.tokens[m.first].sentence for lex in spec.unless_in_sentence
                       for m in scan.matches.get(lex, ())}
            hits += [_span_hit(scan, name, m.start, m.end) for lex in spec.about for m in scan.matches.get(lex, ())
                     if scan.tokens[m.first].sentence in scan.questions - blocked]
        return hits or None
    return evaluate


def _pattern(cond: PatternCondition, lexicons: LexiconSet) -> Evaluator:
    spec = cond.pattern
    regex = re.compile(spec.regex)
    literals = required_literals(spec.regex)

    def evaluate(ctx: RuleContext) -> list[Hit] | None:
        hits = []
        for name in spec.fields:
            scan = ctx.scans.get(name)
            if scan is None:
                continue
            text = scan.folded.text
            # No literal the regex needs is in the text: it cannot match, so it need not run.
            if literals is not None and not any(map(text.__contains__, literals)):
                continue
            hits += [_span_hit(scan, name, m.start(), m.end()) for m in regex.finditer(text) if m.end() > m.start()]
        return hits or None
    return evaluate


def _intent(cond: IntentCondition, lexicons: LexiconSet) -> Evaluator:
    spec = cond.intent
    wanted = set(spec.any_of)

    def evaluate(ctx: RuleContext) -> list[Hit] | None:
        model = ctx.model
        if model is None:
            return None
        if spec.min_probability is None:
            return [("model", f"intent={model.top.value} p={model.confidence:.2f}", None, None)] \
                if model.top in wanted else None
        hits: list[Hit] = [("model", f"intent={i.value} p={model.probabilities.get(i, 0.0):.2f}", None, None)
                           for i in spec.any_of if model.probabilities.get(i, 0.0) >= spec.min_probability]
        return hits or None
    return evaluate


def drug_words(names: tuple[str, ...]) -> set[str]:
    """The substance words of PMS drug names ('Oxycodone 5 mg' → {'oxycodone'})."""
    return {w for name in names for w in _DRUG_WORD.findall(fold(name))[:2] if len(w) >= 4}


def _mentions(ctx: RuleContext, names: tuple[str, ...]) -> list[Hit]:
    wanted = drug_words(names)
    hits: list[Hit] = []
    for fname in ("subject", "body", "quoted"):
        scan = ctx.scans.get(fname)
        if scan is None:
            continue
        for token in scan.tokens:
            if any(token.text == w or (token.text.startswith(w) and len(token.text) - len(w) <= 2)
                   for w in wanted):
                hits.append(_span_hit(scan, fname, token.start, token.end))
    return hits


def _pms(cond: PmsCondition, lexicons: LexiconSet) -> Evaluator:
    spec = cond.pms

    def evaluate(ctx: RuleContext) -> list[Hit] | None:
        pms = ctx.pms
        if pms is None:
            return None
        checks = ((spec.known_patient, pms.known_patient), (spec.has_controlled, bool(pms.controlled_drugs)),
                  (spec.has_prior_auth_missing, bool(pms.prior_auth_missing)))
        if any(want is not None and want != have for want, have in checks):
            return None
        if spec.identity is not None and pms.identity not in spec.identity:
            return None
        hits: list[Hit] = []
        if spec.mentions is not None:
            hits = _mentions(ctx, getattr(pms, spec.mentions))
            if not hits:
                return None
        # Evidence names the fact, not the patient's drugs: minimum necessary.
        facts = [f"pms.{name}" for name, want in (("known_patient", spec.known_patient),
                 ("controlled_drugs", spec.has_controlled), ("prior_auth_missing", spec.has_prior_auth_missing),
                 (spec.mentions, spec.mentions)) if name is not None and want is not None]
        # The gate's status only: the names it compared never reach the evidence.
        if spec.identity is not None:
            facts.append(f"pms.identity={pms.identity}")
        return hits + [("pms", fact, None, None) for fact in facts]
    return evaluate


def _detector(cond: DetectorCondition, lexicons: LexiconSet) -> Evaluator:
    detect = DETECTORS[cond.detector]
    fields = ("subject", "body", "quoted", "html")

    def evaluate(ctx: RuleContext) -> list[Hit] | None:
        hits = ctx._detected.get(cond.detector)
        if hits is None:
            hits = [(name, ctx.texts[name][s:e][:120], s, e) for name in fields if ctx.texts.get(name)
                    for s, e in detect(ctx.texts[name])]
            ctx._detected[cond.detector] = hits
        return hits or None
    return evaluate


def _message(cond: MessageCondition, lexicons: LexiconSet) -> Evaluator:
    spec = cond.message

    def evaluate(ctx: RuleContext) -> list[Hit] | None:
        if (spec.auto_generated is not None and spec.auto_generated != ctx.auto_generated) or (
                spec.has_attachments is not None and spec.has_attachments != ctx.has_attachments):
            return None
        return [("sender", "message facts matched", None, None)]
    return evaluate


# The leaf vocabulary: every leaf condition model of the schema has exactly one compiler here; all, any, none
# and ref are compound.py's.
COMPILERS: dict[type, Callable[..., Evaluator]] = {
    LexiconCondition: _lexicon, NearCondition: _near, QuestionCondition: _question, PatternCondition: _pattern,
    IntentCondition: _intent, PmsCondition: _pms, DetectorCondition: _detector, MessageCondition: _message,
}


def compile_condition(cond, lexicons: LexiconSet, named: Sequence[NamedCondition] = ()) -> Evaluator:
    """The evaluator of a validated condition (named: the conditions its `ref`s may name)."""
    return ConditionCompiler(COMPILERS, lexicons, named).compile(cond)
