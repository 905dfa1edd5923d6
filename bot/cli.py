"""The ``bot`` command: ``bot run`` (the trading bot) and ``bot paper-exchange``."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from bot.settings import load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

SettingsOpt = Annotated[
    Optional[str], typer.Option("--settings", help="stack settings YAML (default: embedded defaults)")
]


@app.command("run")
def run(settings: SettingsOpt = None) -> None:
    """Run the MACD trading bot with its /health, /metrics and /control endpoints."""
    from bot.trading.app import main as run_bot

    raise typer.Exit(run_bot(load_settings(settings)))


@app.command("paper-exchange")
def paper_exchange(
    settings: SettingsOpt = None,
    host: Annotated[Optional[str], typer.Option(help="bind address (loopback only)")] = None,
    port: Annotated[Optional[int], typer.Option(help="HTTP port")] = None,
    seed: Annotated[Optional[int], typer.Option(help="market seed: same seed, same market")] = None,
    state: Annotated[Optional[str], typer.Option(help="SQLite state file")] = None,
) -> None:
    """Serve a local exchange speaking Hyperliquid's /info and /exchange API."""
    from bot.exchange.server import main as serve

    s = load_settings(settings)
    raise typer.Exit(
        serve(
            s,
            host=host or s.exchange.host,
            port=port or s.exchange.port,
            seed=seed if seed is not None else s.exchange.seed,
            state=state or str(s.path(s.exchange.state)),
        )
    )


def main() -> None:
    app()
