"""The case store against a real database: atomic batches, exactly-once claims, a sound audit chain."""

from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from connectors.database import open_database
from connectors.store import CaseStore
from core.audit import verify
from core.records import StoredItem
from data_contracts import tables as t
from data_contracts.models import Action, AuditEvent, Case, Intent, OutboundMessage, TriageResult
from rxinbox.settings import get_settings

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)


def item(n: int) -> StoredItem:
    key = f"<m{n}@example.com>#abc"
    triage = TriageResult(intent=Intent.refill_request, escalate=False, confidence=0.9)
    case = Case(case_id=f"case-{n}", mailbox="mb", message_key=key, sender=f"patient{n}@example.com",
                subject="Refill of Eltroxin please", received_at=NOW, triage=triage, action=Action.draft_for_approval,
                action_reason="send_policy:default", created_at=NOW)
    out = OutboundMessage(outbound_id=f"out-{n}", case_id=f"case-{n}", kind="draft", to=f"patient{n}@example.com",
                          subject="Re: Refill", body="Your Eltroxin is ready.")
    audit = [AuditEvent(at=NOW, actor="test", event="case.created", subject=f"case-{n}", details={"n": n})]
    return StoredItem(ref=f"{n}.eml", message_key=key, content_sha256="0" * 64, case=case, outbound=[out], audit=audit)


def test_commit_is_exactly_once_per_message(db_home):
    store = CaseStore(open_database(get_settings()))
    first = store.commit("mb", [item(1), item(2)], NOW)
    again = store.commit("mb", [item(2), item(3)], NOW)
    assert [i.ref for i in first] == ["1.eml", "2.eml"]
    assert [i.ref for i in again] == ["3.eml"]
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.cases)).scalar() == 3
        assert conn.execute(select(func.count()).select_from(t.outbox)).scalar() == 3
    assert store.known_refs("mb", ["1.eml", "9.eml"]) == {"1.eml"}


def test_a_message_repeated_within_one_batch_is_written_once(db_home):
    store = CaseStore(open_database(get_settings()))
    written = store.commit("mb", [item(4), item(5), item(4)], NOW)
    assert [i.ref for i in written] == ["4.eml", "5.eml"]
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.cases)).scalar() == 2
        assert conn.execute(select(func.count()).select_from(t.audit_events)).scalar() == 2
    assert store.known_keys("other-mailbox", ["<m1@example.com>#abc"]) == set()


def test_audit_chain_spans_batches_and_verifies(db_home):
    store = CaseStore(open_database(get_settings()))
    store.commit("mb", [item(1)], NOW)
    store.commit("mb", [item(2), item(3)], NOW)
    events = list(store.audit_events())
    assert [e.seq for e in events] == [1, 2, 3]
    assert verify(events).ok


def test_outbox_marked_sent_once(db_home):
    store = CaseStore(open_database(get_settings()))
    store.commit("mb", [item(1)], NOW)
    with store.outbox_batch("mb", 10) as batch:
        assert [p.outbound_id for p in batch.pending] == ["out-1"]
        batch.done("out-1", AuditEvent(at=NOW, actor="test", event="draft.saved", subject="out-1"))
    assert batch.marked == 1
    with store.outbox_batch("mb", 10) as again:
        assert again.pending == []
    assert store.pending_outbox("mb") == []
    assert [e.event for e in store.audit_events()].count("draft.saved") == 1


def test_a_failed_outbox_batch_leaves_its_replies_pending(db_home):
    store = CaseStore(open_database(get_settings()))
    store.commit("mb", [item(1), item(2)], NOW)
    with pytest.raises(ConnectionError):
        with store.outbox_batch("mb", 10) as batch:
            batch.done("out-1", AuditEvent(at=NOW, actor="test", event="draft.saved", subject="out-1"))
            raise ConnectionError("mailbox went away after the first reply")
    assert [p.outbound_id for p in store.pending_outbox("mb")] == ["out-1", "out-2"]
    assert "draft.saved" not in [e.event for e in store.audit_events()]


def test_marks_are_tracked_for_replay(db_home):
    store = CaseStore(open_database(get_settings()))
    store.commit("mb", [item(1), item(2)], NOW)
    assert sorted(store.unmarked_refs("mb")) == ["1.eml", "2.eml"]
    store.set_marked("mb", ["1.eml"])
    assert store.unmarked_refs("mb") == ["2.eml"]


def test_phi_is_not_stored_in_plaintext(home):
    settings = get_settings()
    store = CaseStore(open_database(settings))
    store.commit("mb", [item(7)], NOW)
    store.engine.dispose()
    raw = b"".join(p.read_bytes() for p in settings.home.glob("rxinbox.db*"))
    assert b"patient7@example.com" not in raw
    assert b"Eltroxin" not in raw
    assert store.case_rows()[0]["sender"] == "patient7@example.com"
