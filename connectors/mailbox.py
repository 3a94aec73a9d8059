"""The mailbox interface every connector implements (local folder, IMAP, Microsoft 365)."""

import threading
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Iterator, Protocol, runtime_checkable

from data_contracts.models import InboundMessage


class MailboxError(RuntimeError):
    """A mailbox operation failed in a way the caller should log and retry or report."""


class NoticeKind(StrEnum):
    """The handled faults a connector reports to the sweep's audit trail (as `mailbox.<kind>` events)."""

    vanished_before_fetch = "vanished_before_fetch"
    vanished_before_mark = "vanished_before_mark"
    uidvalidity_changed = "uidvalidity_changed"
    reconnected = "reconnected"
    delta_resync = "delta_resync"
    throttled = "throttled"
    request_retried = "request_retried"
    message_truncated = "message_truncated"
    reply_unthreaded = "reply_unthreaded"
    sent_copy_missing = "sent_copy_missing"


@dataclass(frozen=True)
class MailboxNotice:
    """A fault the connector handled itself. detail holds counts, folder names, status codes, seconds: never mail."""

    kind: NoticeKind
    count: int = 1
    detail: str = ""

    def __post_init__(self) -> None:
        # An unknown kind fails here, loudly, rather than as an odd audit event name later.
        object.__setattr__(self, "kind", NoticeKind(self.kind))


MAX_DETAILS = 5


class NoticeLog:
    """Notices since the last drain, one per kind (counts and waits summed); safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[NoticeKind, tuple[int, list[str], float]] = {}

    def record(self, kind: NoticeKind, count: int = 1, detail: str = "", waited: float = 0.0) -> None:
        kind = NoticeKind(kind)
        with self._lock:
            total, details, seconds = self._pending.get(kind, (0, [], 0.0))
            if detail and detail not in details:
                details = [*details, detail]
            self._pending[kind] = (total + count, details, seconds + waited)

    def drain(self) -> list[MailboxNotice]:
        with self._lock:
            pending, self._pending = self._pending, {}
        return [MailboxNotice(kind, total, _joined(details, seconds)) for kind, (total, details, seconds)
                in pending.items()]


def _joined(details: list[str], waited: float) -> str:
    parts = details[:MAX_DETAILS] + ([f"{len(details) - MAX_DETAILS} more"] if len(details) > MAX_DETAILS else [])
    if waited:
        parts.append(f"waited {waited:.1f} s in total")
    return "; ".join(parts)


@runtime_checkable
class NoticeSource(Protocol):
    """A mailbox that reports the faults it handled (IMAP, Microsoft 365); a local folder has none."""

    def drain_notices(self) -> list[MailboxNotice]:
        """The notices recorded since the last call, and forget them."""
        ...


def drain_notices(mailbox: object) -> list[MailboxNotice]:
    """The mailbox's pending notices; none for a mailbox that does not report any."""
    return mailbox.drain_notices() if isinstance(mailbox, NoticeSource) else []


@dataclass(frozen=True)
class OutgoingMail:
    """A reply to put in Drafts or send; threading headers keep it in the patient's thread."""

    to: str
    subject: str
    body: str
    sender: str
    in_reply_to: str | None = None
    references: tuple[str, ...] = field(default_factory=tuple)
    idempotency_key: str | None = None


@runtime_checkable
class Mailbox(Protocol):
    """What a sweep needs from a mailbox. Refs are connector-native and stable across runs."""

    name: str

    def list_refs(self) -> list[str]:
        """Every message currently waiting in the inbox, oldest first."""
        ...

    def fetch(self, refs: list[str]) -> Iterator[InboundMessage]:
        """The raw messages for refs; a ref that vanished since listing is skipped, not an error."""
        ...

    def mark_processed(self, refs: list[str]) -> None:
        """Tell the mailbox these are handled (flag seen, move, categorise), idempotently."""
        ...

    def move(self, ref: str, folder: str) -> None:
        """Move one message to another folder of the mailbox."""
        ...

    def save_draft(self, mail: OutgoingMail) -> str:
        """Store a reply draft where staff review drafts; returns the draft's ref."""
        ...

    def send(self, mail: OutgoingMail) -> str:
        """Send a reply; returns a provider id. Callers guarantee at-most-once via the outbox."""
        ...
