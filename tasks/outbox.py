"""Outbox delivery: replies committed with their case are sent or saved as drafts exactly once."""

import hashlib
import logging

from prefect import task

from connectors.mailbox import OutgoingMail
from data_contracts.models import AuditEvent, SweepParams
from rxinbox import clock
from tasks.context import open_mailbox, sweep_context
from tasks.notices import notices_recorded
from tasks.retry_policy import MAILBOX_RETRIES

log = logging.getLogger(__name__)

# Replies are claimed and marked sent in batches: one transaction per reply would cost more than the
# delivery, and a batch bounds how long a claim (a write lock on SQLite) is held.
MARK_EVERY = 50
ACTOR = "rxinbox.outbox"


@task(**MAILBOX_RETRIES)
def deliver(params: SweepParams) -> int:
    """Hand pending outbox rows to the mailbox (send or save draft), each marked done once delivered."""
    ctx = sweep_context()
    mailbox = open_mailbox(ctx.settings, params.source, params.mailbox)
    # A mailbox that writes locally in microseconds takes bigger batches (fewer transactions).
    size = getattr(mailbox, "delivery_batch", MARK_EVERY)
    with notices_recorded(ctx, mailbox, ACTOR):
        delivered = 0
        while True:
            # Another worker delivering this mailbox at the same time claims other rows (or waits), never these.
            with ctx.store.outbox_batch(mailbox.name, size) as batch:
                for out in batch.pending:
                    mail = OutgoingMail(
                        to=out.to, subject=out.subject, body=out.body, sender=ctx.settings.pharmacy_email,
                        in_reply_to=out.in_reply_to, references=tuple(out.references), idempotency_key=out.outbound_id,
                    )
                    # The mailbox write is idempotent by outbound_id, so a batch rolled back repeats nothing.
                    provider_ref = mailbox.send(mail) if out.kind == "send" else mailbox.save_draft(mail)
                    event = "mail.sent" if out.kind == "send" else "draft.saved"
                    details = {"case_id": out.case_id, "kind": out.kind, "provider_ref_sha": _short_hash(provider_ref)}
                    batch.done(out.outbound_id, AuditEvent(at=clock.now(), actor=ACTOR, event=event,
                                                           subject=out.outbound_id, details=details))
            delivered += batch.marked
            if len(batch.pending) < size:
                return delivered


def _short_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]
