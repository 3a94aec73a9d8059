"""The mailbox-sweep deployment: fetch new mail, parse, triage, decide, draft, store, mark."""

import rxinbox  # noqa: F401  (switches telemetry off before prefect reads its settings)
from prefect import flow
from prefect.futures import PrefectFuture
from prefect.utilities.annotations import quote

from data_contracts.models import SweepParams, SweepSummary
from flows.hooks import alert_on_failure
from tasks import outbox, sweep
from tasks.context import sweep_context


@flow(name="mailbox-sweep", log_prints=False, on_failure=[alert_on_failure])
def mailbox_sweep(params: SweepParams = SweepParams()) -> SweepSummary:
    """Sweep one mailbox once: every new message ends as a case or in quarantine, exactly once."""
    batch_size = params.batch_size or sweep_context().settings.batch_size
    sweep.reconcile_marks(params)
    listing = sweep.list_new(params)
    sweep.record_sweep(params, "sweep.started", {"seen": listing.seen, "new": len(listing.new_refs)})
    results, earlier_keys, previous = [], set(), None
    for start in range(0, len(listing.new_refs), batch_size):
        refs = listing.new_refs[start:start + batch_size]
        # quote(): Prefect would otherwise walk every message of a batch looking for futures.
        inbound = sweep.fetch(params, quote(refs))
        prepared = sweep.prepare(params, quote(inbound), quote(frozenset(earlier_keys)))
        earlier_keys.update(prepared.keys)
        # The KB's embedding model runs outside the GIL in a worker thread, so this batch's questions are
        # embedded while the previous batch is drafted, stored and marked on the flow's own thread.
        passages = sweep.retrieve_passages.submit(params, quote(prepared))
        if previous is not None:
            results.append(finish_batch(params, *previous))
        previous = (refs, prepared, passages)
    if previous is not None:
        results.append(finish_batch(params, *previous))
    outbox.deliver(params)  # anything an earlier delivery left pending (a mailbox that was briefly down)
    summary = sweep.summarise(listing, results)
    sweep.record_sweep(params, "sweep.finished", summary.model_dump())
    return summary


def finish_batch(params: SweepParams, refs: list[str], prepared: sweep.Prepared,
                 passages: PrefectFuture) -> SweepSummary:
    """Draft, commit, mark and deliver one prepared batch, in that order (a crash in between is replayed)."""
    batch = sweep.draft(params, quote(prepared), quote(passages.result()))
    written = sweep.commit(params, quote(batch))
    sweep.mark(params, quote(refs), quote(written))
    # Delivered batch by batch: replies reach the mailbox while the sweep goes on, and the writing
    # overlaps the next batch's knowledge-base embeddings.
    outbox.deliver(params)
    return sweep.tally(batch, written)


if __name__ == "__main__":
    mailbox_sweep()
