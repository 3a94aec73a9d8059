"""Alembic migrations go up, down and up again, and the result is exactly `data_contracts.tables`."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Text, inspect

from connectors.database import alembic_config, make_engine
from data_contracts import tables as t
from rxinbox.settings import get_settings

ENCRYPTED = (t.EncryptedText, t.EncryptedJSON)


def is_encrypted_column_type(diff) -> bool:
    """Encrypted columns are Text in the database by design; alembic may report the decorator."""
    if not isinstance(diff, list):
        return False
    ops = [d for d in diff if d[0] == "modify_type"]
    return len(ops) == len(diff) and all(isinstance(d[-1], ENCRYPTED) and isinstance(d[-2], Text) for d in ops)


def schema_differences(engine) -> list:
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), t.metadata)
    return [d for d in diffs if not is_encrypted_column_type(d)]


def user_tables(engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_upgrade_matches_tables(db_home):
    url = get_settings().db_url
    db_home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    config = alembic_config(url)
    try:
        command.upgrade(config, "head")
        assert user_tables(engine) == set(t.metadata.tables)
        assert schema_differences(engine) == []

        command.downgrade(config, "base")
        assert user_tables(engine) == set()

        command.upgrade(config, "head")
        assert user_tables(engine) == set(t.metadata.tables)
        assert schema_differences(engine) == []
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_heads() == tuple(ScriptDirectory.from_config(config).get_heads())
    finally:
        engine.dispose()
