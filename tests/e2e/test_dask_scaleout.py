"""The chain sweep fans mailboxes out over a local Dask cluster of 2 worker processes, exactly once."""

import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connectors.database import open_database
from connectors.model_store import load_or_train, model_path, model_version, training_rows
from connectors.store import CaseStore
from core.audit import verify
from data_contracts import tables as t
from evals.mailgen import generate
from flows.chain_sweep import DASK_ADDRESS_ENV, ChainSweepParams, chain_sweep, select_mailboxes
from rxinbox.settings import get_settings

MODEL_CACHE = Path(tempfile.gettempdir()) / "rxinbox-test-models"
MESSAGES = 40
MAILBOXES = {"soendergade-inbox": "soendergade", "loeve-inbox": "loeve"}


def seed_triage_model(home: Path) -> None:
    """Copy the trained triage model into home: training it in every fresh home takes minutes on 2 cores.

    The cache is keyed by the model version (a hash of the training data, config and scikit-learn),
    so a stale artefact is never used.
    """
    load_or_train(MODEL_CACHE)
    source = model_path(MODEL_CACHE, model_version(training_rows()))
    (home / "models").mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, home / "models" / source.name)


def write_mailboxes(home: Path, root: Path, count: int) -> None:
    lines = ["pharmacies:"]
    for seed, (name, pharmacy) in enumerate(MAILBOXES.items(), start=5):
        if count:
            generate(root / name, count, seed=seed)
        else:
            (root / name).mkdir(parents=True, exist_ok=True)
        lines += [f"  - id: {pharmacy}", f"    name: {pharmacy.title()} Apotek", "    mailboxes:",
                  f'      - {{kind: local, name: {name}, path: "{root / name}"}}']
    home.mkdir(parents=True, exist_ok=True)
    (home / "mailboxes.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_mailbox_selection_is_checked_against_mailboxes_yaml(home, tmp_path):
    write_mailboxes(home, tmp_path / "mail", 0)
    assert select_mailboxes(ChainSweepParams()) == list(MAILBOXES)
    assert select_mailboxes(ChainSweepParams(pharmacy="loeve")) == ["loeve-inbox"]
    assert select_mailboxes(ChainSweepParams(mailboxes=["loeve-inbox", "loeve-inbox"])) == ["loeve-inbox"]
    with pytest.raises(ValueError, match="not configured for loeve: soendergade-inbox"):
        select_mailboxes(ChainSweepParams(pharmacy="loeve", mailboxes=["soendergade-inbox"]))
    with pytest.raises(ValueError, match="no pharmacy with id 'nope'"):
        select_mailboxes(ChainSweepParams(pharmacy="nope"))


@pytest.mark.e2e
@pytest.mark.slow
def test_chain_sweep_runs_mailboxes_on_two_dask_workers_exactly_once(home, tmp_path, prefect_harness, monkeypatch):
    monkeypatch.delenv(DASK_ADDRESS_ENV, raising=False)
    write_mailboxes(home, tmp_path / "mail", MESSAGES)
    seed_triage_model(home)

    summary = chain_sweep(ChainSweepParams(batch_size=10))

    results = {r.mailbox: r for r in summary.results}
    assert set(results) == set(MAILBOXES) and summary.failed == []
    for result in results.values():
        assert result.summary.seen == MESSAGES
        assert result.summary.processed + result.summary.quarantined == MESSAGES
    workers = {r.worker for r in results.values()}
    assert len(workers) == 2, f"each mailbox ran on its own Dask worker process: {workers}"
    assert all(not w.endswith(f":{os.getpid()}") for w in workers), "the work ran in the cluster, not in the flow's process"

    again = chain_sweep(ChainSweepParams(pharmacy="loeve"))
    [replay] = again.results
    assert replay.mailbox == "loeve-inbox"
    assert replay.summary.processed + replay.summary.quarantined == 0 and replay.summary.skipped_duplicates == MESSAGES

    engine = open_database(get_settings())
    with engine.connect() as conn:
        per_mailbox = dict(conn.execute(select(t.messages.c.mailbox, func.count()).group_by(t.messages.c.mailbox)).all())
        cases = conn.execute(select(func.count()).select_from(t.cases)).scalar()
        quarantined = conn.execute(select(func.count()).select_from(t.quarantine)).scalar()
    assert per_mailbox == {name: MESSAGES for name in MAILBOXES}
    assert cases + quarantined == MESSAGES * len(MAILBOXES)
    events = list(CaseStore(engine).audit_events())
    assert verify(events).ok
    created = Counter(e.subject for e in events if e.event == "case.created")
    assert len(created) == cases and set(created.values()) == {1}
