"""Faults a mailbox connector handled itself (notices) become PHI-free audit events of the task that met them."""

import logging
from contextlib import contextmanager
from typing import Iterator

from connectors.mailbox import Mailbox, drain_notices
from connectors.store import append_audit
from core import pipeline
from data_contracts.models import AuditEvent
from rxinbox import clock
from tasks.context import SweepContext

log = logging.getLogger(__name__)

EVENT_PREFIX = "mailbox."


def record_notices(ctx: SweepContext, mailbox: Mailbox, actor: str = pipeline.ACTOR) -> int:
    """Append one `mailbox.<kind>` event per pending notice, in one transaction; none at all when there are none."""
    notices = drain_notices(mailbox)
    if not notices:
        return 0
    now = clock.now()
    events = [AuditEvent(at=now, actor=actor, event=EVENT_PREFIX + notice.kind.value, subject=f"mailbox:{mailbox.name}",
                         details={"count": notice.count, "detail": notice.detail}) for notice in notices]
    with ctx.engine.begin() as conn:
        append_audit(conn, events)
    return len(events)


@contextmanager
def notices_recorded(ctx: SweepContext, mailbox: Mailbox, actor: str = pipeline.ACTOR) -> Iterator[None]:
    """Record the mailbox's notices when the block ends, also when it fails: the waits and resyncs happened anyway."""
    try:
        yield
    except BaseException:
        try:
            record_notices(ctx, mailbox, actor)
        except Exception:  # the block's own error decides the retry and the alert, not this one
            log.exception("mailbox %s: handled faults could not be written to the audit trail", mailbox.name)
        raise
    record_notices(ctx, mailbox, actor)
