"""Faults a connector handles itself reach the sweep's audit trail as PHI-free `mailbox.<kind>` events.

Each sweep runs the real mailbox_sweep flow in this process against the real Dovecot or the Graph
stand-in, with the fault provoked at the moment it happens in production (staff delete a mail between
listing and fetching, the server drops the session, Graph throttles or expires the delta token).
"""

import json
import random

import pytest

from connectors import imap_session
from connectors.database import open_database
from connectors.graph_auth import BASE_URL_ENV, TEST_TOKEN_ENV
from connectors.graph_mailbox import KEY_PROPERTY
from connectors.imap_mailbox import ImapLoginError, ImapMailbox
from connectors.imap_session import ImapSession
from connectors.store import CaseStore
from core import pipeline
from core.audit import verify
from data_contracts.models import AuditEvent, SweepParams
from evals.mailgen import load_rows, render
from flows.mailbox_sweep import mailbox_sweep
from rxinbox.settings import get_settings
from tests.e2e.dovecot import admin_connection, append_messages, realistic_messages
from tests.e2e.graph_standin import GraphStandIn
from tests.e2e.test_graph_sweep import MAILBOX, fill, write_config
from tests.e2e.test_imap_sweep import PASSWORD_ENV, write_mailboxes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def audit_trail() -> list[AuditEvent]:
    events = list(CaseStore(open_database(get_settings())).audit_events())
    assert verify(events).ok, "the notices are links of the tamper-evident chain like every other event"
    return events


def mailbox_events(events: list[AuditEvent]) -> list[AuditEvent]:
    return [e for e in events if e.event.startswith("mailbox.")]


def assert_no_phi(events: list[AuditEvent], secrets: list[str]) -> None:
    text = json.dumps([[e.subject, e.details] for e in events], ensure_ascii=False)
    leaked = [secret for secret in secrets if secret and secret in text]
    assert leaked == [], "mail content reached the audit trail"


def imap_secrets(raws: list[bytes]) -> list[str]:
    """Subjects, senders, Message-IDs and a body line of every message."""
    secrets = []
    for raw in raws:
        head, _, body = raw.decode(errors="replace").partition("\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.split("\r\n") if ": " in line)
        lines = [line for line in body.split("\r\n") if len(line) > 20]
        secrets += [headers.get("Subject", ""), headers.get("From", ""), headers.get("Message-ID", "")] + lines[:1]
    return secrets


def test_imap_sweep_audits_a_vanished_message_and_a_dropped_connection(dovecot_server, dovecot, seeded_home,
                                                                       monkeypatch, prefect_harness):
    raws = realistic_messages(12, seed=41)
    append_messages(dovecot, raws)
    write_mailboxes(seeded_home, dovecot, "dovecot-notices")
    monkeypatch.setenv(PASSWORD_ENV, dovecot.password)
    monkeypatch.setattr(imap_session, "RETRY_DELAYS", (0.1, 0.5))
    fetch, deleted = ImapMailbox.fetch, []

    def fetch_after_staff_and_server_acted(self, refs):
        # Between listing and the first fetch, staff delete a waiting mail and the server drops the session.
        if not deleted:
            staff = admin_connection(dovecot)
            staff.uid("STORE", refs[1].split(":")[1], "+FLAGS", "(\\Deleted)")
            staff.expunge()
            staff.logout()
            dovecot_server.kick(dovecot.user)
            deleted.append(refs[1])
        return fetch(self, refs)

    monkeypatch.setattr(ImapMailbox, "fetch", fetch_after_staff_and_server_acted)
    summary = mailbox_sweep(SweepParams(mailbox="dovecot-notices", batch_size=5))
    assert deleted and summary.seen == 12
    assert summary.processed + summary.quarantined == 11, "every mail still there ends as a case or in quarantine"

    events = audit_trail()
    notices = {e.event: e for e in mailbox_events(events)}
    assert set(notices) == {"mailbox.vanished_before_fetch", "mailbox.reconnected"}
    vanished, reconnected = notices["mailbox.vanished_before_fetch"], notices["mailbox.reconnected"]
    assert vanished.details == {"count": 1, "detail": "folder INBOX"}
    assert reconnected.details["count"] >= 1 and reconnected.details["detail"].startswith("fetch after")
    assert {e.actor for e in notices.values()} == {pipeline.ACTOR}
    assert {e.subject for e in notices.values()} == {"mailbox:dovecot-notices"}
    order = [e.event for e in events]
    assert order.index("sweep.started") < order.index("mailbox.vanished_before_fetch") < order.index("sweep.finished")
    assert_no_phi(notices.values(), imap_secrets(raws))
    assert mailbox_sweep(SweepParams(mailbox="dovecot-notices")).seen == 0, "nothing left behind, nothing twice"
    assert len(mailbox_events(audit_trail())) == 2, "a sweep without faults audits none"


def test_graph_sweeps_audit_throttling_retries_and_a_delta_resync(seeded_home, monkeypatch, prefect_harness):
    with GraphStandIn(MAILBOX) as standin:
        fill(standin, 10, seed=43)
        write_config(seeded_home, None)
        monkeypatch.setenv(BASE_URL_ENV, standin.base_url)
        monkeypatch.setenv(TEST_TOKEN_ENV, "standin-token")
        standin.add_fault("throttle", r"/messages/delta$", times=1, retry_after="1")
        standin.add_fault("drop", r"/\$value$", times=1)
        standin.add_fault("drop", r"/createReply$", times=1)
        first = mailbox_sweep(SweepParams(mailbox="m365", batch_size=4))
        assert first.processed + first.quarantined == 10

        events = audit_trail()
        assert [e for e in events if e.event == "draft.saved"], "the sweep should have saved reply drafts"
        notices = mailbox_events(events)
        by_actor = {(e.event, e.actor): e for e in notices}
        assert set(by_actor) == {("mailbox.throttled", pipeline.ACTOR), ("mailbox.request_retried", pipeline.ACTOR),
                                 ("mailbox.request_retried", "rxinbox.outbox")}
        assert by_actor["mailbox.throttled", pipeline.ACTOR].details == {"count": 1,
                                                                         "detail": "HTTP 429; waited 1.0 s in total"}
        assert by_actor["mailbox.request_retried", pipeline.ACTOR].details["detail"].startswith("GET ")
        assert "looked up" in by_actor["mailbox.request_retried", "rxinbox.outbox"].details["detail"]
        keys = [m.extended.get(KEY_PROPERTY) for m in standin.store.messages.values() if m.props["isDraft"]]
        assert len(keys) == len(set(keys)), "the lost createReply answer made no second draft"

        standin.expire_delta_tokens()
        late = standin.store.deliver(render(load_rows()[2], 950, random.Random(4))).immutable_id
        second = mailbox_sweep(SweepParams(mailbox="m365", batch_size=4))
        assert second.seen == 1 and second.processed + second.quarantined == 1, "the resync hands out only new mail"
        events = audit_trail()
        resync = [e for e in mailbox_events(events) if e.event == "mailbox.delta_resync"]
        assert len(resync) == 1 and resync[0].subject == "mailbox:m365"
        assert resync[0].details["count"] == 1 and "HTTP 410" in resync[0].details["detail"]

        secrets = [late]
        for message in standin.store.messages.values():
            secrets += [message.props["subject"], message.props["from"]["emailAddress"]["address"],
                        message.props["internetMessageId"], message.props["body"]["content"][:30], message.immutable_id]
        assert_no_phi(mailbox_events(events), secrets)


def test_imap_sweep_with_a_wrong_password_fails_at_once_and_is_audited(dovecot, seeded_home, monkeypatch,
                                                                        prefect_harness):
    append_messages(dovecot, realistic_messages(2, seed=47))
    write_mailboxes(seeded_home, dovecot, "dovecot-wrong-password")
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    login, logins = ImapSession._login, []

    def counted_login(self, conn):
        logins.append(self.username)
        return login(self, conn)

    monkeypatch.setattr(ImapSession, "_login", counted_login)
    with pytest.raises(ImapLoginError, match="IMAP login failed"):
        mailbox_sweep(SweepParams(mailbox="dovecot-wrong-password"))
    assert logins == [dovecot.user], "refused credentials are tried once: no reconnects, no task retries"

    events = audit_trail()
    failed = [e for e in events if e.event == "flow.failed"]
    assert len(failed) == 1
    assert failed[0].details["error_type"] == "ImapLoginError"
    assert failed[0].details["mailbox"] == "dovecot-wrong-password" and failed[0].details["flow"] == "mailbox-sweep"
    assert "not-the-password" not in json.dumps(failed[0].details)
    assert mailbox_events(events) == [], "a failure is reported once, as flow.failed, not as a handled fault"
