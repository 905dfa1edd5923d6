"""Load the report's inputs, read-only, from the bot's SQLite file and the agent's store.

The bot's file is opened with SQLite's ``mode=ro`` and its tables are reflected from the file
(SQLAlchemy's ``MetaData.reflect``): the agent reads the bot's database as any other program's,
by table and column names, and never imports the bot (a report must not write to the database
of a running bot, nor create one that does not exist). The names it reads are the contract:
``trades``, ``fills`` (time_ms, coin, fee), ``equity_snapshots`` (id, at, equity),
``positions``, ``halts``; tests/agent/reports reads a database the bot's own store wrote. The agent's store is read through its public :class:`agent.store.Store` methods.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData, create_engine, select
from sqlalchemy.exc import SQLAlchemyError

from botwarden.errors import ModuleError

# pandas (with numpy) adds ~100 MB to a process; the resident agent imports this module through
# the module registry, so pandas is imported inside the functions that compute a report.
if TYPE_CHECKING:
    import pandas as pd

BOT_TABLES = ("trades", "fills", "equity_snapshots", "positions", "halts")
ACTION_RUNS_SCANNED = 10_000
"""How many of the newest audited action runs are scanned for remediations in the window."""


@dataclass(frozen=True)
class BotFrames:
    """The bot's tables as pandas frames (datetimes naive UTC, as stored)."""

    trades: pd.DataFrame
    fills: pd.DataFrame
    equity: pd.DataFrame
    positions: pd.DataFrame
    halts: pd.DataFrame


@dataclass(frozen=True)
class AgentRecords:
    """Incidents that may overlap the window and the agent's audited action runs."""

    incidents: list[Any] = field(default_factory=list)
    action_runs: list[Any] = field(default_factory=list)
    note: str = ""


def load_bot_frames(db_path: str | Path) -> BotFrames:
    """Read the bot's trades, fills, equity snapshots, positions and halts.

    Raises :class:`ModuleError` when the file is missing or is not a bot database.
    """
    import pandas as pd  # heavy (~100 MB RSS): only when a report is computed

    path = Path(db_path)
    if not path.is_file():
        raise ModuleError(f"bot database {path} does not exist (has the bot ever run with this setting?)")
    engine = create_engine(f"sqlite:///file:{path.resolve()}?mode=ro&uri=true")
    try:
        with engine.connect() as conn:
            tables = MetaData()
            tables.reflect(conn, only=BOT_TABLES)
            t = tables.tables
            fills, equity = t["fills"].c, t["equity_snapshots"].c
            return BotFrames(
                trades=pd.read_sql(select(t["trades"]), conn),
                fills=pd.read_sql(select(fills.time_ms, fills.coin, fills.fee), conn),
                equity=pd.read_sql(select(equity.id, equity.at, equity.equity), conn),
                positions=pd.read_sql(select(t["positions"]), conn),
                halts=pd.read_sql(select(t["halts"]), conn),
            )
    except SQLAlchemyError as exc:
        raise ModuleError(f"cannot read the bot database {path}: {exc.__class__.__name__}: "
                          f"{getattr(exc, 'orig', exc)}") from None
    finally:
        engine.dispose()


def load_agent_records(db_path: str | Path, since: datetime) -> AgentRecords:
    """Incidents that can overlap a window starting at ``since``, and recent action runs.

    Through the public store API: every unresolved incident, plus every incident named by a
    transition event at or after ``since`` (a resolve or an escalation carries the incident;
    an incident resolved before ``since`` cannot overlap the window). A missing file is not an
    error (an agent that never ran has no incidents): the result says so in ``note``.
    """
    from agent.store import Store

    path = Path(db_path)
    if not path.is_file():
        return AgentRecords(note=f"agent store {path} does not exist: no incidents or remediations known")
    store = Store(f"sqlite:///{path.resolve()}")
    try:
        incidents = {i.id: i for i in store.open_incidents()}
        for event in store.events_since(since, kinds=["transition"]):
            if event.incident_id is not None and event.incident_id not in incidents:
                found = store.get_incident(event.incident_id)
                if found is not None:
                    incidents[found.id] = found
        runs = store.action_runs(limit=ACTION_RUNS_SCANNED)
        return AgentRecords(incidents=list(incidents.values()), action_runs=runs)
    except SQLAlchemyError as exc:
        raise ModuleError(f"cannot read the agent store {path}: {exc.__class__.__name__}") from None
    finally:
        store.close()
