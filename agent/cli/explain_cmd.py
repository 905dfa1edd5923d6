"""``agent explain INCIDENT``: the timeline of one incident (observed, decided, done, told)."""
from __future__ import annotations

from agent.cli import options
from agent.cli.common import console, escape, load, new_table, store_url
from agent.cli.history_cmd import _redactor, timeline
from agent.core.values import format_duration
from botwarden.errors import BotwardenError, ExitCode

_KIND_STYLE = {"observed": "cyan", "decided": "yellow", "done": "magenta", "told": "green"}


class UnknownIncident(BotwardenError):
    exit_code = ExitCode.FAILED


def explain(
    incident: options.IncidentId,
    inventory: options.Inventory = options.DEFAULT_INVENTORY,
    store: options.Store = None,
) -> None:
    """Print what the agent observed, decided and did about one incident, and who was told when."""
    from agent.store import Store

    config = load(inventory, None, for_reading=True)
    redact = _redactor(config)
    st = Store(store_url(config, store), create=False)
    try:
        st.migrate()
        inc = st.get_incident(incident)
        if inc is None:
            raise UnknownIncident(f"no incident #{incident}")
        rows = timeline(st, incident, redact)
    finally:
        st.close()
    status = "open" if inc.resolved_at is None else \
        f"resolved after {format_duration((inc.resolved_at - inc.opened_at).total_seconds())}"
    console.print(f"incident #{inc.id}: {escape(inc.check)} on {escape(inc.host)} (playbook {escape(inc.play)}), "
                  f"{inc.state.name}, {inc.severity}, {status}")
    if inc.acknowledged_at:
        console.print(f"acknowledged by {escape(inc.acknowledged_by or '?')} at {inc.acknowledged_at:%Y-%m-%d %H:%M:%S}"
                      + (f": {escape(inc.ack_comment)}" if inc.ack_comment else ""))
    if inc.suppressed:
        console.print(f"held back now: {escape(redact(inc.suppressed))}")
    table = new_table()
    for col in ("when (UTC)", "", "what"):
        table.add_column(col)
    for at, kind, text in rows:
        table.add_row(f"{at:%Y-%m-%d %H:%M:%S}", f"[{_KIND_STYLE.get(kind, 'white')}]{kind}[/]", escape(text))
    console.print(table)
