"""``agent history`` and the timeline behind ``agent explain``: what the agent observed,
decided, did, and who was told when. Everything shown is redacted."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from agent.cli import options
from agent.cli.common import console, load, store_url
from agent.core.values import format_duration, parse_duration
from agent.engine.operator_actions import redactor as _redactor
from agent.engine.operator_actions import timeline

__all__ = ["_redactor", "history", "timeline"]

_STYLE = {"OK": "green", "WARNING": "yellow", "CRITICAL": "red", "UNKNOWN": "magenta"}


def history(
    since: Annotated[str, typer.Option("--since", help="how far back (1h, 2d)")] = "24h",
    host: Annotated[str | None, typer.Option("--host", help="only this host")] = None,
    check: Annotated[str | None, typer.Option("--check", help="only this check name")] = None,
    inventory: options.Inventory = options.DEFAULT_INVENTORY,
    store: options.Store = None,
) -> None:
    """Incidents since a time: state, how long, whether and how the operator was told."""
    from agent.store import Store

    config = load(inventory, None, for_reading=True)
    redact = _redactor(config)
    start = datetime.now(UTC) - timedelta(seconds=parse_duration(since))
    st = Store(store_url(config, store), create=False)
    try:
        st.migrate()
        incidents = st.find_incidents(since=start, host=host, check=check)
        rows = [(i, st.list_notifications(incident_id=i.id)) for i in incidents]
    finally:
        st.close()
    if not rows:
        console.print(f"no incidents since {start:%Y-%m-%d %H:%M} UTC")
        return
    now = datetime.now(UTC)
    table = Table(title=f"incidents since {start:%Y-%m-%d %H:%M} UTC")
    for col in ("#", "check (play)", "host", "state", "opened", "lasted", "told", "held back", "ack"):
        table.add_column(col)
    for inc, notes in rows:
        lasted = format_duration(((inc.resolved_at or now) - inc.opened_at).total_seconds())
        sent = [n for n in notes if n.status == "sent"]
        told = f"{len(sent)}/{len(notes)} sent" if notes else "nothing"
        table.add_row(str(inc.id), escape(f"{inc.check} ({inc.play})"), escape(inc.host),
                      f"[{_STYLE.get(inc.state.name, 'white')}]{inc.state.name}[/]"
                      + ("" if inc.resolved_at is None else " → OK"),
                      f"{inc.opened_at:%m-%d %H:%M:%S}", lasted + ("" if inc.resolved_at else " (open)"), told,
                      escape(redact(inc.suppressed or "")), escape(inc.acknowledged_by or ""))
    console.print(table)
