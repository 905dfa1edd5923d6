"""The ``bot`` command: ``bot run`` (the trading bot) and ``bot paper-exchange``."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated

import typer

from botwarden.settings import StackSettings, load_settings, settings_named_by_inventory

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

SettingsOpt = Annotated[
    str | None, typer.Option("--settings", help="stack settings YAML (default: embedded defaults)")
]


def _settings(path: str | None, named_by: str | None = None) -> StackSettings:
    """The stack settings, or exit 3 (CONFIG) with what is wrong: a named file that is missing or
    unreadable, or a value that breaks a rule (never a traceback, never the defaults instead)."""
    from pydantic import ValidationError

    from botwarden.errors import ConfigError, ExitCode
    from botwarden.settings import settings_problems

    try:
        return load_settings(path, named_by=named_by)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
    except ValidationError as exc:
        # each field and what it needs, as `agent stack` says it (not pydantic's text with a URL per line)
        typer.echo(f"error: settings file {path or os.environ.get('BOTWARDEN_SETTINGS')}: {settings_problems(exc)}",
                   err=True)
    raise typer.Exit(ExitCode.CONFIG)


@app.command("run")
def run(settings: SettingsOpt = None) -> None:
    """Run the MACD trading bot with its /health, /metrics and /control endpoints."""
    from bot.trading.app import main as run_bot

    raise typer.Exit(run_bot(_settings(settings)))


@app.command("paper-exchange")
def paper_exchange(
    settings: SettingsOpt = None,
    host: Annotated[str | None, typer.Option(help="bind address (loopback only)")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port")] = None,
    seed: Annotated[int | None, typer.Option(help="market seed: same seed, same market")] = None,
    state: Annotated[str | None, typer.Option(help="SQLite state file")] = None,
) -> None:
    """Serve a local exchange speaking Hyperliquid's /info and /exchange API."""
    from bot.exchange.server import main as serve

    s = _settings(settings)
    raise typer.Exit(
        serve(
            s,
            host=host or s.exchange.host,
            port=port or s.exchange.port,
            seed=seed if seed is not None else s.exchange.seed,
            state=state or str(s.path(s.exchange.state)),
        )
    )


@app.command("approve-wallets")
def approve_wallets(settings: SettingsOpt = None) -> None:
    """On paper, approve the bot's and the agent's API wallets for the account (what an operator
    does once in Hyperliquid's app); nothing is sent on testnet or mainnet. Exit 4 when the
    exchange refuses or cannot be reached (``make run`` retries while the exchange starts)."""
    from bot.api_wallets import ApiWalletError, approve_stack_wallets

    try:
        for a in approve_stack_wallets(_settings(settings)):
            typer.echo(f"{a.who} API wallet {a.name!r} {a.address}: {'approved' if a.changed else 'already approved'}")
    except ApiWalletError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(4) from exc


drill = typer.Typer(no_args_is_help=True, help="Fault injection on the paper exchange (drills).")
app.add_typer(drill, name="drill")


def _operator_settings(settings: str | None) -> StackSettings:
    """An operator's command reads the stack it is typed beside, like ``agent``: ``--settings``,
    else the file the ``inventory.yaml`` of the current directory or the nearest folder above it
    names (typed in ``playbooks/`` it is still that stack's), else ``$BOTWARDEN_SETTINGS``, else
    the embedded defaults, said on stderr with the exchange they reach (on a machine with several
    stacks, the defaults are another stack's)."""
    from botwarden.errors import ConfigError, ExitCode

    if settings:
        return _settings(settings)
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "inventory.yaml").is_file():
            try:
                named = settings_named_by_inventory(folder)
            except ConfigError as exc:  # settings: '' is no file: not the built-in settings either
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(ExitCode.CONFIG) from None
            if named:
                return _settings(named, named_by=f"{folder / 'inventory.yaml'}'s settings:")
            break
    chosen = _settings(None)
    if not os.environ.get("BOTWARDEN_SETTINGS"):
        typer.echo(f"note: no settings named here ({Path.cwd()}: no inventory.yaml naming one, no --settings, no "
                   f"$BOTWARDEN_SETTINGS): the built-in settings, exchange {chosen.exchange.url}", err=True)
    return chosen


def _drill(method: str, path: str, body: object = None, settings: str | None = None) -> None:
    from bot.drill import DrillError, call, render

    try:
        typer.echo(render(call(_operator_settings(settings), method, path, body)))
    except DrillError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(4) from exc


@drill.command("faults")
def drill_faults(
    assignments: Annotated[list[str], typer.Argument(help="e.g. latency_ms=1500 error_rate=0.2 outage=503 "
                                                         "auth_failure=true drop_responses=1")],
    settings: SettingsOpt = None,
) -> None:
    """Add faults (merged into the current set)."""
    from bot.drill import DrillError, parse_assignments

    try:
        body = parse_assignments(assignments)
    except DrillError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    _drill("POST", "/admin/faults", body, settings)


@drill.command("clear")
def drill_clear(settings: SettingsOpt = None) -> None:
    """End every drill: remove every fault and undo the price shocks (marks return to the
    unshocked price from now on; a stop the move back crosses fires)."""
    _drill("DELETE", "/admin/faults", None, settings)
    _drill("DELETE", "/admin/shock", None, settings)


@drill.command("shock", context_settings={"ignore_unknown_options": True})  # `BTC -10`
def drill_shock(
    coin: Annotated[str, typer.Argument(help="e.g. BTC")],
    pct: Annotated[float, typer.Argument(help="move of the mark in percent, e.g. -10")],
    settings: SettingsOpt = None,
) -> None:
    """Move a coin's mark by PCT percent now (stops trigger at once). The mark stays within 0.1x
    and 10x of its unshocked price (one shock from -90 to +900, shocks in place included);
    `bot drill clear` undoes the shocks."""
    if not math.isfinite(pct):
        typer.echo(f"error: pct must be a finite number of percent, e.g. -10, not {pct}", err=True)
        raise typer.Exit(2)
    _drill("POST", "/admin/shock", {"coin": coin, "pct": pct}, settings)


@drill.command("ws-drop")
def drill_ws_drop(settings: SettingsOpt = None) -> None:
    """Cut every websocket connection once (clients reconnect). For a lasting outage:
    `bot drill faults ws_outage=true`; a silent channel: `ws_stall=[allMids]`; lag: `ws_delay_ms=500`."""
    _drill("POST", "/admin/ws/drop", None, settings)


@drill.command("revoke")
def drill_revoke(
    who: Annotated[str, typer.Argument(help="bot or agent: whose API wallet to revoke")],
    settings: SettingsOpt = None,
) -> None:
    """Revoke the bot's or the agent's API wallet (approve a fresh address under its name)."""
    _api_wallet(who, "revoke", settings)


@drill.command("approve")
def drill_approve(
    who: Annotated[str, typer.Argument(help="bot or agent: whose API wallet to approve again")],
    settings: SettingsOpt = None,
) -> None:
    """Approve the bot's or the agent's API wallet again (its key from the environment or var/secrets.env)."""
    _api_wallet(who, "approve", settings)


def _api_wallet(who: str, action: str, settings: str | None) -> None:
    from bot.drill import DrillError, api_wallet, render

    try:
        typer.echo(render(api_wallet(_operator_settings(settings), who, action)))
    except DrillError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(4) from exc


@drill.command("state")
def drill_state(settings: SettingsOpt = None) -> None:
    """Show faults, marks and every account."""
    _drill("GET", "/admin/state", None, settings)


def main() -> None:
    os.umask(0o077)  # what the bot and the exchange create (databases, logs, sockets) is private
    app()
