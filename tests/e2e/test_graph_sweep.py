"""Sweeps of a Microsoft 365 mailbox through the Graph stand-in: killed and restarted, then resynchronised.

The sweep runs as a real subprocess (its own Prefect, SQLite and O365 connector) against the
stand-in in this process; RXINBOX_GRAPH_BASE_URL and RXINBOX_GRAPH_TEST_TOKEN point it there.
"""

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from connectors.database import open_database
from connectors.graph_auth import BASE_URL_ENV, TEST_TOKEN_ENV
from connectors.graph_mailbox import DRAFTED_CATEGORY, KEY_PROPERTY, PROCESSED_CATEGORY, STAGE_PROPERTY
from connectors.pms import ReferencePMS
from connectors.store import CaseStore
from core.audit import verify
from data_contracts import tables as t
from evals.mailgen import load_rows, render
from rxinbox.settings import get_settings
from tests.conftest import REPO
from tests.e2e.graph_standin import GraphStandIn

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MAILBOX = "apotek@soendergade-apotek.example"
SWEEP = ("from flows.mailbox_sweep import mailbox_sweep; from data_contracts.models import SweepParams; "
         "print(mailbox_sweep(SweepParams(mailbox='m365', batch_size={batch})).model_dump_json())")


def fill(standin: GraphStandIn, count: int, seed: int) -> list[str]:
    rng, rows = random.Random(seed), load_rows()
    return [standin.store.deliver(render(rows[n % len(rows)], n, rng)).immutable_id for n in range(count)]


def write_config(home: Path, processed_folder: str | None) -> None:
    home.mkdir(parents=True, exist_ok=True)
    mailbox = {"kind": "graph", "name": "m365", "tenant_id": "standin-tenant", "client_id": "standin-client",
               "client_secret_env": "RXINBOX_TEST_GRAPH_SECRET", "mailbox": MAILBOX,
               "processed_folder": processed_folder}
    config = {"pharmacies": [{"id": "soendergade", "name": "Søndergade Apotek", "mailboxes": [mailbox]}]}
    (home / "mailboxes.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    ReferencePMS(open_database(get_settings())).import_file(REPO / "datasets" / "demo" / "pharmacy.json")


def start_sweep(env: dict, batch: int) -> subprocess.Popen:
    # A new session so the kill also takes Prefect's temporary server with it.
    return subprocess.Popen([sys.executable, "-c", SWEEP.replace("{batch}", str(batch))], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def kill_when_hung(standin: GraphStandIn, proc: subprocess.Popen) -> None:
    """Wait until the sweep is stuck on the planted request, then SIGKILL its whole process group."""
    while not standin.hanging.wait(1.0):
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"sweep ended before reaching the planted crash point:\n{err.decode()[-3000:]}")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    standin.release_hangs()


def sweep_env(home: Path, tmp_path: Path, standin: GraphStandIn) -> dict:
    return {**os.environ, "RXINBOX_HOME": str(home), "PREFECT_HOME": str(tmp_path / "prefect"),
            BASE_URL_ENV: standin.base_url, TEST_TOKEN_ENV: "standin-token"}


def finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-3000:]
    return json.loads(out.decode().strip().splitlines()[-1])


def test_500_messages_killed_twice_end_with_one_threaded_draft_per_case(home, tmp_path):
    with GraphStandIn(MAILBOX, latency=0.001) as standin:
        originals = fill(standin, 500, seed=23)
        write_config(home, "rxinbox-processed")
        env = sweep_env(home, tmp_path, standin)
        standin.add_fault("throttle", r"/messages/delta$", after=1, retry_after="1")
        standin.add_fault("drop", r"/\$value$", after=40)
        # Crash 1: mid-fetch of the second batch (message 150 of 500).
        standin.add_fault("hang", r"^GET .*/\$value$", after=149)
        kill_when_hung(standin, start_sweep(env, batch=100))
        # Crash 2: while saving reply drafts, between createReply and filling in the 11th draft.
        standin.add_fault("hang", r"^PATCH .*/messages/", body="rxinboxDraftStage", after=10)
        kill_when_hung(standin, start_sweep(env, batch=100))
        summary = finish(start_sweep(env, batch=100))

        engine = open_database(get_settings())
        store = CaseStore(engine)
        with engine.connect() as conn:
            n_messages = conn.execute(select(func.count()).select_from(t.messages)).scalar()
            n_cases = conn.execute(select(func.count()).select_from(t.cases)).scalar()
            n_quarantined = conn.execute(select(func.count()).select_from(t.quarantine)).scalar()
            outbox = conn.execute(select(t.outbox.c.outbound_id, t.outbox.c.kind)).all()
        assert n_messages == 500 == n_cases + n_quarantined
        assert store.unmarked_refs("m365") == [] and store.pending_outbox("m365") == []
        created = [e.subject for e in store.audit_events() if e.event == "case.created"]
        assert len(created) == len(set(created)) == n_cases
        assert verify(store.audit_events()).ok
        assert summary["seen"] < 500, "the last run should only have seen what the killed runs left"

        mail = standin.store
        drafts_folder = mail.well_known["drafts"]
        drafts = [m for m in mail.messages.values() if m.props["isDraft"]]
        keys = [m.extended.get(KEY_PROPERTY) for m in drafts]
        expected = sorted(row.outbound_id for row in outbox if row.kind == "draft")
        assert expected, "the sweep should have drafted replies"
        assert sorted(keys) == expected, "exactly one draft per case with a reply, none lost, none doubled"
        by_message_id = {m.props["internetMessageId"]: m for m in mail.messages.values() if not m.props["isDraft"]}
        for draft in drafts:
            original = by_message_id[draft.in_reply_to]
            assert draft.folder == drafts_folder and draft.extended[STAGE_PROPERTY] == "filled"
            assert draft.props["conversationId"] == original.props["conversationId"]
            assert draft.references[-1] == original.props["internetMessageId"]
            assert draft.props["body"]["content"].count("divRplyFwdMsg") == 1
            assert original.props["categories"].count(DRAFTED_CATEGORY) == 1

        processed = mail.folder(next(f for f, d in mail.folders.items() if d["displayName"] == "rxinbox-processed"))
        for ref in originals:
            msg = mail.messages[ref]
            assert msg.props["isRead"] and msg.props["categories"].count(PROCESSED_CATEGORY) == 1
            assert msg.folder == processed
        assert not [m for m in mail.messages.values() if m.folder == mail.well_known["inbox"]]
        graph_calls = [entry for entry in standin.log if entry["path"].startswith("/v1.0")]
        assert all('IdType="ImmutableId"' in entry["prefer"] for entry in graph_calls)
        assert standin.max_in_flight <= 4
        assert not [e for e in standin.log if e["status"] == 429 and "delta" not in e["path"]]


def test_expired_delta_link_and_lost_state_resync_without_new_cases(home, tmp_path):
    """Processed mail stays in the Inbox here (no processed folder), so a full resync lists all of it again."""
    with GraphStandIn(MAILBOX) as standin:
        fill(standin, 40, seed=5)
        write_config(home, None)
        env = sweep_env(home, tmp_path, standin)
        first = finish(start_sweep(env, batch=25))
        assert first["processed"] + first["quarantined"] == 40
        drafts_before = [m.extended[KEY_PROPERTY] for m in standin.store.messages.values() if m.props["isDraft"]]

        fill(standin, 3, seed=6)
        standin.expire_delta_tokens()
        (home / "graph" / "m365.delta").unlink()
        second = finish(start_sweep(env, batch=25))
        last_round = standin.requests_matching("/messages/delta$")[-1]
        assert "$deltatoken" not in last_round["query"] and "$skiptoken" not in last_round["query"]
        assert second["seen"] == 43 and second["skipped_duplicates"] == 40
        assert second["processed"] + second["quarantined"] == 3

        with open_database(get_settings()).connect() as conn:
            assert conn.execute(select(func.count()).select_from(t.messages)).scalar() == 43
        keys = [m.extended[KEY_PROPERTY] for m in standin.store.messages.values() if m.props["isDraft"]]
        assert len(keys) == len(set(keys)) and set(drafts_before) <= set(keys)
        assert all(m.props["isRead"] for m in standin.store.messages.values())
