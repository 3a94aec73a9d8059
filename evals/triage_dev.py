"""Development mode of the triage eval: out-of-fold triage of the TRAINING split, for tuning rules and model.

Every training row is triaged by the real rules plus a model that never saw it: the rows are cut into the
same stratified folds the classifier's own cross-validation uses, a pipeline and its escalation head are fitted
on the other folds, and its temperature, low-confidence and escalation-head thresholds are calibrated on the
other folds' out-of-fold scores (so a fold's own labels never choose its thresholds). The held-out split is not
read here at all.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.triage.classifier import (
    PIPELINE_CONFIG, IntentModel, calibrate, export, out_of_fold, train, training_arrays,
)
from core.triage.dataset import TriageRow
from core.triage.engine import TriageInput, Triager
from data_contracts.models import TriageResult
from policy_rules.loader import Policy

SNIPPET_CHARS = 200


@dataclass(frozen=True)
class FoldModels:
    """One model per fold (trained without that fold), the fold of every row, and the full-data model."""

    fold_of: np.ndarray
    models: list[IntentModel]
    full: IntentModel


def fold_models(rows: Sequence[TriageRow], version: str, config: dict = PIPELINE_CONFIG) -> FoldModels:
    """The classifier's own cross-validation models, each calibrated on the other folds, plus the full model
    (what classifier.train() returns, from the same folds)."""
    texts, labels, escalate = training_arrays(rows, config)
    oof = out_of_fold(texts, labels, escalate, config)
    models = []
    for k, fitted in enumerate(oof.models):
        others = oof.fold_of != k
        models.append(export(fitted, calibrate(oof, labels, escalate, config, others), f"{version}-fold{k}",
                             trained_rows=int(others.sum())))
    return FoldModels(oof.fold_of, models, train(rows, version, config, oof))


def out_of_fold_results(policy: Policy, rows: Sequence[TriageRow], folds: FoldModels,
                        own_addresses: tuple[str, ...] = ()) -> list[TriageResult]:
    """Each row triaged by the rules and the model of its own fold (which never saw it)."""
    results: list[TriageResult | None] = [None] * len(rows)
    for k, model in enumerate(folds.models):
        index = [i for i in range(len(rows)) if folds.fold_of[i] == k]
        triager = Triager(policy, model, own_addresses)
        fold_results = triager.triage_many([TriageInput(id=rows[i].id, sender=rows[i].sender,
                                                        subject=rows[i].subject, body=rows[i].body) for i in index])
        for i, result in zip(index, fold_results):
            results[i] = result
    return [r for r in results if r is not None]


def snippet(row: TriageRow) -> str:
    """Subject and the start of the body on one line."""
    body = " ".join(row.body.split())[:SNIPPET_CHARS]
    return f"[{row.subject}] {body}"


def print_details(rows: Sequence[TriageRow], results: Sequence[TriageResult]) -> None:
    """Missed and false escalations with their text and fired rules, and the intent confusions."""
    missed = [(r, x) for r, x in zip(rows, results) if r.escalate and not x.escalate]
    false = [(r, x) for r, x in zip(rows, results) if not r.escalate and x.escalate]
    print(f"\n-- missed escalations ({len(missed)}) --")
    for r, x in missed:
        print(f"  {r.id} gold {','.join(sorted(g.value for g in r.reasons))} | model {x.intent.value} "
              f"p={x.confidence:.2f}\n      {snippet(r)}")
    print(f"\n-- false escalations ({len(false)}) --")
    for r, x in false:
        rules = sorted({e.rule_id for e in x.evidence})
        print(f"  {r.id} gold {r.intent.value} | fired {','.join(rules)} | "
              f"matched {'; '.join(sorted({e.matched_text[:40] for e in x.evidence if e.field != 'model'}))}"
              f"\n      {snippet(r)}")
    fired = Counter(rule for _, x in false for rule in {e.rule_id for e in x.evidence})
    print("false escalations by rule: " + ", ".join(f"{k} {v}" for k, v in fired.most_common()))
    pairs = Counter((r.intent.value, x.intent.value) for r, x in zip(rows, results) if r.intent != x.intent)
    print(f"\n-- intent confusions, gold -> predicted ({sum(pairs.values())} rows) --")
    for (gold, predicted), count in pairs.most_common():
        print(f"  {count:3d}  {gold:22s} -> {predicted}")
