"""``agent ack INCIDENT [--comment]``: stop repeats and escalation of an open incident.

The acknowledgement holds until the incident's state changes (a new hard transition re-arms
repeats and escalation) or it resolves. It is written to the store the resident agent reads,
and to the audit trail with who acknowledged it.
"""
from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Annotated

import typer

from agent.cli import options
from agent.cli.common import console, load, store_url
from agent.engine.operator_actions import NotAcknowledged, acknowledge

__all__ = ["NotAcknowledged", "ack", "acknowledge"]


def ack(
    incident: options.IncidentId,
    comment: Annotated[str | None, typer.Option("--comment", "-m", help="why; shown in agent explain")] = None,
    inventory: options.Inventory = options.DEFAULT_INVENTORY,
    store: options.Store = None,
) -> None:
    """Acknowledge an open incident: no more reminders or escalation until its state changes."""
    from agent.store import Store

    config = load(inventory, None, for_reading=True)
    st = Store(store_url(config, store), create=False, redact=config.templating.redact)
    try:
        st.migrate()
        inc = acknowledge(st, incident, by=getpass.getuser(), comment=comment, now=datetime.now(UTC))
    finally:
        st.close()
    console.print(f"incident #{incident} ({inc.check} on {inc.host}) acknowledged: no reminders or escalation "
                  "until its state changes", markup=False)
