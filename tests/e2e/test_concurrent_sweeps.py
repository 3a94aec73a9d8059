"""Worker processes sweeping at once (two mailboxes, one of them by two processes) never process a message twice."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    TaskRunFilter,
    TaskRunFilterState,
    TaskRunFilterStateType,
    TaskRunFilterTags,
)
from prefect.client.schemas.objects import StateType
from prefect.settings import PREFECT_API_URL
from sqlalchemy import func, select

from connectors.database import open_database
from connectors.model_store import load_or_train, model_path, model_version, training_rows
from connectors.store import CaseStore
from core.audit import verify
from data_contracts import tables as t
from evals.mailgen import generate
from rxinbox.settings import get_settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MODEL_CACHE = Path(tempfile.gettempdir()) / "rxinbox-test-models"
MESSAGES = 40
BATCH = 4
MAILBOXES = ["inbox-a", "inbox-b"]
# A worker process loads everything (and opens the database), says it is ready, waits for the start
# line, then runs the real flow; the tag finds its task runs in the Prefect API.
WORKER = """
import sys, time
from pathlib import Path
from prefect import tags
from data_contracts.models import SweepParams
from flows.mailbox_sweep import mailbox_sweep
from tasks.context import sweep_context
mailbox, batch, tag, ready, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4]), Path(sys.argv[5])
sweep_context()
ready.touch()
while not go.exists():
    time.sleep(0.01)
with tags(tag):
    print(mailbox_sweep(SweepParams(mailbox=mailbox, batch_size=batch)).model_dump_json())
"""


def seed_triage_model(home: Path) -> None:
    """Copy the trained triage model into home: training it in every fresh home takes minutes on 2 cores.

    The cache is keyed by the model version (a hash of the training data, config and scikit-learn),
    so a stale artefact is never used.
    """
    load_or_train(MODEL_CACHE)
    source = model_path(MODEL_CACHE, model_version(training_rows()))
    (home / "models").mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, home / "models" / source.name)


def write_mailboxes(home: Path, root: Path, names: list[str]) -> None:
    lines = ["pharmacies:", "  - id: soendergade", "    name: Søndergade Apotek", "    mailboxes:"]
    for seed, name in enumerate(names, start=3):
        generate(root / name, MESSAGES, seed=seed)
        lines.append(f'      - {{kind: local, name: {name}, path: "{root / name}"}}')
    (home / "mailboxes.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


@contextmanager
def writes_held(engine):
    """Hold the database's write lock so every sweep stops at its first database access that needs it."""
    with engine.connect() as conn:
        transaction = conn.begin()  # BEGIN IMMEDIATE on SQLite: the write lock itself
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("LOCK TABLE audit_events IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            transaction.rollback()


def wait_until_blocked(tag: str, count: int, procs: list[subprocess.Popen], timeout: float = 120) -> None:
    """Wait until `count` sweeps each have a task running, i.e. stuck on the held lock.

    On SQLite that is their first read (every transaction is BEGIN IMMEDIATE); on PostgreSQL their
    first audit write, after listing the mailbox.
    """
    running = TaskRunFilter(tags=TaskRunFilterTags(all_=[tag]),
                            state=TaskRunFilterState(type=TaskRunFilterStateType(any_=[StateType.RUNNING])))
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while len(client.read_task_runs(task_run_filter=running)) < count:
            failed = [p for p in procs if p.poll() is not None]
            if failed or time.monotonic() > deadline:
                pytest.fail(f"sweeps did not all reach the lock: {failed[0].communicate()[1][-3000:] if failed else 'timeout'}")
            time.sleep(0.2)


def wait_until_ready(readies: list[Path], procs: list[subprocess.Popen], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not all(r.exists() for r in readies):
        failed = [p for p in procs if p.poll() is not None]
        if failed or time.monotonic() > deadline:
            pytest.fail(f"a worker did not get ready: {failed[0].communicate()[1][-3000:] if failed else 'timeout'}")
        time.sleep(0.05)


def run_workers(engine, mailboxes: list[str], tmp_path: Path) -> list[dict]:
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_HOME": str(tmp_path / "prefect")}
    tag, go = f"concurrency-test-{uuid.uuid4().hex[:8]}", tmp_path / "go"
    readies = [tmp_path / f"ready-{i}" for i in range(len(mailboxes))]
    procs = []
    try:
        procs = [subprocess.Popen([sys.executable, "-c", WORKER, name, str(BATCH), tag, str(ready), str(go)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for name, ready in zip(mailboxes, readies)]
        wait_until_ready(readies, procs)
        with writes_held(engine):
            go.touch()
            wait_until_blocked(tag, len(mailboxes), procs)
        outputs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]


def test_parallel_sweeps_process_each_message_once(db_home, tmp_path, prefect_harness):
    db_home.mkdir(parents=True, exist_ok=True)
    seed_triage_model(db_home)
    write_mailboxes(db_home, tmp_path / "mail", MAILBOXES)
    # Migrate and create the PHI key first, as `rxinbox serve` and the chain sweep do.
    engine = open_database(get_settings())

    # Three processes let go together from the held lock: two mailboxes swept in parallel, and
    # inbox-a by two processes at once, which then compete for the same messages.
    workers = ["inbox-a", "inbox-a", "inbox-b"]
    summaries = run_workers(engine, workers, tmp_path)

    handled = Counter()
    for name, summary in zip(workers, summaries):
        handled[name] += summary["processed"] + summary["quarantined"]
    assert handled == Counter({name: MESSAGES for name in MAILBOXES}), "each message handled by exactly one process"
    store = CaseStore(engine)
    events = list(store.audit_events())
    started = Counter(e.subject for e in events if e.event == "sweep.started" and e.details["new"] > 0)
    assert started == Counter({"mailbox:inbox-a": 2, "mailbox:inbox-b": 1}), \
        "both processes of inbox-a found new mail: they competed for the same messages"
    with engine.connect() as conn:
        per_mailbox = dict(conn.execute(select(t.messages.c.mailbox, func.count()).group_by(t.messages.c.mailbox)).all())
        cases = conn.execute(select(func.count()).select_from(t.cases)).scalar()
        quarantined = conn.execute(select(func.count()).select_from(t.quarantine)).scalar()
        outbox = conn.execute(select(func.count()).select_from(t.outbox)).scalar()
    assert per_mailbox == {name: MESSAGES for name in MAILBOXES}
    assert cases + quarantined == MESSAGES * len(MAILBOXES)
    assert verify(events).ok, "one unbroken audit chain written by all three processes"
    created = [e.subject for e in events if e.event == "case.created"]
    assert len(created) == len(set(created)) == cases
    delivered = [e.subject for e in events if e.event in ("draft.saved", "mail.sent")]
    assert len(delivered) == len(set(delivered)) == outbox, "every reply delivered and audited once"
    for name in MAILBOXES:
        assert store.unmarked_refs(name) == [] and store.pending_outbox(name) == []
