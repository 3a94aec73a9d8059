"""Outbox delivery: replies committed with their case are sent or saved as drafts exactly once."""

import hashlib
import logging

from prefect import task
from prefect.cache_policies import NO_CACHE

from connectors.mailbox import OutgoingMail
from data_contracts.models import AuditEvent, SweepParams
from rxinbox import clock
from tasks.context import open_mailbox, sweep_context

log = logging.getLogger(__name__)

# Rows are marked sent in groups: one transaction per reply would cost more than the delivery.
MARK_EVERY = 50


@task(retries=3, retry_delay_seconds=[2, 10, 30], cache_policy=NO_CACHE)
def deliver(params: SweepParams) -> int:
    """Hand pending outbox rows to the mailbox (send or save draft), each marked done once delivered."""
    ctx = sweep_context()
    mailbox = open_mailbox(ctx.settings, params.source, params.mailbox)
    delivered, done = 0, []
    for out in ctx.store.pending_outbox(mailbox.name, limit=100_000):
        mail = OutgoingMail(
            to=out.to, subject=out.subject, body=out.body, sender=ctx.settings.pharmacy_email,
            in_reply_to=out.in_reply_to, references=tuple(out.references), idempotency_key=out.outbound_id,
        )
        # The mailbox write is idempotent by outbound_id, so a crash before mark_sent repeats nothing.
        provider_ref = mailbox.send(mail) if out.kind == "send" else mailbox.save_draft(mail)
        event = "mail.sent" if out.kind == "send" else "draft.saved"
        audit = AuditEvent(at=clock.now(), actor="rxinbox.outbox", event=event, subject=out.outbound_id,
                           details={"case_id": out.case_id, "kind": out.kind, "provider_ref_sha": _short_hash(provider_ref)})
        done.append((out.outbound_id, audit))
        if len(done) >= MARK_EVERY:
            delivered += ctx.store.mark_sent(done, clock.now())
            done = []
    return delivered + ctx.store.mark_sent(done, clock.now())


def _short_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]
