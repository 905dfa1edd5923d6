"""The operator's web page: status at a glance and safe control, from a phone.

Its own supervised program (``agent web``, supervisord program ``web``), bound to 127.0.0.1 by
default. It reads the agent's store read-only (:class:`agent.store.read_only.ReadOnlyStore`)
and the bot's, the exchange's and the agent's endpoints, never slows the resident agent, and
the agent does not need it. Control actions call the CLI's own functions, audited as
``web:<user>``. Server-rendered (aiohttp + Jinja2), live through server-sent events.

Public API::

    ctx = make_context(config, store_url=..., env=os.environ)
    web.run_app(build_app(ctx), host=..., port=...)      # or: serve(config, ...)
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from agent.web.app import build_app
from agent.web.auth import Sessions, SignInThrottle, users_from_env
from agent.web.context import WebContext
from agent.web.gather import EXCHANGE_EVERY_S, Gatherer
from agent.web.live import Live
from agent.web.runs import PlayRuns

__all__ = ["WebContext", "build_app", "make_context", "serve"]
log = logging.getLogger("agent.web")
STATE_ORDER = {"CRITICAL": 0, "UNKNOWN": 1, "WARNING": 2, "OK": 3, "PENDING": 4}


def account_address(settings: Any, env: Mapping[str, str]) -> str | None:
    """The account the bot trades and the agent's exchange checks read
    (:meth:`botwarden.settings.StackSettings.account_address`): ``bot.account_address`` when set
    (off paper the bot signs with an API wallet for it, and the account's own key is not here),
    else the address of the account's own key. None when neither is available (the page says so).
    Only the address is kept."""
    try:
        return str(settings.account_address(env))
    except (RuntimeError, ValueError):
        return None


def template_env(templates_dir: Path, config: Any, redact: Any) -> jinja2.Environment:
    """The pages' Jinja2 environment. Every ``{{ expression }}`` of every page and live update
    goes through ``redact`` before it is escaped (``finalize``): a secret that reaches any text
    shown (a halt reason, an exchange's or a store's error, a check's value, a comment) is
    masked wherever it is printed, not only where a template remembered the ``redact`` filter."""
    from markupsafe import Markup

    from agent.web import views
    from agent.web.sparkline import sparkline

    def finalize(value: Any) -> Any:
        if isinstance(value, Markup):  # markup built here (a sparkline): its text is masked, its tags kept
            return Markup(redact(str(value)))
        return redact(value) if isinstance(value, str) else value

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir)),
                             autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                             undefined=jinja2.StrictUndefined if os.environ.get("BOTWARDEN_WEB_STRICT") else
                             jinja2.Undefined, trim_blocks=False, finalize=finalize)
    env.filters["ago"] = views.ago_markup
    env.filters["lasted"] = views.lasted_markup
    env.filters["read_at"] = views.read_at_markup
    env.filters["iso"] = _iso
    env.filters["ms"] = lambda v: "?" if v is None else ("∞" if v == float("inf") else f"{v:g} ms")
    env.filters["redact"] = lambda text: redact(str(text)) if text is not None else ""
    env.filters["sparkline"] = lambda c: sparkline(c.values, c.warning, c.critical,
                                                   title=f"{c.check}: last {len(c.values)} values")
    env.filters["worst_first"] = lambda rows: sorted(rows, key=lambda c: (STATE_ORDER.get(c.state, 5), c.key))
    s = config.settings
    env.globals["names"] = {"bot": s.bot.program, "agent": s.agent.program, "exchange": s.exchange.program}
    env.globals["exchange_every_s"] = EXCHANGE_EVERY_S
    return env


def _iso(text: Any) -> datetime | None:
    """The ``iso`` template filter: an ISO 8601 time with its zone (the bot's ``last_loop_at``)
    as a datetime; None for anything else, a time at the calendar's edges included (year 1 at
    +14:00 parses, but has no UTC time nor Unix time: the overview was a 500), and a time ahead of
    the page's clock by more than :data:`AHEAD_S` (another clock, a broken one): its age is
    counted from 0, "just now" for ever, and a bot whose loop stood still looked alive (the card
    then says the bot's own ``loop_age_s``)."""
    try:
        at = datetime.fromisoformat(str(text)) if text else None
        if at is None or at.tzinfo is None:
            return None
        if at.astimezone(UTC).timestamp() > time.time() + AHEAD_S:
            return None
    except (ValueError, OverflowError, OSError):
        return None
    return at


AHEAD_S = 5.0
"""How far ahead of the page's clock a shown time may be (clocks of one box, rounding)."""


def _reread_account(live: Live, run: Any) -> None:
    """A play run from the page changed the account (closed, cancelled, protected): the next
    snapshot reads it again instead of showing the cached positions for up to 30 s."""
    if not run.check_mode:
        live.gatherer.forget_account()
        live.changed()


def make_context(config: Any, *, store_url: str, env: Mapping[str, str], templates_dir: Path,
                 charts: bool = True, source: Any = None, chosen: Any = None) -> WebContext:
    """Everything the application needs, from the loaded configuration and the environment.

    With ``source`` (:class:`agent.engine.config_source.ConfigSource`) and ``chosen`` (what
    ``config`` is: :meth:`~agent.engine.config_source.ConfigSource.choose`), the page shows what
    is wrong with the files and loads them again when they change
    (:mod:`agent.web.config_watch`)."""
    from agent.web.day_chart import DayChart

    web = config.settings.web
    users = users_from_env(env, operator_env=web.operator_password_env, viewer_env=web.viewer_password_env)
    if not len(users):
        log.warning("no web users: set $%s (and $%s) or run `make run` to generate them",
                    web.operator_password_env, web.viewer_password_env)
    gatherer = Gatherer(config, store_url, account_address=account_address(config.settings, env))
    live = Live(gatherer, web.refresh_seconds)

    def redact(text: str) -> str:
        """With the redactor of the configuration the page runs on now (it loads the files again):
        ``ctx`` is read when a page renders, after it is made below."""
        return ctx.config.templating.redact(text)

    first_host = next(iter(config.hosts), "local")
    ctx = WebContext(
        config=config, store_url=store_url, users=users, live=live, runs=PlayRuns(store_url, on_finished=lambda run: _reread_account(live, run)),
        templates=template_env(templates_dir / "web", config, redact),
        sessions=Sessions(lifetime=web.session_hours * 3600), throttle=SignInThrottle(),
        secure_cookie=web.secure_cookie, static_dir=templates_dir / "web" / "static",
        charts=DayChart(first_host, on_ready=live.bump) if charts else None,
    )
    if source is not None and chosen is not None:
        from agent.web.config_watch import ConfigWatch, state_of

        ctx.config_watch = ConfigWatch(source, state_of(chosen), lambda new, _state: ctx.use_config(new))
    return ctx


def serve(ctx: WebContext, host: str, port: int) -> None:
    """Serve until interrupted (SIGTERM from supervisord ends it cleanly)."""
    from aiohttp import web

    app = build_app(ctx)
    log.info("web page on http://%s:%d/ (%d user(s))", host, port, len(ctx.users))
    web.run_app(app, host=host, port=port, print=None, access_log=None, handle_signals=True,
                shutdown_timeout=5.0)
