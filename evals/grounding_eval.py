"""Grounding eval (`make eval`): every draft for the demo mailbox and ≥500 generated requests against the demo
PMS must state only facts from its PMS facts, KB passages and template text.

Run from the repository root:  python -m evals.grounding_eval [--requests 520] [--seed 4] [--check]
"""

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

import rxinbox  # noqa: F401  (telemetry off before chromadb is imported)
from connectors.database import load_cipher, open_database
from connectors.knowledge_base import KnowledgeBase
from connectors.pms import ReferencePMS
from connectors.store import CaseStore
from core import pipeline
from core.drafting import Drafter
from core.grounding import verify
from core.parsing import parse_message
from core.records import StoredItem
from core.triage.engine import Triager
from data_contracts.models import Draft, ParsedMessage, Passage
from evals.grounding_requests import PHARMACY_JSON, REPO, generate
from rxinbox.settings import Settings
from tasks.context import SweepContext
from tasks.replies import plan_replies, retrieve

DEMO_MAILBOX = REPO / "datasets" / "demo" / "mailbox"
NOW = "2026-11-25T09:00:00+01:00"  # the demo's "today" (datasets/demo/README.md)
# Generated requests are planned at these instants in turn, so ready dates cross the order cut-off, weekends,
# short days (24 and 31 December) and public holidays (1 January): each renders a different date and weekday.
CLOCKS = tuple(datetime.fromisoformat(t) for t in (
    NOW, "2026-11-27T13:30:00+01:00", "2026-11-28T10:00:00+01:00", "2026-12-23T16:00:00+01:00",
    "2026-12-24T09:30:00+01:00", "2026-12-31T10:30:00+01:00",
))
MAILBOX = "grounding-eval"
BATCH = 500  # the sweep's default batch size
TARGET_DRAFT_MS = 20.0
WARM_UP = 8

log = logging.getLogger(__name__)


class Timed:
    """A real component with the time of each call of one method recorded (e.g. Drafter.plan)."""

    def __init__(self, target: object, method: str) -> None:
        self.target, self.method = target, method
        self.seconds: list[float] = []

    def __getattr__(self, name: str):
        attr = getattr(self.target, name)
        if name != self.method:
            return attr

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self.seconds.append(time.perf_counter() - started)
        return timed


@dataclass
class Report:
    """What the eval found; values of unsupported claims only in `details` (fictional demo data)."""

    requests: int = 0
    by_kind: Counter = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)
    drafts: int = 0
    unsupported: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (label, template, kinds)
    details: list[str] = field(default_factory=list)
    actions: Counter = field(default_factory=Counter)
    templates: Counter = field(default_factory=Counter)
    clocks: Counter = field(default_factory=Counter)  # messages planned at each instant
    intents: Counter = field(default_factory=Counter)  # (request kind, triaged intent)
    claims: Counter = field(default_factory=Counter)  # facts the verifier found in the drafts, by kind
    checked: list[tuple[Draft, list[Passage], list[str]]] = field(default_factory=list)  # what verify() was given
    outcomes: Counter = field(default_factory=Counter)
    draft_ms: list[float] = field(default_factory=list)  # Drafter.plan, per message
    planned: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)  # plan_replies and its batch stages, in total


@contextmanager
def _environment(home: Path) -> Iterator[None]:
    """RXINBOX_HOME and the clock for code that reads settings itself (Triager.load)."""
    saved = {k: os.environ.get(k) for k in ("RXINBOX_HOME", "RXINBOX_NOW")}
    os.environ.update(RXINBOX_HOME=str(home), RXINBOX_NOW=NOW)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def build_context(settings: Settings) -> SweepContext:
    """What tasks.context builds for a sweep, minus Prefect and the optional LLM (template drafts only)."""
    settings.ensure_dirs()
    engine = open_database(settings)
    pms = ReferencePMS(engine)
    pms.import_file(PHARMACY_JSON)
    kb = KnowledgeBase(settings)
    kb.index()
    drafter = Drafter.load(auto_send=settings.auto_send)
    # Timed proxies stand in for the real components: plan_replies cannot tell them apart.
    return SweepContext(settings=settings, cipher=load_cipher(settings), engine=engine, store=CaseStore(engine),
                        pms=pms, triager=Timed(Triager.load(), "triage_many"),  # type: ignore[arg-type]
                        drafter=Timed(drafter, "plan"), kb=Timed(kb, "search_many"),  # type: ignore[arg-type]
                        chat_model=None)


def messages(count: int, seed: int, include_demo: bool, drafter: Drafter,
             report: Report) -> dict[datetime, list[tuple[str, str, ParsedMessage]]]:
    """(label, ref, parsed) by planning instant: the demo mailbox at the demo's today, generated requests at
    each of CLOCKS in turn; all through parse_message."""
    raw: list[tuple[datetime, str, str, bytes]] = []
    if include_demo:
        raw += [(CLOCKS[0], f"demo/{p.name}", p.name, p.read_bytes()) for p in sorted(DEMO_MAILBOX.glob("*.eml"))]
        report.by_kind["demo mailbox"] += len(raw)
    for n, req in enumerate(generate(count, seed, dict(drafter.pharmacy.drug_aliases))):
        sender = "patient" if req.known_sender else "unknown"
        label = f"gen-{n:05d} {req.kind}/{req.language}/{sender}"
        raw.append((CLOCKS[n % len(CLOCKS)], label, f"gen-{n:05d}.eml", req.raw))
        report.by_kind[f"{req.kind} ({req.language}, {sender})"] += 1
    parsed: dict[datetime, list[tuple[str, str, ParsedMessage]]] = {}
    for now, label, ref, data in raw:
        outcome = parse_message(data)
        if outcome.message is None:
            report.failed.append(f"{label}: quarantined ({outcome.reason})")
        else:
            parsed.setdefault(now, []).append((label, ref, outcome.message))
    report.requests = len(raw)
    return parsed


def _plan(ctx: SweepContext, batch: list[tuple[str, str, ParsedMessage]], now: datetime,
          report: Report) -> list[tuple[str, ParsedMessage, StoredItem]]:
    """plan_replies for a batch; if the batch fails, message by message so the failing one is named."""
    fresh = [(ref, m) for _, ref, m in batch]
    try:
        started = time.perf_counter()
        items = plan_replies(ctx, MAILBOX, fresh, now)
        report.stage_seconds["plan_replies"] = report.stage_seconds.get("plan_replies", 0.0) + (
            time.perf_counter() - started)
        report.planned += len(fresh)
        return [(label, m, item) for (label, _, m), item in zip(batch, items)]
    except Exception:
        if len(batch) == 1:
            log.exception("planning failed for %s", batch[0][0])
            report.failed.append(f"{batch[0][0]}: planning raised (see log)")
            return []
    return [row for one in batch for row in _plan(ctx, [one], now, report)]


def check(ctx: SweepContext, planned: list[tuple[str, ParsedMessage, StoredItem]], report: Report) -> None:
    """Verify every draft against the facts, the passages the planner was given and its template's text."""
    drafter = ctx.drafter
    queries = [pipeline.kb_query(m, item.case.triage) if item.case else None for _, m, item in planned]
    passages = retrieve(ctx, queries)  # the same queries as plan_replies: the same passages
    for (label, _, item), found in zip(planned, passages):
        case = item.case
        if case is None:
            report.failed.append(f"{label}: no case")
            continue
        report.actions[case.action.value] += 1
        kind = label.split()[1].split("/")[0] if label.startswith("gen-") else "demo"
        report.intents[f"{kind}->{case.triage.intent.value}{'(escalated)' if case.triage.escalate else ''}"] += 1
        report.outcomes[case.outcome or "-"] += 1
        draft = case.draft
        report.templates[draft.template_id if draft else "(no draft)"] += 1
        if draft is None:
            continue
        report.drafts += 1
        template_text = drafter.renderer.template_sources(draft.template_id, draft.language)
        verdict = verify(draft.body, draft.facts, found, template_text=template_text, language=draft.language)
        report.checked.append((draft, found, template_text))
        report.claims.update(c.kind for c in verdict.claims)
        if not verdict.ok:
            report.unsupported.append((label, draft.template_id, verdict.unsupported_kinds))
            claims = "; ".join(f"{c.kind} {c.text!r} -> {c.value}" for c in verdict.unsupported)
            report.details.append(f"{label} {draft.language}/{draft.template_id}: {claims}\n{draft.body}")


def run(home: Path, count: int = 520, seed: int = 4, include_demo: bool = True) -> Report:
    """Load everything into a fresh home, plan a reply for every message, verify every draft."""
    report = Report()
    with _environment(home):
        settings = Settings(home=home, now=NOW)
        ctx = build_context(settings)
        by_clock = messages(count, seed, include_demo, ctx.drafter.target, report)
        # Warm-up: the targets are "after load", so first-call costs (embedder, caches) are not timed.
        first = next(iter(by_clock.values()), [])
        plan_replies(ctx, MAILBOX, [(ref, m) for _, ref, m in first[:WARM_UP]], CLOCKS[0])
        for timed in (ctx.triager, ctx.kb, ctx.drafter):
            timed.seconds.clear()
        planned = []
        for now, parsed in by_clock.items():
            report.clocks[f"{now:%Y-%m-%d %H:%M}"] = len(parsed)
            for start in range(0, len(parsed), BATCH):
                planned += _plan(ctx, parsed[start:start + BATCH], now, report)
        report.draft_ms = [s * 1000 for s in ctx.drafter.seconds]
        report.stage_seconds.update(triage=sum(ctx.triager.seconds), kb_retrieval=sum(ctx.kb.seconds),
                                    drafting=sum(ctx.drafter.seconds))
        check(ctx, planned, report)
    return report


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else sum(values)


def _counts(counter: Counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def print_report(report: Report, details: bool, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    mark = "PASS" if not report.unsupported and not report.failed else "FAIL"
    out.write(f"requests                 {report.requests} ({_counts(report.by_kind)})\n")
    out.write(f"planned at (local time)  {', '.join(f'{k} ({v})' for k, v in report.clocks.items())}\n")
    out.write(f"drafts produced          {report.drafts}\n")
    out.write(f"facts checked            {sum(report.claims.values())} ({_counts(report.claims)})\n")
    out.write(f"unsupported facts        {len(report.unsupported)} drafts   target 0  {mark}\n")
    for label, template, kinds in report.unsupported:
        out.write(f"  {label.split()[0]}: template {template}, unsupported {', '.join(kinds)}\n")
    for line in report.failed:
        out.write(f"  not planned: {line}\n")
    out.write(f"actions                  {_counts(report.actions)}\n")
    out.write(f"refill outcomes          {_counts(report.outcomes)}\n")
    out.write(f"templates                {_counts(report.templates)}\n")
    out.write(f"request kind -> intent   {_counts(report.intents)}\n")
    if report.draft_ms:
        mean, p95 = statistics.fmean(report.draft_ms), _p95(report.draft_ms)
        out.write(f"drafting (Drafter.plan)  mean {mean:.2f} ms, p95 {p95:.2f} ms per message   target <= "
                  f"{TARGET_DRAFT_MS:.0f} ms  {'PASS' if p95 <= TARGET_DRAFT_MS else 'MISS'}\n")
    if report.planned:
        per = {k: v * 1000 / report.planned for k, v in report.stage_seconds.items()}
        rest = per["plan_replies"] - per["triage"] - per["kb_retrieval"] - per["drafting"]
        out.write(f"plan_replies, whole      {per['plan_replies']:.2f} ms per message (batches of {BATCH}): triage "
                  f"{per['triage']:.2f}, KB retrieval {per['kb_retrieval']:.2f}, drafting {per['drafting']:.2f}, "
                  f"PMS lookups and the rest {rest:.2f}\n")
    if details:
        out.write("\n--- unsupported claims (fictional demo data) ---\n" + "\n".join(report.details) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=520, help="generated requests besides the demo mailbox")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--no-demo", action="store_true", help="leave the demo mailbox out")
    parser.add_argument("--details", action="store_true", help="print unsupported claims and their drafts")
    parser.add_argument("--check", action="store_true", help="exit 1 if any draft states an unsupported fact")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="rxinbox-grounding-") as tmp:
        report = run(Path(tmp) / "home", args.requests, args.seed, not args.no_demo)
    print_report(report, args.details)
    return 1 if args.check and (report.unsupported or report.failed) else 0


if __name__ == "__main__":
    sys.exit(main())
