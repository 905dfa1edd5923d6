"""``agent status``: a table of every check: host, state, since, last value, last error."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from agent.cli import options
from agent.cli.common import console, escape, load, new_table, store_url
from agent.core.values import format_duration

_STYLE = {"OK": "green", "WARNING": "yellow", "CRITICAL": "red", "UNKNOWN": "magenta"}


def status(
    inventory: options.Inventory = options.DEFAULT_INVENTORY,
    paths: Annotated[list[str] | None, typer.Option("--playbooks", help="playbook files/dirs")] = None,
    store: options.Store = None,
    problems: Annotated[bool, typer.Option("--problems", help="only checks that are not OK")] = False,
) -> None:
    """Show the current state of every check, as the resident agent last recorded it."""
    from pathlib import Path

    from agent.store import Store

    config = load(inventory, [Path(p) for p in paths] if paths else None, for_reading=True)
    st = Store(store_url(config, store), create=False)
    try:
        st.migrate()
        records = st.load_check_states()
        started = st.recent_events(kind="start", limit=1)
    finally:
        st.close()
    redact = config.templating.redact
    now = datetime.now(UTC)
    table = new_table(show_lines=False)
    table.add_column("check (play / name)", no_wrap=True)
    table.add_column("host", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("since", no_wrap=True)
    table.add_column("last value", max_width=24, overflow="ellipsis", no_wrap=True)
    table.add_column("last error", max_width=60, overflow="fold")
    table.add_column("incident", no_wrap=True)
    shown = 0
    for bc in sorted(config.bound_checks, key=lambda b: b.key):
        rec = records.get(bc.key)
        state = rec.hard_state.name if rec else "PENDING"
        if rec and rec.soft_state != rec.hard_state:
            state += f" (soft {rec.soft_state.name} x{rec.consecutive})"
        if problems and (rec is None or rec.hard_state.name == "OK"):
            continue
        since = format_duration((now - rec.since).total_seconds()) + " ago" if rec and rec.since else ""
        style = _STYLE.get(state.split(" ")[0], "white")
        table.add_row(escape(f"{bc.play.name} / {bc.check.name}"), bc.host.name, f"[{style}]{state}[/]", since,
                      escape(redact(rec.last_value or "")) if rec else "",
                      escape(redact(rec.last_error or "")) if rec else "",
                      f"#{rec.incident_id}" if rec and rec.incident_id else "")
        shown += 1
    if shown:
        console.print(table)
    else:
        console.print("no checks" + (" with problems" if problems else ""))
    from agent.playbook.loader import skipped_target_message

    skipped = (started[0].data.get("skipped_targets") or {}) if started else {}
    for name, variables in sorted(skipped.items()):  # as the running agent saw its environment
        console.print(escape(skipped_target_message(name, variables)), style="yellow")
