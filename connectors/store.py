"""The case store: messages seen, cases, quarantine, outbox and the audit chain, in one database."""

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Iterator, Sequence

from sqlalchemy import Connection, Engine, Select, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from connectors.database import reading
from core.audit import GENESIS, seal_many, utc
from core.records import StoredItem
from data_contracts import tables as t
from data_contracts.models import AuditEvent, Case, OutboundMessage

log = logging.getLogger(__name__)


def insert_ignore(conn: Connection, table, rows: list[dict], key: Sequence[str] | None = None) -> set[tuple]:
    """Insert rows in one statement, skipping ones whose unique key exists; the keys of the rows that were new.

    `key` names the columns returned for each new row (default: the primary key).
    """
    if not rows:
        return set()
    dialect = conn.dialect.name
    if dialect == "postgresql":
        stmt = pg_insert(table).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite_insert(table).on_conflict_do_nothing()
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"unsupported database dialect {dialect}")
    # rowcount is unreliable here (-1 under psycopg's implicit RETURNING); the returned keys are not.
    # A list of rows goes out as one multi-row INSERT (SQLAlchemy's insertmanyvalues), not one per row.
    columns = [table.c[name] for name in key] if key else list(table.primary_key.columns)
    return {tuple(row) for row in conn.execute(stmt.returning(*columns), rows)}


def append_audit(conn: Connection, events: Iterable[AuditEvent]) -> list[AuditEvent]:
    """Append events to the chain inside the caller's transaction, holding the head row lock."""
    events = list(events)
    if not events:
        return []
    insert_ignore(conn, t.audit_head, [{"id": 1, "seq": 0, "hash": GENESIS}])
    head_query = select(t.audit_head.c.seq, t.audit_head.c.hash).where(t.audit_head.c.id == 1)
    if conn.dialect.name == "postgresql":
        head_query = head_query.with_for_update()
    seq, head_hash = conn.execute(head_query).one()
    sealed = seal_many(events, seq, head_hash)
    conn.execute(
        insert(t.audit_events),
        [
            {"seq": e.seq, "at": e.at, "actor": e.actor, "event": e.event, "subject": e.subject,
             "details": e.details, "prev_hash": e.prev_hash, "hash": e.hash}
            for e in sealed
        ],
    )
    conn.execute(update(t.audit_head).where(t.audit_head.c.id == 1).values(seq=sealed[-1].seq, hash=sealed[-1].hash))
    return sealed


def case_row(case: Case) -> dict:
    tri = case.triage
    return {
        "case_id": case.case_id, "mailbox": case.mailbox, "message_key": case.message_key,
        "sender": case.sender, "sender_index": t.active_cipher().blind_index(case.sender),
        "subject": case.subject, "received_at": case.received_at, "intent": tri.intent.value,
        "secondary_intents": [i.value for i in tri.secondary_intents], "escalate": tri.escalate,
        "reasons": [r.value for r in tri.reasons], "priority": tri.priority.value, "language": tri.language,
        "confidence": tri.confidence, "needs_reply": tri.needs_reply,
        "evidence": [e.model_dump(mode="json") for e in tri.evidence],
        "action": case.action.value, "action_reason": case.action_reason, "outcome": case.outcome,
        "patient_id": case.patient_id,
        "draft": case.draft.model_dump(mode="json") if case.draft else None,
        "summary": case.summary,
        "status": "open", "created_at": case.created_at,
    }


@dataclass
class OutboxBatch:
    """Pending replies claimed for delivery, and the ones delivered so far with their audit events."""

    pending: list[OutboundMessage]
    delivered: list[tuple[str, AuditEvent]] = field(default_factory=list)
    marked: int = 0

    def done(self, outbound_id: str, audit: AuditEvent) -> None:
        self.delivered.append((outbound_id, audit))


def outbound_message(row) -> OutboundMessage:
    return OutboundMessage(outbound_id=row["outbound_id"], case_id=row["case_id"], kind=row["kind"], to=row["to_addr"],
                           subject=row["subject"], body=row["body"], in_reply_to=row["in_reply_to"],
                           references=row["references"], status="pending")


def pending_query(mailbox: str) -> Select:
    return (
        select(t.outbox).join(t.cases, t.cases.c.case_id == t.outbox.c.case_id)
        .where(t.outbox.c.status == "pending", t.cases.c.mailbox == mailbox)
        .order_by(t.outbox.c.created_at, t.outbox.c.outbound_id)
    )


def mark_sent(conn: Connection, delivered: list[tuple[str, AuditEvent]]) -> int:
    """Mark delivered rows sent (at their audit event's time) with their audit events; returns how many.

    Runs inside the claim's transaction, so the rows are still pending and nobody else holds them.
    """
    if not delivered:
        return 0
    query = (update(t.outbox).where(t.outbox.c.outbound_id == bindparam("oid"), t.outbox.c.status == "pending")
             .values(status="sent", sent_at=bindparam("at"), attempts=t.outbox.c.attempts + 1))
    conn.execute(query, [{"oid": outbound_id, "at": audit.at} for outbound_id, audit in delivered])
    append_audit(conn, [audit for _, audit in delivered])
    return len(delivered)


class CaseStore:
    """Reads and writes of the sweep's state; every write of a batch is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def known_refs(self, mailbox: str, refs: list[str]) -> set[str]:
        """Refs already recorded for this mailbox (processed or quarantined)."""
        found: set[str] = set()
        with reading(self.engine) as conn:
            for start in range(0, len(refs), 500):
                chunk = refs[start:start + 500]
                query = select(t.messages.c.ref).where(t.messages.c.mailbox == mailbox, t.messages.c.ref.in_(chunk))
                found.update(conn.execute(query).scalars())
        return found

    def known_keys(self, mailbox: str, keys: list[str]) -> set[str]:
        found: set[str] = set()
        with reading(self.engine) as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                query = select(t.messages.c.message_key).where(
                    t.messages.c.mailbox == mailbox, t.messages.c.message_key.in_(chunk)
                )
                found.update(conn.execute(query).scalars())
        return found

    def commit(self, mailbox: str, items: list[StoredItem], now: datetime) -> list[StoredItem]:
        """Write a batch atomically; items another worker committed first are skipped and returned out."""
        # One item per key: a batch never repeats a message, but a claim must not be counted twice if it did.
        first: dict[str, StoredItem] = {}
        for item in items:
            first.setdefault(item.message_key, item)
        unique = list(first.values())
        with self.engine.begin() as conn:
            claimed = insert_ignore(conn, t.messages, [{
                "mailbox": mailbox, "message_key": item.message_key, "ref": item.ref,
                "content_sha256": item.content_sha256, "status": "quarantined" if item.quarantine else "processed",
                "processed_at": now, "marked": False,
            } for item in unique], key=["message_key"])
            written = [item for item in unique if (item.message_key,) in claimed]
            if cases := [case_row(item.case) for item in written if item.case]:
                conn.execute(insert(t.cases), cases)
            if quarantined := [item.quarantine.model_dump() for item in written if item.quarantine]:
                conn.execute(insert(t.quarantine), quarantined)
            insert_ignore(conn, t.outbox, [{
                "outbound_id": out.outbound_id, "case_id": out.case_id, "kind": out.kind, "to_addr": out.to,
                "subject": out.subject, "body": out.body, "in_reply_to": out.in_reply_to,
                "references": out.references, "status": out.status, "attempts": 0, "created_at": now,
            } for item in written for out in item.outbound])
            requests = [req.model_dump() for item in written for req in item.pms_requests]
            insert_ignore(conn, t.pms_requests, requests)
            append_audit(conn, [event for item in written for event in item.audit])
        return written

    def unmarked_refs(self, mailbox: str) -> list[str]:
        with reading(self.engine) as conn:
            query = select(t.messages.c.ref).where(t.messages.c.mailbox == mailbox, t.messages.c.marked.is_(False))
            return list(conn.execute(query).scalars())

    def set_marked(self, mailbox: str, refs: list[str]) -> None:
        with self.engine.begin() as conn:
            for start in range(0, len(refs), 500):
                chunk = refs[start:start + 500]
                conn.execute(update(t.messages).where(t.messages.c.mailbox == mailbox, t.messages.c.ref.in_(chunk)).values(marked=True))

    def pending_outbox(self, mailbox: str, limit: int = 500) -> list[OutboundMessage]:
        """A look at the mailbox's undelivered replies; delivery claims them with outbox_batch instead."""
        with reading(self.engine) as conn:
            return [outbound_message(r) for r in conn.execute(pending_query(mailbox).limit(limit)).mappings()]

    @contextmanager
    def outbox_batch(self, mailbox: str, limit: int) -> Iterator[OutboxBatch]:
        """Claim up to limit pending replies while the block runs; the ones it marks done are recorded sent at its end.

        The claim is the transaction: row locks on PostgreSQL (other workers skip those rows), the
        write lock on SQLite (other workers wait, then find them sent). Either dies with the
        connection, so a killed worker strands nothing. An exception rolls the whole batch back; the
        retry repeats nothing because mailbox writes are idempotent by outbound_id.
        """
        query = pending_query(mailbox).limit(limit)
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(of=t.outbox, skip_locked=True)
            batch = OutboxBatch([outbound_message(r) for r in conn.execute(query).mappings()])
            yield batch
            batch.marked = mark_sent(conn, batch.delivered)

    def audit_events(self) -> Iterator[AuditEvent]:
        with reading(self.engine) as conn:
            for row in conn.execute(select(t.audit_events).order_by(t.audit_events.c.seq)).mappings():
                yield AuditEvent(seq=row["seq"], at=utc(row["at"]), actor=row["actor"], event=row["event"],
                                 subject=row["subject"], details=row["details"], prev_hash=row["prev_hash"], hash=row["hash"])

    def case_rows(self) -> list[dict]:
        """Every case with the mailbox ref it came from, oldest first."""
        query = (
            select(t.cases, t.messages.c.ref)
            .join(t.messages, (t.messages.c.mailbox == t.cases.c.mailbox) & (t.messages.c.message_key == t.cases.c.message_key))
            .order_by(t.cases.c.received_at, t.cases.c.case_id)
        )
        with reading(self.engine) as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def quarantine_rows(self) -> list[dict]:
        with reading(self.engine) as conn:
            return [dict(r) for r in conn.execute(select(t.quarantine).order_by(t.quarantine.c.id)).mappings()]
