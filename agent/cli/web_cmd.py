"""``agent web``: the operator's web page (supervisord runs it as program ``web``).

Binds ``web.host:web.port`` of the stack settings (127.0.0.1:8090 by default); ``--host`` and
``--port`` override them; like ``web.host``, ``--host`` must be a loopback address. Users come from the environment (see :mod:`agent.web.auth`); with
none, the page serves ``/healthz`` and the sign-in form, and nobody can sign in.
"""
from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

from agent.cli import options
from agent.cli.common import load_chosen, store_url, templates_dir
from botwarden.settings import loopback_host


def web(
    inventory: options.Inventory = options.DEFAULT_INVENTORY,
    host: Annotated[str | None, typer.Option("--host", help="bind address (default: web.host, 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option("--port", help="port (default: web.port)")] = None,
    store: options.Store = None,
) -> None:
    """Serve the status page and the operator's controls."""
    from agent.core.redaction import Redactor
    from agent.engine.config_source import START_ORDER
    from agent.notify import install as install_redaction
    from agent.web import make_context, serve

    if host is not None:
        try:
            loopback_host(host)  # as web.host: nothing leaves this machine, whatever the flag
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--host") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # What the agent would run on, never an exit for a broken file (the page shows it).
    chosen, source = load_chosen(inventory, None, START_ORDER)
    config = chosen.config
    ctx = make_context(config, store_url=store_url(config, store), env=os.environ,
                       templates_dir=templates_dir(inventory), source=source, chosen=chosen)
    from agent.engine.operator_actions import redactor as _redactor

    redactor: Redactor = _redactor(config)
    install_redaction(logging.getLogger(), redactor)
    settings = config.settings.web
    serve(ctx, host or settings.host, port if port is not None else settings.port)
