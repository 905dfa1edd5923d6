"""``agent silence``: record-but-do-not-send matching alerts for a while.

``agent silence host=local check="bot*" --for 2h --reason "deploy"`` adds one; ``--list``
shows the active ones; ``--expire ID`` ends one now. Matchers are ``field=glob`` with field one
of host, play, check, severity, tag; every matcher must hold. A silenced alert is recorded in
the store (``agent history``); if it is still failing when the silence ends, it is sent.
"""
from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Annotated

import typer

from agent.cli import options
from agent.cli.common import console, escape, load, new_table, store_url
from agent.core.values import format_duration
from agent.engine.operator_actions import (
    SilenceUsage,
    create_silence,
    end_silence,
    parse_for,
    parse_matchers,
)

__all__ = ["SilenceUsage", "create_silence", "end_silence", "parse_for", "parse_matchers", "silence"]


def silence(
    matchers: Annotated[list[str] | None, typer.Argument(help="FIELD=GLOB ... (host, play, check, severity, tag)")] = None,
    for_: Annotated[str, typer.Option("--for", help="how long (30m, 2h, 1d; at most 30d)")] = "1h",
    reason: Annotated[str, typer.Option("--reason", "-r", help="why (shown in history)")] = "",
    list_: Annotated[bool, typer.Option("--list", help="show active silences")] = False,
    expire: Annotated[int | None, typer.Option("--expire", help="end the silence with this id now", min=1,
                                               max=options.MAX_ID)] = None,
    inventory: options.Inventory = options.DEFAULT_INVENTORY,
    store: options.Store = None,
) -> None:
    """Silence matching alerts for a while, list silences, or end one."""
    from agent.store import Store

    config = load(inventory, None, for_reading=True)
    st = Store(store_url(config, store), create=False, redact=config.templating.redact)
    now = datetime.now(UTC)
    try:
        st.migrate()
        if expire is not None:
            end_silence(st, expire, by=getpass.getuser(), now=now)
            console.print(f"silence #{expire} expired; alerts it held that are still failing will be sent")
            return
        if list_ or not matchers:
            _print(st.silences(), now)
            return
        parsed = parse_matchers(matchers)
        seconds = parse_for(for_)
        sid = create_silence(st, parsed, seconds=seconds, reason=reason, by=getpass.getuser(), now=now)
    finally:
        st.close()
    console.print(f"silence #{sid} active for {format_duration(seconds)}", markup=False)


def _print(silences: list, now: datetime) -> None:
    if not silences:
        console.print("no active silences")
        return
    table = new_table()
    for col in ("id", "matchers", "ends in", "by", "reason"):
        table.add_column(col)
    for s in silences:
        table.add_row(str(s.id), escape(" ".join(f"{k}={v}" for k, v in s.matchers.items()) or "(everything)"),
                      ("when OK, at most " if s.ok_after is not None else "")
                      + format_duration(max(0.0, (s.ends_at - now).total_seconds())), escape(s.created_by),
                      escape(s.reason))
    console.print(table)
