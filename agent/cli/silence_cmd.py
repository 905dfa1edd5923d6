"""``agent silence``: record-but-do-not-send matching alerts for a while.

``agent silence host=local check="bot*" --for 2h --reason "deploy"`` adds one; ``--list``
shows the active ones; ``--expire ID`` ends one now. Matchers are ``field=glob`` with field one
of host, play, check, severity, tag; every matcher must hold. A silenced alert is recorded in
the store (``agent history``); if it is still failing when the silence ends, it is sent.
"""
from __future__ import annotations

import getpass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from agent.cli import options
from agent.cli.common import console, load, store_url
from agent.core.values import format_duration, parse_duration
from agent.notify.lifecycle import SILENCE_FIELDS
from botwarden.errors import BotwardenError, ExitCode


class SilenceUsage(BotwardenError):
    exit_code = ExitCode.USAGE


def parse_matchers(items: list[str]) -> dict[str, str]:
    """``["host=local", "check=bot*"]`` -> ``{"host": "local", "check": "bot*"}``."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        if name == "tags":
            name = "tag"
        if not sep or not value or name not in SILENCE_FIELDS:
            raise SilenceUsage(f"bad matcher {item!r}: write FIELD=GLOB with FIELD one of {', '.join(SILENCE_FIELDS)}")
        out[name] = value.strip().strip('"').strip("'")
    return out


def silence(
    matchers: Annotated[list[str] | None, typer.Argument(help="FIELD=GLOB ... (host, play, check, severity, tag)")] = None,
    for_: Annotated[str, typer.Option("--for", help="how long (30m, 2h, 1d)")] = "1h",
    reason: Annotated[str, typer.Option("--reason", "-r", help="why (shown in history)")] = "",
    list_: Annotated[bool, typer.Option("--list", help="show active silences")] = False,
    expire: Annotated[int | None, typer.Option("--expire", help="end the silence with this id now")] = None,
    inventory: options.Inventory = options.DEFAULT_INVENTORY,
    store: options.Store = None,
) -> None:
    """Silence matching alerts for a while, list silences, or end one."""
    from agent.store import Store

    config = load(inventory, None)
    st = Store(store_url(config, store), redact=config.templating.redact)
    now = datetime.now(UTC)
    try:
        st.migrate()
        if expire is not None:
            if not st.expire_silence(expire, now):
                raise SilenceUsage(f"no active silence #{expire}")
            st.add_event("silence-expired", None, None, f"silence #{expire} expired by {getpass.getuser()}",
                         {"silence": expire})
            console.print(f"silence #{expire} expired; alerts it held that are still failing will be sent")
            return
        if list_ or not matchers:
            _print(st.silences(), now)
            return
        parsed = parse_matchers(matchers)
        try:
            seconds = parse_duration(for_)
        except ValueError as exc:
            raise SilenceUsage(str(exc)) from None
        if seconds <= 0:
            raise SilenceUsage("--for must be longer than zero")
        who = getpass.getuser()
        sid = st.add_silence(matchers=parsed, starts_at=now, ends_at=now + timedelta(seconds=seconds),
                             reason=reason, created_by=who, created_at=now)
        st.add_event("silence", None, None, f"silence #{sid} by {who} for {format_duration(seconds)}: "
                     + " ".join(f"{k}={v}" for k, v in parsed.items()) + (f" ({reason})" if reason else ""),
                     {"silence": sid, "matchers": parsed, "reason": reason})
    finally:
        st.close()
    console.print(f"silence #{sid} active for {format_duration(seconds)}", markup=False)


def _print(silences: list, now: datetime) -> None:
    if not silences:
        console.print("no active silences")
        return
    table = Table()
    for col in ("id", "matchers", "ends in", "by", "reason"):
        table.add_column(col)
    for s in silences:
        table.add_row(str(s.id), escape(" ".join(f"{k}={v}" for k, v in s.matchers.items()) or "(everything)"),
                      format_duration(max(0.0, (s.ends_at - now).total_seconds())), escape(s.created_by),
                      escape(s.reason))
    console.print(table)
