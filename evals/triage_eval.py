"""Triage quality (`make eval`): intent P/R/F1 and escalation on the held-out split, and escalation of the
real consumer medication questions in ../shared/corpora/consumer_questions/ (skipped, saying so, if absent)."""

import argparse
import csv
import logging
import sys
import tempfile
from collections import Counter
from pathlib import Path

from sklearn.metrics import classification_report, f1_score

from connectors import model_store
from core.triage.dataset import load_split
from core.triage.engine import TriageInput, Triager
from data_contracts.models import Reason

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


def evaluate_held_out(triager: Triager) -> dict:
    """Metrics on the held-out rows (never used for training or tuning)."""
    _, held_out = load_split()
    results = triager.triage_many([TriageInput(id=r.id, sender=r.sender, subject=r.subject, body=r.body)
                                   for r in held_out])
    gold = [r.intent.value for r in held_out]
    predicted = [x.intent.value for x in results]
    print(f"== held-out split: {len(held_out)} rows (sha256(id) % 4 == 0), never trained or tuned on ==")
    print(classification_report(gold, predicted, digits=3, zero_division=0))
    escalate = [r for r, x in zip(held_out, results) if r.escalate]
    routine = [(r, x) for r, x in zip(held_out, results) if not r.escalate]
    missed = [r.id for r, x in zip(held_out, results) if r.escalate and not x.escalate]
    false = [(r.id, sorted({e.rule_id for e in x.evidence})) for r, x in routine if x.escalate]
    reason_hits = Counter(reason for r, x in zip(held_out, results) for reason in set(r.reasons) & set(x.reasons))
    reason_gold = Counter(reason for r in held_out for reason in r.reasons)
    metrics = {
        "macro_f1": f1_score(gold, predicted, average="macro"),
        "escalation_recall": 1 - len(missed) / max(len(escalate), 1),
        "false_escalation_rate": len(false) / max(len(routine), 1),
        "needs_reply_accuracy": sum(r.needs_reply == x.needs_reply for r, x in zip(held_out, results)) / len(held_out),
        "language_accuracy": sum(r.language == x.language for r, x in zip(held_out, results)) / len(held_out),
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
    if missed:
        print(f"missed escalations (ids): {', '.join(missed)}")
    if false:
        print("false escalations (id: rules): " + "; ".join(f"{i}: {','.join(rules)}" for i, rules in false))
    return metrics


def evaluate_consumer(triager: Triager, show: bool) -> float | None:
    """Share of the real consumer medication questions that escalate (all of them should)."""
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
    by_reason = Counter(reason.value for result in results for reason in result.reasons)
    print("reasons: " + ", ".join(f"{k} {v}" for k, v in by_reason.most_common()))
    if show:
        for item in missed:
            print(f"  not escalated: {item.id}: {(item.subject + ' ' + item.body).strip()[:160]}")
    return share


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--show-misses", action="store_true", help="print consumer questions that did not escalate")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a safety target is missed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="rxinbox-eval-") as tmp:
        # A fresh model trained on the training split only, so the numbers never depend on a stale cache.
        model, path = model_store.train_and_save(Path(tmp))
        triager = Triager.load(model_path=path)
        print(f"model {model.version}: {model.trained_rows} training rows, cv accuracy "
              f"{model.metrics['cv_accuracy']:.3f}, temperature {model.temperature:.2f}, "
              f"low-confidence threshold {model.threshold:.3f}\n")
        metrics = evaluate_held_out(triager)
        consumer = evaluate_consumer(triager, args.show_misses)
    safe = metrics["escalation_recall"] >= TARGETS["escalation_recall"] and (
        consumer is None or consumer >= TARGETS["consumer_escalated"])
    return 1 if args.strict and not safe else 0


if __name__ == "__main__":
    sys.exit(main())
