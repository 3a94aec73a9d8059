"""The lexicons a condition cannot hold without: a rule is only evaluated for a message whose scans have them.

Most rules never fire on most messages, and a rule that needs, say, a symptom term near a medicine term cannot
fire on a message with no symptom term at all. The need is worked out once, at compile time, as a list of
lexicon sets that must each have a match somewhere in the message (all of them: a conjunction of "any of these
lexicons"). It is a necessary condition only, never a sufficient one: a rule that passes is evaluated as
before, so skipping one changes no result. Whatever the analysis cannot vouch for (model, PMS, detectors,
patterns, `none`) needs nothing and is always evaluated.
"""

from collections.abc import Iterable, Mapping

from policy_rules.rule_schema import (
    AllCondition, AnyCondition, LexiconCondition, NamedCondition, NearCondition, PatternCondition, QuestionCondition,
    RefCondition, walk_conditions,
)

Need = tuple[frozenset[str], ...]  # every set must meet the message's lexicons; () needs nothing


class NeedAnalyser:
    """Needs of conditions, with each named condition's worked out once."""

    def __init__(self, named: Mapping[str, NamedCondition]) -> None:
        self.named = named
        self._named_needs: dict[str, Need] = {}

    def need(self, cond) -> Need:
        if isinstance(cond, LexiconCondition):
            return (frozenset({cond.lexicon.name}),)  # min_count is at least 1
        if isinstance(cond, NearCondition):
            return frozenset(cond.near.left), frozenset(cond.near.right)
        if isinstance(cond, QuestionCondition):
            return (frozenset(cond.question.about),)
        if isinstance(cond, AllCondition):
            return _simplest(tuple(clause for part in cond.all for clause in self.need(part)))
        if isinstance(cond, AnyCondition):
            # One of the parts must hold, so one of their needs: any lexicon of the parts' narrowest sets.
            needs = [self.need(part) for part in cond.any]
            if any(not need for need in needs):
                return ()
            return (frozenset().union(*(min(need, key=len) for need in needs)),)
        if isinstance(cond, RefCondition) and cond.ref in self.named:
            if cond.ref not in self._named_needs:
                self._named_needs[cond.ref] = self.need(self.named[cond.ref].when)
            return self._named_needs[cond.ref]
        return ()  # none, pattern, intent, pms, detector, message: holds without any lexicon


def _simplest(need: Need) -> Need:
    """The same need without repeats or sets implied by a narrower one, narrowest first (fails soonest)."""
    kept: list[frozenset[str]] = []
    for clause in sorted(set(need), key=lambda c: (len(c), sorted(c))):
        if not any(k <= clause for k in kept):
            kept.append(clause)
    return tuple(kept)


def lexicons_present(scans: Mapping) -> frozenset[str]:
    """Every lexicon with a match in any scanned field of one message."""
    return frozenset().union(*(scan.matches.keys() for scan in scans.values()))


def may_hold(need: Need, present: frozenset[str]) -> bool:
    return all(not present.isdisjoint(clause) for clause in need)


def fields_read(conditions: Iterable) -> frozenset[str]:
    """Every text field whose scan some condition reads: a field no condition reads (the sender's address, in
    today's rules) need not be scanned against every lexicon."""
    fields: set[str] = set()
    for tree in conditions:
        for cond, _ in walk_conditions(tree) if tree is not None else ():
            for kind, key in ((LexiconCondition, "lexicon"), (NearCondition, "near"), (QuestionCondition, "question"),
                              (PatternCondition, "pattern")):
                if isinstance(cond, kind):
                    fields.update(getattr(cond, key).fields)
    return frozenset(fields)
