"""The database connector: engine, PHI cipher and schema migrations (SQLite or PostgreSQL)."""

import logging
import os
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text

from core.crypto import Cipher
from data_contracts import tables
from rxinbox.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "data_contracts" / "migrations"
# PostgreSQL advisory lock key serialising migrations of one database ("rxinbox" in ASCII, as a bigint).
MIGRATION_LOCK = 0x7278696E626F78
# Execution option marking a connection as read-only, so SQLite begins it without the write lock.
READ_ONLY = "rxinbox_read"


def load_cipher(settings: Settings) -> Cipher:
    """The PHI key from RXINBOX_SECRET_KEY, else from home/secret.key (created 0600 on first use)."""
    if settings.secret_key:
        return Cipher(settings.secret_key)
    key_file = settings.key_file
    if not key_file.exists():
        _create_key_file(key_file)
    return Cipher(key_file.read_text().strip())


def _create_key_file(key_file: Path) -> None:
    # Processes starting together on a fresh home must agree on one key, and none may read a
    # half-written file: the key is written in full under a private name, then linked into place,
    # which fails if another process linked its key first (that one is then used by everyone).
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=key_file.parent, prefix=f".{key_file.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(Cipher.generate_key())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, key_file)
        except FileExistsError:
            return
        log.info("generated a new PHI encryption key file under RXINBOX_HOME")
    finally:
        os.unlink(tmp)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE instead of pysqlite's deferred BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets the dashboard read while a sweep writes; a busy timeout rides out short locks.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    if conn.get_execution_options().get(READ_ONLY):
        # A reader needs no lock: WAL gives it a snapshot while a sweep writes.
        conn.exec_driver_sql("BEGIN")
        return
    # Take the write lock up front: a deferred transaction that later upgrades can fail with
    # SQLITE_BUSY under WAL when another process (a second sweep) committed in between.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """An engine for the URL with the settings rxinbox relies on."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True)


def reading(engine: Engine) -> Connection:
    """A connection for reads only; on SQLite its transactions do not wait for (or block) a writer."""
    return engine.connect().execution_options(**{READ_ONLY: True})


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    config = alembic_config(str(engine.url))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Processes starting together on an empty database would each create the tables; the
            # lock (released at commit) makes the others wait and then find the schema at head.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def schema_is_current(engine: Engine) -> bool:
    return inspect(engine).has_table("alembic_version") and inspect(engine).has_table("cases")


_ENGINES: dict[str, Engine] = {}


def _open(url: str) -> Engine:
    if url not in _ENGINES:
        engine = make_engine(url)
        migrate(engine)
        _ENGINES[url] = engine
    return _ENGINES[url]


def open_database(settings: Settings) -> Engine:
    """Install the PHI cipher, migrate, and return the engine (cached per URL within a process)."""
    settings.ensure_dirs()
    cipher = load_cipher(settings)
    tables.use_cipher(cipher)
    return _open(settings.db_url)


def dispose_all() -> None:
    """Close every cached engine (tests drop their databases afterwards)."""
    for engine in list(_ENGINES.values()):
        engine.dispose()
    _ENGINES.clear()
