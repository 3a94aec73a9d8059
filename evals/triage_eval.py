"""Triage quality (`make eval`): intent P/R/F1 and escalation on the held-out split, and escalation of the
real consumer medication questions in ../shared/corpora/consumer_questions/ (skipped, saying so, if absent).

`--dev` reports on the training split instead (out-of-fold, see evals/triage_dev.py) with every miss and
false escalation spelled out, and never prints held-out results: tune on that, check on the held-out split.
The consumer questions are split in two halves by a hash of their id; `--show-misses` prints only the dev
half's misses, so rules tuned on it can be checked on the other half.
"""

import argparse
import csv
import hashlib
import logging
import sys
import tempfile
from collections import Counter
from pathlib import Path

from sklearn.metrics import classification_report, f1_score

from connectors import model_store
from core.triage.dataset import TriageRow, load_split
from core.triage.engine import REQUIRED_LEXICONS, TriageInput, Triager
from data_contracts.models import Reason, TriageResult
from evals.triage_dev import fold_models, out_of_fold_results, print_details
from policy_rules.loader import load_policy
from rxinbox.settings import get_settings

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CONSUMER_DIR = SHARED / "corpora" / "consumer_questions"
TARGETS = {"escalation_recall": 1.0, "consumer_escalated": 0.99, "false_escalation_rate": 0.10, "macro_f1": 0.90}


def consumer_questions(directory: Path = CONSUMER_DIR) -> list[TriageInput]:
    """The 755 unique real questions: MedicationQA (question) and TREC LiveQA (subject + message)."""
    items: list[TriageInput] = []
    seen: set[str] = set()
    with (directory / "medicationqa.tsv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            question = (row.get("Question") or "").strip()
            if question and question not in seen:
                seen.add(question)
                items.append(TriageInput(id=f"mqa-{len(items)}", sender=None, subject="", body=question))
    with (directory / "liveqa_test_questions.tsv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            items.append(TriageInput(id=row["qid"], sender=None, subject=row.get("subject") or "",
                                     body=row.get("message") or ""))
    return items


def _mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def is_dev_half(item_id: str) -> bool:
    """The consumer questions' tuning half: an even sha256 of the id (the other half checks the tuning)."""
    return hashlib.sha256(item_id.encode("utf-8")).digest()[-1] % 2 == 0


def report(title: str, rows: list[TriageRow], results: list[TriageResult], list_ids: bool) -> dict:
    """Intent P/R/F1, escalation recall, false escalations, reply and language accuracy of triaged rows."""
    gold = [r.intent.value for r in rows]
    predicted = [x.intent.value for x in results]
    print(f"== {title} ==")
    print(classification_report(gold, predicted, digits=3, zero_division=0))
    escalate = [r for r in rows if r.escalate]
    routine = [(r, x) for r, x in zip(rows, results) if not r.escalate]
    missed = [r.id for r, x in zip(rows, results) if r.escalate and not x.escalate]
    false = [(r.id, sorted({e.rule_id for e in x.evidence})) for r, x in routine if x.escalate]
    reason_hits = Counter(reason for r, x in zip(rows, results) for reason in set(r.reasons) & set(x.reasons))
    reason_gold = Counter(reason for r in rows for reason in r.reasons)
    metrics = {
        "macro_f1": f1_score(gold, predicted, average="macro"),
        "escalation_recall": 1 - len(missed) / max(len(escalate), 1),
        "false_escalation_rate": len(false) / max(len(routine), 1),
        "needs_reply_accuracy": sum(r.needs_reply == x.needs_reply for r, x in zip(rows, results)) / len(rows),
        "language_accuracy": sum(r.language == x.language for r, x in zip(rows, results)) / len(rows),
    }
    print(f"macro-F1                 {metrics['macro_f1']:.3f}   target >= {TARGETS['macro_f1']:.2f}  "
          f"{_mark(metrics['macro_f1'] >= TARGETS['macro_f1'])}")
    print(f"escalation recall        {metrics['escalation_recall']:.3f}   ({len(escalate) - len(missed)}/"
          f"{len(escalate)}) target 1.00  {_mark(not missed)}")
    print(f"false-escalation rate    {metrics['false_escalation_rate']:.3f}   ({len(false)}/{len(routine)} routine) "
          f"target <= {TARGETS['false_escalation_rate']:.2f}  "
          f"{_mark(metrics['false_escalation_rate'] <= TARGETS['false_escalation_rate'])}")
    print(f"needs_reply accuracy     {metrics['needs_reply_accuracy']:.3f}")
    print(f"language accuracy        {metrics['language_accuracy']:.3f}")
    print("reason recall (gold reason also predicted): " + ", ".join(
        f"{reason.value} {reason_hits[reason]}/{reason_gold[reason]}" for reason in Reason if reason_gold[reason]))
    if list_ids and missed:
        print(f"missed escalations (ids): {', '.join(missed)}")
    if list_ids and false:
        print("false escalations (id: rules): " + "; ".join(f"{i}: {','.join(rules)}" for i, rules in false))
    return metrics


def evaluate_held_out(triager: Triager) -> dict:
    """Metrics on the held-out rows (never used for training or tuning)."""
    _, held_out = load_split()
    results = triager.triage_many([TriageInput(id=r.id, sender=r.sender, subject=r.subject, body=r.body)
                                   for r in held_out])
    title = f"held-out split: {len(held_out)} rows (sha256(id) % 4 == 0), never trained or tuned on"
    return report(title, held_out, results, list_ids=True)


def evaluate_consumer(triager: Triager, show: bool) -> float | None:
    """Share of the real consumer medication questions that escalate (all of them should), per half."""
    if not CONSUMER_DIR.is_dir():
        print(f"\n== consumer questions: SKIPPED, {CONSUMER_DIR} not found (../shared is not beside the checkout) ==")
        return None
    items = consumer_questions()
    results = triager.triage_many(items)
    missed = [item for item, result in zip(items, results) if not result.escalate]
    share = 1 - len(missed) / len(items)
    print(f"\n== consumer questions ({CONSUMER_DIR}) ==")
    print(f"escalated                {share:.3f}   ({len(items) - len(missed)}/{len(items)}) target >= "
          f"{TARGETS['consumer_escalated']:.2f}  {_mark(share >= TARGETS['consumer_escalated'])}")
    for name, dev in (("dev half", True), ("check half", False)):
        half = [item.id for item in items if is_dev_half(item.id) == dev]
        half_missed = sum(is_dev_half(item.id) == dev for item in missed)
        print(f"  {name:22s} {1 - half_missed / max(len(half), 1):.3f}   ({len(half) - half_missed}/{len(half)})")
    by_reason = Counter(reason.value for result in results for reason in result.reasons)
    print("reasons: " + ", ".join(f"{k} {v}" for k, v in by_reason.most_common()))
    if show:
        print("not escalated, dev half only (the check half is never shown):")
        for item in missed:
            if is_dev_half(item.id):
                print(f"  not escalated: {item.id}: {(item.subject + ' ' + item.body).strip()[:160]}")
    return share


def run_dev(show: bool) -> None:
    """Out-of-fold report on the training split, and the consumer questions with the full-data model."""
    rows = model_store.training_rows()
    settings = get_settings()
    own = (settings.pharmacy_name, settings.pharmacy_email, settings.pharmacy_email.rpartition("@")[2])
    policy = load_policy(required_lexicons=REQUIRED_LEXICONS)
    folds = fold_models(rows, model_store.model_version(rows))
    print(f"dev mode: {len(rows)} training rows, {len(folds.models)} folds "
          f"({'; '.join(m.thresholds_text() for m in folds.models)}); held-out split not evaluated\n")
    results = out_of_fold_results(policy, rows, folds, own)
    report("training split, out-of-fold (dev)", rows, results, list_ids=False)
    print_details(rows, results)
    evaluate_consumer(Triager(policy, folds.full, own), show)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dev", action="store_true", help="out-of-fold report on the training split only")
    parser.add_argument("--show-misses", action="store_true",
                        help="print the dev half of the consumer questions that did not escalate")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a safety target is missed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.dev:
        run_dev(args.show_misses)
        return 0
    with tempfile.TemporaryDirectory(prefix="rxinbox-eval-") as tmp:
        # A fresh model trained on the training split only, so the numbers never depend on a stale cache.
        model, path = model_store.train_and_save(Path(tmp))
        triager = Triager.load(model_path=path)
        print(f"model {model.version}: {model.trained_rows} training rows, cv accuracy "
              f"{model.metrics['cv_accuracy']:.3f}, temperature {model.temperature:.2f}, "
              f"{model.thresholds_text()}\n")
        metrics = evaluate_held_out(triager)
        consumer = evaluate_consumer(triager, args.show_misses)
    safe = metrics["escalation_recall"] >= TARGETS["escalation_recall"] and (
        consumer is None or consumer >= TARGETS["consumer_escalated"])
    return 1 if args.strict and not safe else 0


if __name__ == "__main__":
    sys.exit(main())
