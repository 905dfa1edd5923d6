"""The schema comes from the shipped migrations, and the models agree with them."""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from agent.store import Store
from agent.store._database import alembic_config
from agent.store.models import Base

TABLES = {"check_results", "check_states", "incidents", "notifications", "action_runs", "events"}


def test_fresh_database_is_migrated_to_head(tmp_path: Path) -> None:
    db = tmp_path / "var" / "agent.db"  # var/ does not exist yet: the store creates it
    store = Store(f"sqlite:///{db}")
    store.migrate()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with store.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head
        assert TABLES <= set(sa.inspect(conn).get_table_names())
    store.migrate()  # idempotent on an up-to-date database
    store.close()
    assert db.exists()


def test_models_match_migrations(store: Store) -> None:
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []


def test_comparison_would_notice_a_model_change(store: Store) -> None:
    """Guards the test above: a model column that no migration creates shows up as a diff."""
    metadata = sa.MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    metadata.tables["incidents"].append_column(sa.Column("runbook_url", sa.Text()))
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d[0] for d in diff] == ["add_column"]


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
