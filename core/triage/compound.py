"""Compound conditions (all, any, none) and named conditions (ref), compiled over the leaf compilers of rules.py.

Kept apart from rules.py so the leaf vocabulary and the way conditions combine can each be read on their own;
this module knows no leaf condition, so rules.py hands its compilers in (the imports stay one-way).
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core.triage.lexicon import LexiconSet
from policy_rules.rule_schema import (
    AllCondition, AnyCondition, DetectorCondition, NamedCondition, NoneCondition, PatternCondition, RefCondition,
    compound_parts,
)

# (field, matched text, start, end) in the original text of that field; pms/model hits have no span.
Hit = tuple[str, str, int | None, int | None]
Evaluator = Callable[[Any], list[Hit] | None]  # over one message's rules.RuleContext
LeafCompiler = Callable[[Any, LexiconSet], Evaluator]


class ConditionCompiler:
    """Turns validated conditions into evaluators; each named condition is compiled once and shared by every
    rule that refers to it."""

    def __init__(self, leaves: Mapping[type, LeafCompiler], lexicons: LexiconSet,
                 named: Sequence[NamedCondition] = ()) -> None:
        self.leaves = leaves
        self.lexicons = lexicons
        self.named = {cond.id: cond for cond in named}
        self._compiled: dict[str, Evaluator] = {}
        self._compiling: list[str] = []

    def compile(self, cond) -> Evaluator:
        if isinstance(cond, AllCondition):
            return self._all(cond)
        if isinstance(cond, AnyCondition):
            return self._any(cond)
        if isinstance(cond, NoneCondition):
            return self._none(cond)
        if isinstance(cond, RefCondition):
            return self.named_evaluator(cond.ref)
        return self.leaves[type(cond)](cond, self.lexicons)

    def named_evaluator(self, name: str) -> Evaluator:
        """The evaluator of a named condition (the loader has already refused unknown names and cycles; these
        checks guard conditions built in code)."""
        if name in self._compiled:
            return self._compiled[name]
        if name not in self.named:
            raise KeyError(f"unknown named condition {name!r}; known: {', '.join(sorted(self.named)) or 'none'} "
                           "(pass the policy's conditions to RuleSet)")
        if name in self._compiling:
            raise ValueError(f"named conditions refer to each other in a cycle: {' -> '.join(self._compiling)} "
                             f"-> {name}")
        self._compiling.append(name)
        try:
            evaluator = self.compile(self.named[name].when)
        finally:
            self._compiling.pop()
        self._compiled[name] = evaluator
        return evaluator

    def cost(self, cond) -> int:
        """Rough evaluation cost: lookups in the scan first, a regex over the whole text last."""
        if (compound := compound_parts(cond)) is not None:
            return max(self.cost(c) for c in compound[1])
        if isinstance(cond, RefCondition) and cond.ref in self.named:
            return self.cost(self.named[cond.ref].when)
        return 2 if isinstance(cond, (PatternCondition, DetectorCondition)) else 1

    def _all(self, cond: AllCondition) -> Evaluator:
        # The cheap parts run first so a failing one spares the regexes; hits keep the rule's own order.
        order = sorted(range(len(cond.all)), key=lambda i: self.cost(cond.all[i]))
        parts = [(i, self.compile(cond.all[i])) for i in order]

        def evaluate(ctx) -> list[Hit] | None:
            found_at: list[list[Hit]] = [[] for _ in parts]
            for i, part in parts:
                found = part(ctx)
                if found is None:
                    return None
                found_at[i] = found
            return [hit for found in found_at for hit in found]
        return evaluate

    def _any(self, cond: AnyCondition) -> Evaluator:
        parts = [self.compile(c) for c in cond.any]

        def evaluate(ctx) -> list[Hit] | None:
            hits: list[Hit] = []
            fired = False
            for part in parts:
                found = part(ctx)
                if found is not None:
                    fired = True
                    hits += found
            return hits if fired else None
        return evaluate

    def _none(self, cond: NoneCondition) -> Evaluator:
        parts = [self.compile(c) for c in cond.none]

        def evaluate(ctx) -> list[Hit] | None:
            # An absence has no span to show: it holds with no evidence of its own.
            return None if any(part(ctx) is not None for part in parts) else []
        return evaluate
