"""The mailbox-sweep deployment: fetch new mail, parse, triage, decide, draft, store, mark."""

import rxinbox  # noqa: F401  (switches telemetry off before prefect reads its settings)
from prefect import flow
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
    results = []
    for start in range(0, len(listing.new_refs), batch_size):
        refs = listing.new_refs[start:start + batch_size]
        # quote(): Prefect would otherwise walk every message of a batch looking for futures.
        inbound = sweep.fetch(params, quote(refs))
        batch = sweep.process(params, quote(inbound))
        written = sweep.commit(params, quote(batch))
        sweep.mark(params, quote(refs), quote(written))
        results.append((batch, written))
    outbox.deliver(params)
    summary = sweep.summarise(listing, results)
    sweep.record_sweep(params, "sweep.finished", summary.model_dump())
    return summary


if __name__ == "__main__":
    mailbox_sweep()
