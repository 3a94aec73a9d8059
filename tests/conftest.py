"""Test-wide setup: telemetry off and Prefect's state in a throw-away directory, before any import."""

import os
import tempfile
import uuid
from pathlib import Path

_PREFECT_HOME = tempfile.mkdtemp(prefix="rxinbox-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("RXINBOX_HOME", tempfile.mkdtemp(prefix="rxinbox-home-"))
# Models are versioned by their training data: one trained copy serves every test's fresh home.
os.environ.setdefault("RXINBOX_MODEL_CACHE", os.path.join(tempfile.gettempdir(), "rxinbox-test-models"))

import pytest  # noqa: E402

import rxinbox  # noqa: E402,F401  (applies the telemetry defaults)
from prefect.testing.utilities import prefect_test_harness  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402

from connectors.database import dispose_all  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh RXINBOX_HOME for one test, with the clock pinned to the demo's morning."""
    path = tmp_path / "home"
    monkeypatch.setenv("RXINBOX_HOME", str(path))
    monkeypatch.setenv("RXINBOX_NOW", "2026-11-25T09:00:00+01:00")
    return path


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test server for the whole session (it takes ~9 s to start)."""
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout (corpora, reference data); tests skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"../shared not found at {SHARED}: the corpus tests need the shared material beside the checkout")
    return SHARED


def _postgres_backends() -> list:
    url = os.environ.get("RXINBOX_TEST_POSTGRES_URL")
    return ["sqlite"] + ([pytest.param("postgres", marks=pytest.mark.postgres)] if url else [])


@pytest.fixture(params=_postgres_backends())
def db_home(request, home, monkeypatch) -> Path:
    """A fresh home whose database is SQLite, or a fresh PostgreSQL database when one is configured."""
    if request.param == "sqlite":
        yield home
        return
    admin_url = os.environ["RXINBOX_TEST_POSTGRES_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    name = f"rxtest_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    monkeypatch.setenv("RXINBOX_DATABASE_URL", admin_url.rsplit("/", 1)[0] + f"/{name}")
    yield home
    dispose_all()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()
