"""The policy's rules compiled once, and evaluated per message: each rule's `when`, then its `unless` gate.

A rule is skipped when its prefilter shows it cannot hold (prefilter.py); the suspicious rules read a machine
reply's whole text (context.py keeps it as `unblanked`), every other rule the text with what it hands back
blanked.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from core.triage.compound import ConditionCompiler, Evaluator, Hit
from core.triage.lexicon import LexiconSet
from core.triage.prefilter import Need, NeedAnalyser, fields_read, lexicons_present, may_hold
from core.triage.rules import COMPILERS, RuleContext, RuleHit
from data_contracts.models import Reason
from policy_rules.rule_schema import NamedCondition, Rule

# Fields the engine reads itself, whatever the rules read: the model's text, no-reply signals, PMS mentions.
ENGINE_FIELDS = frozenset({"subject", "body", "quoted"})


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    evaluate: Evaluator
    unless: Evaluator | None = None  # the rule's gate: when it holds, the rule stays quiet
    need: Need = ()  # lexicons `when` cannot hold without (prefilter.py)

    def fire(self, ctx: RuleContext) -> list[Hit] | None:
        """The rule's hits, or None; the gate is only looked at once `when` has fired (most rules never do)."""
        hits = self.evaluate(ctx)
        if hits is None or (self.unless is not None and self.unless(ctx) is not None):
            return None
        return hits


class RuleSet:
    """Enabled rules compiled once; evaluation returns every rule that fired with its hits."""

    def __init__(self, rules: list[Rule], lexicons: LexiconSet, conditions: Sequence[NamedCondition] = ()) -> None:
        """conditions: the named conditions the rules' `ref`s name (Policy.conditions)."""
        compiler = ConditionCompiler(COMPILERS, lexicons, conditions)
        # Every named condition compiles here, once, whether a rule uses it yet or not.
        self.conditions = {cond.id: compiler.named_evaluator(cond.id) for cond in conditions}
        needs = NeedAnalyser({cond.id: cond for cond in conditions})
        self.rules = [CompiledRule(r, compiler.compile(r.when),
                                   None if r.unless is None else compiler.compile(r.unless), needs.need(r.when))
                      for r in rules if r.enabled]
        # Scanned fields: those a condition reads, and those the engine reads itself (the model's text,
        # no-reply signals, PMS drug mentions).
        self.fields = ENGINE_FIELDS | fields_read([part for r in rules if r.enabled for part in (r.when, r.unless)]
                                                  + [cond.when for cond in conditions])
        self.by_reason: dict[Reason, list[str]] = {}
        for compiled in self.rules:
            self.by_reason.setdefault(compiled.rule.reason, []).append(compiled.rule.id)

    def evaluate(self, ctx: RuleContext) -> list[RuleHit]:
        fired = []
        present = lexicons_present(ctx.scans)
        whole, whole_present = ctx, present
        if ctx.unblanked is not None:
            whole = ctx.unblanked
            whole.model = ctx.model
            whole_present = lexicons_present(whole.scans)
        for compiled in self.rules:
            view, have = (whole, whole_present) if compiled.rule.reason is Reason.suspicious else (ctx, present)
            if compiled.need and not may_hold(compiled.need, have):
                continue  # it could not fire: skipping it changes nothing
            hits = compiled.fire(view)
            if hits is not None:
                fired.append(RuleHit(compiled.rule, tuple(hits)))
        return fired
