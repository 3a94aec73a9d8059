"""The mailbox sweep against a real Dovecot: killed and restarted mid-way, it ends with exactly one draft per reply."""

import email
import json
import os
import signal
import subprocess
import sys
import time
from email.policy import default as default_policy
from pathlib import Path

import pytest
import yaml
from prefect.settings import PREFECT_API_URL
from sqlalchemy import func, select

from connectors.database import open_database
from connectors.imap_mailbox import PROCESSED_KEYWORD
from connectors.store import CaseStore
from core.audit import verify
from data_contracts import tables as t
from data_contracts.models import SweepParams
from flows.mailbox_sweep import mailbox_sweep
from rxinbox.settings import get_settings
from tests.conftest import REPO
from tests.e2e.dovecot import admin_connection, append_messages, realistic_messages, uids_with

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MESSAGES = 500
PASSWORD_ENV = "RXINBOX_TEST_IMAP_PASSWORD"
DOMAIN = "soendergade-apotek.example"

# The sweep runs as its own process, as the deployment runs it (the flow itself, so this test does not
# depend on the CLI's wiring).
SWEEP = """
import sys
from data_contracts.models import SweepParams
from flows.mailbox_sweep import mailbox_sweep
print(mailbox_sweep(SweepParams(mailbox=sys.argv[1], batch_size=25)).model_dump_json())
"""

# The second run dies (SIGKILL, whole process group) right after Dovecot stored a draft and before the
# outbox could record it: the exact window the Message-ID search before each APPEND has to cover.
CRASH_AFTER_DRAFT = """
import os, signal
from connectors import imap_session
append_once, stored = imap_session.ImapSession.append_once, []
def crashing(self, *args, **kwargs):
    ref, appended = append_once(self, *args, **kwargs)
    stored.append(appended)
    if sum(stored) == int(os.environ["CRASH_AFTER_DRAFTS"]):
        os.killpg(os.getpid(), signal.SIGKILL)
    return ref, appended
imap_session.ImapSession.append_once = crashing
""" + SWEEP


def write_mailboxes(home, account, name: str, folder: str = "INBOX") -> None:
    home.mkdir(parents=True, exist_ok=True)
    mailbox = {"kind": "imap", "name": name, "host": account.host, "port": account.port, "security": "plain",
               "allow_plaintext_auth": True, "username": account.user, "password_env": PASSWORD_ENV, "folder": folder}
    config = {"pharmacies": [{"id": "soendergade", "name": "Søndergade Apotek", "mailboxes": [mailbox]}]}
    (home / "mailboxes.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")


def sweep_command(name: str, crash: bool = False) -> list[str]:
    return [sys.executable, "-c", CRASH_AFTER_DRAFT if crash else SWEEP, name]


class Sweep:
    """A sweep in its own process group (a kill takes all of it); output goes to files, so a full pipe never stalls it."""

    def __init__(self, command: list[str], env: dict, logs: Path) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.out, self.err = logs / "stdout", logs / "stderr"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=err, start_new_session=True)

    def running(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)

    def wait(self) -> int:
        return self.proc.wait(timeout=300)

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")[-3000:]


def drafts(account) -> list[email.message.EmailMessage]:
    conn = admin_connection(account, "Drafts")
    uids = uids_with(conn, "DRAFT")
    if not uids:
        conn.logout()
        return []
    _, data = conn.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID IN-REPLY-TO)])")
    conn.logout()
    return [email.message_from_bytes(item[1], policy=default_policy) for item in data if isinstance(item, tuple)]


def test_killed_and_restarted_sweep_stores_exactly_one_draft_per_reply(dovecot, seeded_home, tmp_path, prefect_harness):
    home = seeded_home
    raws = realistic_messages(MESSAGES, seed=23)
    append_messages(dovecot, raws)
    write_mailboxes(home, dovecot, "dovecot")
    env = {**os.environ, "RXINBOX_HOME": str(home), PASSWORD_ENV: dovecot.password,
           "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_HOME": str(tmp_path / "prefect")}
    inbox = admin_connection(dovecot)

    # Run 1: killed from outside while it works through the batches.
    first = Sweep(sweep_command("dovecot"), env, tmp_path / "run1")
    while len(uids_with(inbox, "KEYWORD", PROCESSED_KEYWORD)) < 150:
        assert first.running(), "the sweep ended before 150 messages were marked:\n" + first.stderr()
        time.sleep(0.05)
    first.kill()
    marked_after_kill = len(uids_with(inbox, "KEYWORD", PROCESSED_KEYWORD))
    assert marked_after_kill < MESSAGES, "the kill came too late to interrupt the sweep"

    # Run 2: dies right after its 30th draft reached the Drafts folder (run 1 delivered its finished batches).
    delivered_by_run1 = len(drafts(dovecot))
    second = Sweep(sweep_command("dovecot", crash=True), {**env, "CRASH_AFTER_DRAFTS": "30"}, tmp_path / "run2")
    assert second.wait() == -signal.SIGKILL, second.stderr()
    assert len(drafts(dovecot)) == delivered_by_run1 + 30

    # Run 3: finishes the job.
    final = Sweep(sweep_command("dovecot"), env, tmp_path / "run3")
    assert final.wait() == 0, final.stderr()
    # Replies are delivered after each batch, so run 2 died with mail still to sweep: run 3 takes the rest.
    summary = json.loads(final.out.read_text().strip().splitlines()[-1])
    assert summary["processed"] + summary["quarantined"] > 0, "run 2 died in a batch's delivery, not at the end"

    engine = open_database(get_settings())
    store = CaseStore(engine)
    with engine.connect() as conn:
        n_messages = conn.execute(select(func.count()).select_from(t.messages)).scalar()
        n_cases = conn.execute(select(func.count()).select_from(t.cases)).scalar()
        n_quarantined = conn.execute(select(func.count()).select_from(t.quarantine)).scalar()
        query = select(t.outbox.c.outbound_id, t.outbox.c.status).where(t.outbox.c.kind == "draft")
        draft_rows = conn.execute(query).all()
    assert n_messages == MESSAGES == n_cases + n_quarantined, "every message processed exactly once"
    assert 30 < len(draft_rows) < MESSAGES, "the crash must have come in the middle of saving drafts"
    assert {status for _, status in draft_rows} == {"sent"}
    assert store.unmarked_refs("dovecot") == [] and store.pending_outbox("dovecot") == []

    stored = drafts(dovecot)
    ids = [str(d["Message-ID"]) for d in stored]
    assert len(ids) == len(set(ids)) == len(draft_rows), "exactly one draft per reply, none twice"
    assert set(ids) == {f"<{outbound_id}@{DOMAIN}>" for outbound_id, _ in draft_rows}
    originals = {str(email.message_from_bytes(raw, policy=default_policy)["Message-ID"]) for raw in raws}
    assert all(str(d["In-Reply-To"]) in originals for d in stored), "each draft threads under the mail it answers"

    assert uids_with(inbox, "UNKEYWORD", PROCESSED_KEYWORD) == [], "every inbox message is marked processed"
    assert len(uids_with(inbox, "SEEN")) == MESSAGES
    inbox.logout()
    assert verify(store.audit_events()).ok
    created = [e.subject for e in store.audit_events() if e.event == "case.created"]
    assert len(created) == len(set(created)) == n_cases


def test_a_uidvalidity_reset_creates_no_new_cases(dovecot, seeded_home, monkeypatch, prefect_harness):
    home = seeded_home
    raws = realistic_messages(20, seed=31)
    append_messages(dovecot, raws, folder="Apotek")
    write_mailboxes(home, dovecot, "dovecot-uv", folder="Apotek")
    monkeypatch.setenv(PASSWORD_ENV, dovecot.password)
    params = SweepParams(mailbox="dovecot-uv", batch_size=8)
    first = mailbox_sweep(params)
    assert first.processed + first.quarantined == 20
    store = CaseStore(open_database(get_settings()))
    cases_before, drafts_before = len(store.case_rows()), len(drafts(dovecot))

    # The folder is recreated (as after a server migration): same mail, new UIDVALIDITY, no flags.
    staff = admin_connection(dovecot, None)
    assert staff.delete('"Apotek"')[0] == "OK"
    staff.logout()
    append_messages(dovecot, raws, folder="Apotek")

    second = mailbox_sweep(params)
    assert second.seen == 20 and second.skipped_duplicates == 20
    assert second.processed == second.quarantined == 0
    assert len(store.case_rows()) == cases_before and len(drafts(dovecot)) == drafts_before
    folder = admin_connection(dovecot, "Apotek")
    assert uids_with(folder, "UNKEYWORD", PROCESSED_KEYWORD) == [], "the re-listed mail is marked, not swept again"
    folder.logout()
    assert mailbox_sweep(params).seen == 0
