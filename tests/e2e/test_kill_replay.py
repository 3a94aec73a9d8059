"""A sweep killed (SIGKILL) at random points and restarted handles every message exactly once."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connectors.database import open_database
from connectors.store import CaseStore
from core.audit import verify
from data_contracts import tables as t
from evals.mailgen import generate
from rxinbox.settings import get_settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MESSAGES = 240
KILLS = 4


def start_sweep(source: Path, env: dict) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "rxinbox.cli", "sweep", "--source", str(source), "--batch-size", "8", "--json"]
    # A new session so the kill also takes Prefect's temporary server with it.
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {name: conn.execute(select(func.count()).select_from(table)).scalar()
                for name, table in (("messages", t.messages), ("cases", t.cases), ("quarantine", t.quarantine),
                                    ("outbox", t.outbox))}


def test_killed_sweeps_replay_exactly_once(home, tmp_path):
    source = tmp_path / "mail"
    generate(source, MESSAGES, seed=11)
    # The crash window is every point of a real run: find its length, then kill at random fractions.
    env = {**os.environ, "RXINBOX_HOME": str(home), "PREFECT_HOME": str(tmp_path / "prefect")}
    rng = random.Random(20261125)
    killed = 0
    for _ in range(KILLS):
        proc = start_sweep(source, env)
        time.sleep(rng.uniform(3.0, 12.0))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait(timeout=60)
    final = start_sweep(source, env)
    out, err = final.communicate(timeout=600)
    assert final.returncode == 0, err.decode()[-2000:]
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert killed >= 1, "no sweep was still running when killed: the test did not exercise a crash"

    engine = open_database(get_settings())
    n = counts(engine)
    assert n["messages"] == MESSAGES == n["cases"] + n["quarantine"]
    assert summary["seen"] == MESSAGES
    store = CaseStore(engine)
    assert store.unmarked_refs("local") == []
    assert store.pending_outbox("local") == []
    drafts = list((home / "drafts").rglob("*.eml")) + list((home / "outbox").rglob("*.eml"))
    assert len(drafts) == n["outbox"], "every outbox row delivered exactly once"
    assert verify(store.audit_events()).ok
    created = [e.subject for e in store.audit_events() if e.event == "case.created"]
    assert len(created) == len(set(created)) == n["cases"]
