"""The audit chain: each event's hash covers its content and the previous hash, so edits show."""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable

from data_contracts.models import AuditEvent

GENESIS = "0" * 64


def canonical(event: AuditEvent) -> bytes:
    """The exact bytes that are hashed: every field but the hash itself, in a fixed form."""
    at = event.at if event.at.tzinfo else event.at.replace(tzinfo=timezone.utc)
    payload = {
        "seq": event.seq,
        "at": at.astimezone(timezone.utc).isoformat(timespec="microseconds"),
        "actor": event.actor,
        "event": event.event,
        "subject": event.subject,
        "details": event.details,
        "prev_hash": event.prev_hash,
    }
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def seal(event: AuditEvent, seq: int, prev_hash: str) -> AuditEvent:
    """Link an event after prev_hash at position seq and compute its hash."""
    linked = event.model_copy(update={"seq": seq, "prev_hash": prev_hash, "hash": None, "at": utc(event.at).astimezone(timezone.utc)})
    linked.hash = hashlib.sha256(canonical(linked)).hexdigest()
    return linked


def seal_many(events: Iterable[AuditEvent], head_seq: int, head_hash: str) -> list[AuditEvent]:
    """Append a batch after the current head, in order."""
    sealed: list[AuditEvent] = []
    seq, prev = head_seq, head_hash
    for event in events:
        seq += 1
        linked = seal(event, seq, prev)
        sealed.append(linked)
        prev = linked.hash or ""
    return sealed


@dataclass
class ChainVerdict:
    """Result of verifying a chain: where it first breaks, and why."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None
    problems: list[str] = field(default_factory=list)


def verify(events: Iterable[AuditEvent]) -> ChainVerdict:
    """Recompute every hash and link; report the first break (edit, deletion, reordering, insertion)."""
    prev_hash, expected_seq, checked = GENESIS, 1, 0
    for event in events:
        checked += 1
        if event.seq != expected_seq:
            return ChainVerdict(False, checked, event.seq, f"expected seq {expected_seq}, found {event.seq} (event missing or inserted)")
        if event.prev_hash != prev_hash:
            return ChainVerdict(False, checked, event.seq, "prev_hash does not match the previous event's hash")
        recomputed = hashlib.sha256(canonical(event)).hexdigest()
        if recomputed != event.hash:
            return ChainVerdict(False, checked, event.seq, "content does not match its hash (event was altered)")
        prev_hash, expected_seq = event.hash, expected_seq + 1
    return ChainVerdict(True, checked)


def utc(value: datetime) -> datetime:
    """Stored timestamps come back naive from SQLite; they are always UTC."""
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
