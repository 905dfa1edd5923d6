"""The schema comes from the shipped migrations, and the models agree with them."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from agent.store import Store, _database
from agent.store._database import alembic_config, migrations_fingerprint
from agent.store.models import Base
from botwarden.errors import OperationalError

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


def _head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_a_migrated_database_is_stamped_with_the_fingerprint_of_the_shipped_migrations(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA user_version").scalar() == migrations_fingerprint()


def test_the_fingerprint_changes_with_any_migration_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("0001_a.py", "0002_b.py"):
        (tmp_path / name).write_text(f"revision = {name[:4]!r}\n")
    monkeypatch.setattr(_database, "VERSIONS_DIR", tmp_path)
    migrations_fingerprint.cache_clear()  # cached per process: these are not the shipped files
    try:
        before = migrations_fingerprint()
        (tmp_path / "0002_b.py").write_text("revision = '0002'  # edited\n")
        migrations_fingerprint.cache_clear()
        edited = migrations_fingerprint()
        (tmp_path / "0003_c.py").write_text("revision = '0003'\n")
        migrations_fingerprint.cache_clear()
        added = migrations_fingerprint()
    finally:
        migrations_fingerprint.cache_clear()
    assert len({before, edited, added}) == 3 and min(before, edited, added) > 0


MIGRATE_IN_A_FRESH_PROCESS = """
import json, sys
from agent.store import Store
store = Store(sys.argv[1])
store.migrate(in_child_process=sys.argv[2] == "child")
with store.engine.connect() as conn:
    version = [r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")]
    columns = [r[1] for r in conn.exec_driver_sql("PRAGMA table_info(incidents)")]
print(json.dumps({"alembic_imported": "alembic" in sys.modules, "version": version, "columns": columns}))
"""


def _migrate_in_a_fresh_process(url: str, where: str = "here") -> dict[str, object]:
    """``Store.migrate()`` in a new interpreter: whether it imported Alembic, and what it left."""
    out = subprocess.run([sys.executable, "-c", MIGRATE_IN_A_FRESH_PROCESS, url, where], capture_output=True,
                         text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _database_at(tmp_path: Path, revision: str) -> str:
    url = f"sqlite:///{tmp_path / 'agent.db'}"
    if revision == "head":
        setup = Store(url)
        setup.migrate()  # the agent's way: migrated and stamped
        setup.close()
    elif revision != "new":
        setup = Store(url)
        with setup.engine.connect() as conn:
            command.upgrade(alembic_config(conn), revision)
            conn.commit()
        setup.close()
    return url


@pytest.mark.parametrize("start_at", ["head", "0001", "new"])
def test_alembic_is_imported_only_when_a_migration_is_due(tmp_path: Path, start_at: str) -> None:
    seen = _migrate_in_a_fresh_process(_database_at(tmp_path, start_at))

    assert seen["alembic_imported"] == (start_at != "head")
    assert seen["version"] == [_head()]
    assert "escalation_level" in seen["columns"]  # added by 0002: a database at 0001 was upgraded


@pytest.mark.parametrize("start_at", ["0001", "new"])
def test_a_due_migration_can_run_in_a_child_process(tmp_path: Path, start_at: str) -> None:
    """The resident agent's way: the database is migrated, the calling process never imports Alembic."""
    seen = _migrate_in_a_fresh_process(_database_at(tmp_path, start_at), "child")

    assert seen["alembic_imported"] is False
    assert seen["version"] == [_head()]
    assert "escalation_level" in seen["columns"]


def test_a_failed_migration_in_a_child_process_is_an_operational_error(tmp_path: Path) -> None:
    db = tmp_path / "agent.db"
    with sa.create_engine(f"sqlite:///{db}").begin() as conn:  # a table in the way of migration 0001
        conn.exec_driver_sql("CREATE TABLE incidents (id INTEGER PRIMARY KEY)")
    store = Store(f"sqlite:///{db}")

    with pytest.raises(OperationalError) as err:
        store.migrate(in_child_process=True)
    store.close()

    assert "migrating the store" in err.value.message
    assert "already exists" in err.value.message  # the child's own error is shown
