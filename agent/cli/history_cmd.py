"""``agent history`` and the timeline behind ``agent explain``: what the agent observed,
decided, did, and who was told when. Everything shown is redacted."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from agent.cli import options
from agent.cli.common import console, escape, load, new_table, store_url
from agent.core.values import format_duration, parse_duration
from agent.engine.operator_actions import redactor as _redactor
from agent.engine.operator_actions import timeline

__all__ = ["_redactor", "history", "timeline"]

OPERATOR_EVENTS = ("ack", "silence", "silence-expired", "silence_ended")
"""Events of what people did (or what ended what they did) outside a play's tasks."""


def _people(st: Any, start: datetime, *, host: str | None, check: str | None) -> list[tuple[datetime, str, str]]:
    """``(when, who, what)``, oldest first: the plays people ran (one line per run: the tasks of
    one actor's play in a row, a task seen again starting the next run) and the operator events
    since ``start``."""
    if check is not None:
        return []  # a check's history is its incidents
    rows = []
    for r in st.action_runs(limit=5000):  # newest first
        if r.started_at < start:
            break
        if r.actor != "agent" and (host is None or r.host == host):
            rows.append(r)
    runs: list[list[Any]] = []
    for r in reversed(rows):
        last = runs[-1] if runs else None
        if (last is None or (last[0].actor, last[0].play, last[0].host, last[0].check_mode)
                != (r.actor, r.play, r.host, r.check_mode) or r.task in {t.task for t in last}):
            runs.append([r])
        else:
            last.append(r)
    out = []
    for tasks in runs:
        first, failed = tasks[0], sum(t.failed for t in tasks)
        out.append((first.started_at, first.actor, f"ran {first.play}" + (" in check mode" if first.check_mode else "")
                    + f" on {first.host}: {len(tasks)} task(s)" + (f", {failed} failed" if failed else "")))
    for kind in OPERATOR_EVENTS:
        out += [(e.at, _who(e), _what(e)) for e in st.recent_events(kind=kind, since=start, limit=1000)]
    now = datetime.now(UTC)
    for s in st.silences(include_ended=True):  # ran out by time: no event says so
        if s.expired_at is None and start <= s.ends_at <= now:
            out.append((s.ends_at, RAN_OUT, f"silence #{s.id} ran out (set by {s.created_by} for "
                        f"{format_duration((s.ends_at - s.starts_at).total_seconds())}: "
                        + " ".join(f"{k}={v}" for k, v in s.matchers.items())
                        + (f" ({s.reason})" if s.reason else "") + ")"))
    return sorted(out, key=lambda x: x[0])


RAN_OUT = "(its time)"
"""The "who" of a silence that ran out by itself at its end time."""
_BY = re.compile(r"\bby (\S+)")


def _who(e: Any) -> str:
    """Who did what an operator event records: its ``by`` (events since issue 17), else the
    ``by <actor>`` of its text (older rows); a silence the agent ended (its check OK again, a
    resume) was ended by the agent."""
    if e.kind == "silence_ended":
        return "agent"
    by = (e.data or {}).get("by")
    if by:
        return str(by)
    found = _BY.search(e.message)
    return found.group(1) if found else ""


def _what(e: Any) -> str:
    if e.kind == "ack":
        comment = (e.data or {}).get("comment")
        return (f"acknowledged incident #{e.incident_id} ({e.key})" if e.incident_id is not None else e.message) + (
            f": {comment}" if comment else "")
    return e.message


def _print_people(acts: list[tuple[datetime, str, str]], start: datetime, redact: Any) -> None:
    if not acts:
        return
    table = new_table(title=f"what people did since {start:%Y-%m-%d %H:%M} UTC")
    for col in ("at", "who", "what"):
        table.add_column(col)
    for at, who, what in acts:
        table.add_row(f"{at:%m-%d %H:%M:%S}", escape(who), escape(redact(what)))
    console.print(table)


_STYLE = {"OK": "green", "WARNING": "yellow", "CRITICAL": "red", "UNKNOWN": "magenta"}


def history(
    since: Annotated[str, typer.Option("--since", help="how far back (1h, 2d)")] = "24h",
    host: Annotated[str | None, typer.Option("--host", help="only this host")] = None,
    check: Annotated[str | None, typer.Option("--check", help="only this check name")] = None,
    inventory: options.Inventory = options.DEFAULT_INVENTORY,
    store: options.Store = None,
) -> None:
    """Incidents since a time: state, how long, whether and how the operator was told; then what
    people did meanwhile (plays run from the CLI or the web page, halts and resumes, acks,
    silences), whoever did it and wherever."""
    from agent.store import Store

    config = load(inventory, None, for_reading=True)
    redact = _redactor(config)
    try:
        start = datetime.now(UTC) - timedelta(seconds=parse_duration(since))
    except ValueError as exc:  # a typo of the operator's: a usage error (exit 2), not an internal one
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    st = Store(store_url(config, store), create=False)
    try:
        st.migrate()
        incidents = st.find_incidents(since=start, host=host, check=check)
        rows = [(i, st.list_notifications(incident_id=i.id)) for i in incidents]
        acts = _people(st, start, host=host, check=check)
    finally:
        st.close()
    _print_people(acts, start, redact)
    if not rows:
        console.print(f"no incidents since {start:%Y-%m-%d %H:%M} UTC")
        return
    now = datetime.now(UTC)
    table = new_table(title=f"incidents since {start:%Y-%m-%d %H:%M} UTC")
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
