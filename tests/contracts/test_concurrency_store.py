"""Workers sharing one database: an outbox delivered by two at once sends each reply once; readers never queue."""

import threading
import time
from collections import Counter
from types import SimpleNamespace

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.exc import OperationalError

from connectors.database import make_engine, migrate, open_database, reading
from connectors.mailbox import OutgoingMail
from connectors.store import CaseStore
from core.audit import verify
from data_contracts import tables as t
from data_contracts.models import SweepParams
from rxinbox.settings import get_settings
from tasks import outbox
from test_store import NOW, item

REPLIES = 2 * outbox.MARK_EVERY + 7  # more than one batch, and a part-filled last one


class CountingMailbox:
    """A mailbox stand-in that counts how often each reply reaches it."""

    name = "mb"

    def __init__(self) -> None:
        self.deliveries: Counter[str] = Counter()
        self.lock = threading.Lock()

    def save_draft(self, mail: OutgoingMail) -> str:
        time.sleep(0.002)  # a real delivery takes a while: the other worker runs meanwhile
        with self.lock:
            self.deliveries[mail.idempotency_key] += 1
        return f"draft-{mail.idempotency_key}"

    send = save_draft


def test_two_workers_delivering_one_outbox_deliver_each_reply_once(db_home, monkeypatch):
    settings = get_settings()
    store = CaseStore(open_database(settings))
    store.commit("mb", [item(n) for n in range(REPLIES)], NOW)
    mailbox = CountingMailbox()
    monkeypatch.setattr(outbox, "sweep_context", lambda: SimpleNamespace(settings=settings, store=store))
    monkeypatch.setattr(outbox, "open_mailbox", lambda *_: mailbox)
    start, counts, errors = threading.Barrier(2), [], []

    def worker() -> None:
        start.wait(30)
        try:
            counts.append(outbox.deliver.fn(SweepParams(mailbox="mb")))
        except Exception as exc:  # reported below: a worker must not fail
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert mailbox.deliveries == Counter({f"out-{n}": 1 for n in range(REPLIES)})
    assert sum(counts) == REPLIES
    assert store.pending_outbox("mb") == []
    events = list(store.audit_events())
    assert sorted(e.subject for e in events if e.event == "draft.saved") == sorted(f"out-{n}" for n in range(REPLIES))
    assert verify(events).ok


def _no_waiting(dbapi_connection, _record) -> None:
    # Fail at once instead of riding out the lock, so a reader that would queue shows up as an error.
    dbapi_connection.execute("PRAGMA busy_timeout=0")


def test_a_sqlite_reader_is_not_blocked_by_a_writer(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'rxinbox.db'}")
    event.listen(engine, "connect", _no_waiting)
    migrate(engine)
    count = select(func.count()).select_from(t.audit_head)
    with engine.connect() as writer:
        writer.begin()
        writer.execute(insert(t.audit_head).values(id=1, seq=0, hash="0" * 64))
        with reading(engine) as reader:
            assert reader.execute(count).scalar() == 0, "a reader sees the last committed state"
        # The default stays BEGIN IMMEDIATE: a connection that may write still takes the write lock first.
        with engine.connect() as other, pytest.raises(OperationalError, match="database is locked"):
            other.execute(count)
        writer.commit()
    with reading(engine) as reader:
        assert reader.execute(count).scalar() == 1
    engine.dispose()
