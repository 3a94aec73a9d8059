"""The mailbox interface every connector implements (local folder, IMAP, Microsoft 365)."""

from dataclasses import dataclass, field
from typing import Iterator, Protocol, runtime_checkable

from data_contracts.models import InboundMessage


class MailboxError(RuntimeError):
    """A mailbox operation failed in a way the caller should log and retry or report."""


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
