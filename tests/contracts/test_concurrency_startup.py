"""Processes starting together on a fresh home or an empty database agree on one PHI key and one schema."""

import multiprocessing
import os
import stat
import uuid
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from connectors.database import alembic_config, load_cipher, make_engine, migrate
from core.crypto import Cipher
from rxinbox.settings import Settings

PROCESSES = 4
ROUNDS = 4
TIMEOUT = 120


def first_start(homes: list[str], barrier, results) -> None:
    """Child process: for each fresh home, wait for the others, then load the PHI key at the same moment."""
    for home in homes:
        barrier.wait(TIMEOUT)
        try:
            cipher = load_cipher(Settings(home=Path(home), secret_key=None))
            results.put((home, cipher.blind_index("probe")))
        except Exception as exc:  # reported to the parent, which fails the test with it
            results.put((home, f"error: {exc!r}"))


def concurrent_migrate(url: str, barrier, results) -> None:
    """Child process: migrate the database at the same moment as the others."""
    engine = make_engine(url)
    try:
        barrier.wait(TIMEOUT)
        migrate(engine)
        results.put("ok")
    except Exception as exc:  # reported to the parent, which fails the test with it
        results.put(f"error: {exc!r}")
    finally:
        engine.dispose()


def run_together(target, args_for: list[tuple], parties: int, answers: int) -> list:
    """Start the processes (spawned: fresh interpreters, as separate workers are), collect their answers."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(parties), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, barrier, results)) for args in args_for]
    for proc in procs:
        proc.start()
    try:
        collected = [results.get(timeout=TIMEOUT) for _ in range(answers)]
    finally:
        for proc in procs:
            proc.join(TIMEOUT)
            if proc.is_alive():
                proc.kill()
    assert all(proc.exitcode == 0 for proc in procs)
    return collected


def test_processes_starting_on_a_fresh_home_share_one_key(tmp_path, monkeypatch):
    monkeypatch.delenv("RXINBOX_SECRET_KEY", raising=False)
    homes = [str(tmp_path / f"home-{n}") for n in range(ROUNDS)]
    answers = run_together(first_start, [(homes,)] * PROCESSES, PROCESSES, PROCESSES * ROUNDS)
    assert not [a for _, a in answers if a.startswith("error")], answers
    for home in homes:
        key_file = Path(home) / "secret.key"
        expected = Cipher(key_file.read_text().strip()).blind_index("probe")
        assert [a for h, a in answers if h == home] == [expected] * PROCESSES
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert sorted(p.name for p in Path(home).iterdir()) == ["secret.key"], "no temp file is left behind"


@pytest.mark.postgres
@pytest.mark.skipif(not os.environ.get("RXINBOX_TEST_POSTGRES_URL"), reason="RXINBOX_TEST_POSTGRES_URL is not set")
def test_processes_migrating_an_empty_postgres_database_together_all_succeed():
    admin_url = os.environ["RXINBOX_TEST_POSTGRES_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    name = f"rxtest_{uuid.uuid4().hex[:12]}"
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        answers = run_together(concurrent_migrate, [(url,)] * 3, 3, 3)
        assert answers == ["ok"] * 3
        engine = make_engine(url)
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        engine.dispose()
        assert versions == [ScriptDirectory.from_config(alembic_config(url)).get_current_head()]
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
