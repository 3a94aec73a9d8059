"""`make bench`: sweep N generated messages through the whole flow; print msgs/s and peak memory."""

import argparse
import logging
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

WORK = Path(tempfile.mkdtemp(prefix="rxinbox-bench-"))
os.environ["RXINBOX_HOME"] = str(WORK / "home")
(WORK / "home" / "prefect").mkdir(parents=True)
os.environ.setdefault("RXINBOX_NOW", "2026-11-25T09:00:00+01:00")

import rxinbox  # noqa: E402,F401  (telemetry off, PREFECT_HOME under the bench home)
from connectors.knowledge_base import KnowledgeBase  # noqa: E402
from connectors.pms import ReferencePMS  # noqa: E402
from data_contracts.models import SweepParams  # noqa: E402
from evals.mailgen import REPO, generate  # noqa: E402
from flows.mailbox_sweep import mailbox_sweep  # noqa: E402
from tasks.context import sweep_context  # noqa: E402

log = logging.getLogger("bench")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    started = time.perf_counter()
    ctx = sweep_context()
    ReferencePMS(ctx.engine).import_file(REPO / "datasets" / "demo" / "pharmacy.json")
    KnowledgeBase(ctx.settings).index()
    empty = WORK / "empty"
    empty.mkdir()
    mailbox_sweep(SweepParams(source=str(empty), mailbox="warmup"))  # starts Prefect, loads models
    startup = time.perf_counter() - started

    source = WORK / "mail"
    generate(source, args.messages)
    t0 = time.perf_counter()
    summary = mailbox_sweep(SweepParams(source=str(source), mailbox="bench"))
    elapsed = time.perf_counter() - t0

    handled = summary.processed + summary.quarantined
    out = sys.stdout
    out.write(f"start-up (server, models, KB): {startup:.1f} s\n")
    out.write(f"swept {handled} of {summary.seen} messages in {elapsed:.1f} s: {handled / elapsed:.0f} messages/s\n")
    out.write(f"escalated {summary.escalated}, drafted {summary.drafted}, auto-sent {summary.auto_sent}, "
              f"closed {summary.closed}, quarantined {summary.quarantined}\n")
    out.write(f"peak memory (RSS of the sweep process): {peak_rss_mb():.0f} MB\n")


if __name__ == "__main__":
    main()
