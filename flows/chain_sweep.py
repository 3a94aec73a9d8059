"""The chain-sweep deployment: a pharmacy chain's mailboxes swept in parallel on a Dask cluster."""

import os
import socket

import rxinbox  # noqa: F401  (switches telemetry off before prefect reads its settings)
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait
from prefect_dask import DaskTaskRunner
from pydantic import Field

from connectors.database import open_database
from connectors.mailbox_config import load_mailboxes
from data_contracts.models import Contract, SweepParams, SweepSummary
from flows.hooks import alert_on_failure
from flows.mailbox_sweep import mailbox_sweep
from rxinbox.settings import get_settings
from tasks.context import mailboxes_file

# A real cluster is named by its scheduler's address; without one each run starts a local cluster.
DASK_ADDRESS_ENV = "RXINBOX_DASK_ADDRESS"
DASK_WORKERS_ENV = "RXINBOX_DASK_WORKERS"


class ChainSweepParams(Contract):
    """Parameters of the chain-sweep flow (shown as a form in the Prefect UI)."""

    pharmacy: str | None = Field(default=None, description="Only this pharmacy's mailboxes (its id in mailboxes.yaml).")
    mailboxes: list[str] | None = Field(default=None, description="Only these mailboxes; default: all in mailboxes.yaml.")
    batch_size: int | None = Field(default=None, ge=1, le=5000)


class MailboxResult(Contract):
    """One mailbox's sweep in a chain sweep, and which worker process ran it."""

    mailbox: str
    summary: SweepSummary | None = None
    error_type: str | None = None
    worker: str


class ChainSweepSummary(Contract):
    """What a chain sweep did, per mailbox."""

    results: list[MailboxResult] = Field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        return [r.mailbox for r in self.results if r.error_type]


def dask_task_runner() -> DaskTaskRunner:
    """The scheduler at RXINBOX_DASK_ADDRESS, else a local cluster of worker processes."""
    address = os.environ.get(DASK_ADDRESS_ENV)
    if address:
        return DaskTaskRunner(address=address)
    workers = int(os.environ.get(DASK_WORKERS_ENV, "2"))
    return DaskTaskRunner(cluster_kwargs={
        "n_workers": workers, "processes": True, "threads_per_worker": 1,
        "host": "127.0.0.1", "dashboard_address": None,
    })


def select_mailboxes(params: ChainSweepParams) -> list[str]:
    """The mailbox names to sweep, checked against mailboxes.yaml so a typo fails before any work."""
    config = load_mailboxes(mailboxes_file(get_settings()))
    configured = [m.name for p in config.pharmacies if params.pharmacy in (None, p.id) for m in p.mailboxes]
    if params.pharmacy and not configured:
        raise ValueError(f"no pharmacy with id {params.pharmacy!r} (or it has no mailboxes) in mailboxes.yaml")
    if params.mailboxes is None:
        return configured
    unknown = sorted(set(params.mailboxes) - set(configured))
    if unknown:
        raise ValueError(f"mailboxes not configured{' for ' + params.pharmacy if params.pharmacy else ''}: {', '.join(unknown)}")
    return list(dict.fromkeys(params.mailboxes))


@task(cache_policy=NO_CACHE)
def prepare(params: ChainSweepParams) -> list[str]:
    """Migrate the database and create the PHI key once, before many processes open them at the same time."""
    open_database(get_settings())
    return select_mailboxes(params)


@task(cache_policy=NO_CACHE)
def sweep_one(mailbox: str, batch_size: int | None) -> MailboxResult:
    """Run the whole mailbox sweep for one mailbox in whichever Dask worker picks it up."""
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        summary = mailbox_sweep(SweepParams(mailbox=mailbox, batch_size=batch_size))
    except Exception as exc:  # one broken mailbox must not stop the chain's other sweeps
        return MailboxResult(mailbox=mailbox, error_type=type(exc).__name__, worker=worker)
    return MailboxResult(mailbox=mailbox, summary=summary, worker=worker)


@flow(name="chain-sweep", task_runner=dask_task_runner(), on_failure=[alert_on_failure], log_prints=False)
def chain_sweep(params: ChainSweepParams = ChainSweepParams()) -> ChainSweepSummary:
    """Sweep many mailboxes at once, one task per mailbox spread over the Dask workers."""
    names = prepare(params)
    futures = [sweep_one.submit(name, params.batch_size) for name in names]
    wait(futures)
    summary = ChainSweepSummary(results=[f.result() for f in futures])
    if summary.failed:
        # Each mailbox's own sweep run already raised its alert; this marks the chain run failed too.
        raise RuntimeError(f"{len(summary.failed)} of {len(names)} mailbox sweeps failed: {', '.join(summary.failed)}")
    return summary


if __name__ == "__main__":
    chain_sweep()
