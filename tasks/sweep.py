"""Prefect tasks of the mailbox sweep; each call handles a whole batch, not one message."""

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from prefect import task
from prefect.cache_policies import NO_CACHE

from connectors.mailbox import Mailbox
from connectors.store import append_audit
from core import pipeline
from core.parsing import parse_many
from data_contracts.models import Action, AuditEvent, InboundMessage, Passage, SweepParams, SweepSummary
from rxinbox import clock
from tasks.context import open_mailbox, sweep_context
from tasks.notices import notices_recorded
from tasks.retry_policy import DATABASE_RETRIES, MAILBOX_RETRIES
from tasks.replies import TriagedBatch, draft_batch, retrieve, triage_batch

log = logging.getLogger(__name__)


ESCALATED_CATEGORY = "rxinbox: escalated"

@runtime_checkable
class Categorising(Protocol):
    """A mailbox that can label messages (Microsoft 365 categories)."""

    def categorise_many(self, categories: dict[str, str]) -> None: ...


@dataclass
class Listing:
    """What the mailbox holds now, split into new refs and refs already handled."""

    seen: int
    new_refs: list[str]
    known: int


@dataclass
class Batch:
    """A processed batch waiting to be committed."""

    items: list[pipeline.StoredItem] = field(default_factory=list)
    raw_by_key: dict[str, bytes] = field(default_factory=dict)
    duplicates: int = 0


def mailbox_for(params: SweepParams) -> Mailbox:
    return open_mailbox(sweep_context().settings, params.source, params.mailbox)


@task(**MAILBOX_RETRIES)
def reconcile_marks(params: SweepParams) -> int:
    """Mark in the mailbox what a crashed sweep committed but did not get to mark."""
    ctx, mailbox = sweep_context(), mailbox_for(params)
    refs = ctx.store.unmarked_refs(mailbox.name)
    if refs:
        with notices_recorded(ctx, mailbox):
            mailbox.mark_processed(refs)
        ctx.store.set_marked(mailbox.name, refs)
    return len(refs)


@task(**MAILBOX_RETRIES)
def list_new(params: SweepParams) -> Listing:
    """List the mailbox and drop refs that are already recorded as processed or quarantined."""
    ctx, mailbox = sweep_context(), mailbox_for(params)
    with notices_recorded(ctx, mailbox):
        refs = mailbox.list_refs()
    known = ctx.store.known_refs(mailbox.name, refs)
    new_refs = [r for r in refs if r not in known]
    if params.limit:
        new_refs = new_refs[: params.limit]
    return Listing(seen=len(refs), new_refs=new_refs, known=len(known))


@task(**MAILBOX_RETRIES)
def fetch(params: SweepParams, refs: list[str]) -> list[InboundMessage]:
    """Fetch raw messages for a batch of refs."""
    ctx, mailbox = sweep_context(), mailbox_for(params)
    with notices_recorded(ctx, mailbox):
        return list(mailbox.fetch(refs))


@dataclass
class Prepared:
    """A batch parsed, de-duplicated and triaged, waiting for its KB passages and drafts."""

    batch: Batch
    triaged: TriagedBatch
    keys: list[str] = field(default_factory=list)


@task(cache_policy=NO_CACHE)
def prepare(params: SweepParams, inbound: list[InboundMessage], earlier_keys: frozenset[str] = frozenset()) -> Prepared:
    """Parse, de-duplicate (against the store and this sweep's earlier batches) and triage a batch."""
    ctx = sweep_context()
    mailbox_name = params.mailbox or ctx.settings.mailbox_name
    now = clock.now()
    outcomes = parse_many([m.raw for m in inbound])
    known = ctx.store.known_keys(mailbox_name, [o.message_key for o in outcomes])
    batch, fresh, taken, keys = Batch(), [], set(known) | earlier_keys, []
    for message, outcome in zip(inbound, outcomes):
        if outcome.message_key in taken:
            batch.duplicates += 1
            continue
        taken.add(outcome.message_key)
        keys.append(outcome.message_key)
        if outcome.message is None:
            batch.raw_by_key[outcome.message_key] = message.raw
            raw_path = str(quarantine_path(ctx.settings.quarantine_dir, outcome.content_sha256))
            batch.items.append(pipeline.quarantine_item(mailbox_name, message.ref, outcome, raw_path, now))
        else:
            fresh.append((message.ref, outcome.message))
    return Prepared(batch=batch, triaged=triage_batch(ctx, mailbox_name, fresh, now), keys=keys)


@task(cache_policy=NO_CACHE)
def retrieve_passages(params: SweepParams, prepared: Prepared) -> list[list[Passage]]:
    """Knowledge-base passages for the batch's routine questions (empty lists for the rest)."""
    return retrieve(sweep_context(), prepared.triaged.kb_queries())


@task(cache_policy=NO_CACHE)
def draft(params: SweepParams, prepared: Prepared, passages: list[list[Passage]]) -> Batch:
    """Plan the reply or escalation of every fresh message in the batch (no writes)."""
    batch = prepared.batch
    batch.items.extend(draft_batch(sweep_context(), prepared.triaged, passages))
    return batch


def quarantine_path(directory: Path, content_sha256: str) -> Path:
    return directory / f"{content_sha256}.eml"


@task(**DATABASE_RETRIES)
def commit(params: SweepParams, batch: Batch) -> list[pipeline.StoredItem]:
    """Store quarantined raw mail, then write cases, outbox, PMS requests and audit in one transaction."""
    ctx = sweep_context()
    for item in batch.items:
        if item.quarantine is not None:
            write_once(Path(item.quarantine.raw_path), batch.raw_by_key[item.message_key])
    return ctx.store.commit(params.mailbox or ctx.settings.mailbox_name, batch.items, clock.now())


def write_once(path: Path, data: bytes) -> None:
    """Content-addressed, atomic: a replay rewrites the same bytes or finds them there."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@task(**MAILBOX_RETRIES)
def mark(params: SweepParams, refs: list[str], written: list[pipeline.StoredItem]) -> None:
    """Tell the mailbox the batch is handled (and which mail a pharmacist must see), then record it."""
    ctx, mailbox = sweep_context(), mailbox_for(params)
    escalated = {item.ref: ESCALATED_CATEGORY for item in written if item.case and item.case.action == Action.escalate}
    # Staff working in Outlook see at a glance what waits for a pharmacist; other mailboxes have no categories.
    with notices_recorded(ctx, mailbox):
        if escalated and isinstance(mailbox, Categorising):
            mailbox.categorise_many(escalated)
        mailbox.mark_processed(refs)
    ctx.store.set_marked(mailbox.name, refs)


def tally(batch: Batch, written: list[pipeline.StoredItem]) -> SweepSummary:
    """One batch's counts (a sweep keeps these, not the batches: 10,000 live cases slow every GC pass)."""
    counts = SweepSummary(skipped_duplicates=batch.duplicates + (len(batch.items) - len(written)))
    for item in written:
        if item.quarantine is not None:
            counts.quarantined += 1
            continue
        counts.processed += 1
        action = item.case.action if item.case else None
        counts.escalated += action == Action.escalate
        counts.drafted += action == Action.draft_for_approval
        counts.auto_sent += action == Action.auto_send
        counts.closed += action == Action.close_without_reply
    return counts


def summarise(listing: Listing, tallies: list[SweepSummary]) -> SweepSummary:
    """The sweep's counts: what the listing saw plus every batch's tally."""
    counts = [SweepSummary(seen=listing.seen, skipped_duplicates=listing.known), *tallies]
    return SweepSummary(**{name: sum(getattr(c, name) for c in counts) for name in SweepSummary.model_fields})


@task(**DATABASE_RETRIES)
def record_sweep(params: SweepParams, event: str, details: dict) -> None:
    """Write the sweep's own start/finish event to the audit chain."""
    ctx = sweep_context()
    mailbox = params.mailbox or ctx.settings.mailbox_name
    audit = AuditEvent(at=clock.now(), actor=pipeline.ACTOR, event=event, subject=f"mailbox:{mailbox}", details=details)
    with ctx.engine.begin() as conn:
        append_audit(conn, [audit])
