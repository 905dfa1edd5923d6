"""``agent history`` and the timeline behind ``agent explain``: what the agent observed,
decided, did, and who was told when. Everything shown is redacted."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from agent.cli import options
from agent.cli.common import console, load, store_url
from agent.core.values import format_duration, parse_duration

_STYLE = {"OK": "green", "WARNING": "yellow", "CRITICAL": "red", "UNKNOWN": "magenta"}


def _redactor(config: Any) -> Any:
    """The configuration's redactor: target URLs, environment values read, secret parameters."""
    return config.templating.redactor


def history(
    since: Annotated[str, typer.Option("--since", help="how far back (1h, 2d)")] = "24h",
    host: Annotated[str | None, typer.Option("--host", help="only this host")] = None,
    check: Annotated[str | None, typer.Option("--check", help="only this check name")] = None,
    inventory: options.Inventory = options.DEFAULT_INVENTORY,
    store: options.Store = None,
) -> None:
    """Incidents since a time: state, how long, whether and how the operator was told."""
    from agent.store import Store

    config = load(inventory, None)
    redact = _redactor(config)
    start = datetime.now(UTC) - timedelta(seconds=parse_duration(since))
    st = Store(store_url(config, store))
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


def timeline(st: Any, incident_id: int, redact: Any) -> list[tuple[datetime, str, str]]:
    """(when, what kind, text) of everything about one incident, oldest first."""
    inc = st.get_incident(incident_id)
    if inc is None:
        return []
    out: list[tuple[datetime, str, str]] = []
    for r in reversed(st.recent_results(play=inc.play, host=inc.host, check=inc.check, limit=20,
                                        since=inc.opened_at - timedelta(minutes=5))):
        if r.observed_at <= (inc.resolved_at or datetime.max.replace(tzinfo=UTC)):
            text = f"{r.state.name}" + (f" value={r.value}" if r.value else "") + (f" error={r.error}" if r.error else "")
            out.append((r.observed_at, "observed", text))
    for e in st.recent_events(incident_id=incident_id, limit=500):
        out.append((e.at, "decided", f"{e.kind}: {e.message}"))
    for e in st.recent_events(key=inc.key, limit=500, since=inc.opened_at - timedelta(seconds=1)):
        if e.incident_id is None and (inc.resolved_at is None or e.at <= inc.resolved_at + timedelta(minutes=1)):
            out.append((e.at, "decided", f"{e.kind}: {e.message}"))
    for a in st.action_runs(incident_id=incident_id, limit=500):
        flag = "failed" if a.failed else "changed" if a.changed else "ok"
        out.append((a.started_at, "done", f"{a.task} [{a.module}] by {a.actor}: {flag}"
                    + (" (check mode)" if a.check_mode else "") + (f": {a.msg}" if a.msg else "")))
    for n in st.list_notifications(incident_id=incident_id):
        delivery = (f"delivered {n.sent_at:%H:%M:%S}" if n.status == "sent" else
                    f"{n.status}" + (f" after {n.attempts} attempt(s): {n.last_error}" if n.attempts else ""))
        out.append((n.created_at, "told", f"{n.kind} to {n.target} via {n.route or '-'}: {n.title} ({delivery})"))
    if inc.resolved_at:
        out.append((inc.resolved_at, "observed", "resolved: OK again"))
    out.sort(key=lambda row: row[0])
    return [(at, kind, redact(text)) for at, kind, text in out]
