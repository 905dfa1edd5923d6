"""The aiohttp application: sign-in, the security middleware, and the routes of every page.

Access rules, enforced in :func:`_guard` for every route but ``/healthz``, ``/login``,
``/favicon.ico`` and ``/static``: signed out, a page (GET) redirects to ``/login`` and anything else gets 401; a
POST without the session's CSRF token gets 403; a control action (``/act/...``) needs the
operator role (403 for a viewer). Responses carry a strict Content-Security-Policy (scripts
and styles from this origin only), ``X-Frame-Options: DENY`` and ``no-store`` caching.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from agent.web.auth import tokens_match
from agent.web.context import COOKIE, CTX, SESSION, WebContext, ctx_of
from botwarden.errors import BotwardenError

log = logging.getLogger("agent.web")
POLLER = web.AppKey("poller", asyncio.Task)
SILENCING = web.AppKey("silencing", asyncio.Lock)
"""Held while a silence is sent: a repeat (two taps) checks the active silences after the first made its."""
REPEAT_OF: Any = web.RequestKey("repeat_of", float) if hasattr(web, "RequestKey") else "repeat_of"
"""On a request: when the same action form was first sent with its one-time token (a silence
repeated: the handler runs it only if what the first asked no longer holds)."""
CONFIG_WATCH = web.AppKey("config_watch", asyncio.Task)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path in ("/healthz", "/login", "/favicon.ico") or path.startswith("/static/"):
        return await handler(request)
    ctx = ctx_of(request)
    session = ctx.sessions.get(request.cookies.get(COOKIE))
    if session is None:
        if request.method == "GET" and not path.startswith("/events/"):
            raise web.HTTPFound(f"/login?next={quote(request.path_qs, safe='/?=&')}")
        raise web.HTTPUnauthorized(text="sign in first\n")
    request[SESSION] = session
    if request.method == "POST":
        form = await request.post()
        if not tokens_match(session.csrf, str(form.get("csrf") or "")):
            raise web.HTTPForbidden(text="the form's CSRF token is missing or wrong: reload the page and retry\n")
    if path.startswith("/act/") and not session.user.can_act:
        raise web.HTTPForbidden(text=f"{session.user.name} may look but not act (read-only role)\n")
    if path.startswith("/act/") and request.method == "POST":
        # Every action form carries a one-time token, used up here before anything runs (no await
        # lies between this and the handler's start): a double submit, a resent form or two taps
        # run the action once; the others are told it was already done. The token is one per path
        # and session, so another tab's or an older page's form may carry a used one: what it sends
        # decides (the same fields: a repeat, refused; others: a different action, run).
        used, when = session.use_action_token(path, str(form.get("once") or ""), _asked(path, form))
        if used == "used" and path == "/act/silence":
            # A silence repeats the first send only while a silence of its matchers holds: the
            # handler decides, with the store (the first may have silenced nothing, a duration
            # mistyped, or have ended since: silencing those alerts again is then no repeat).
            request[REPEAT_OF] = when if when is not None else 0.0
            used = "ok"
        elif used == "used":
            raise already_done(when)
        if used != "ok":
            raise web.HTTPBadRequest(text="this form is old (its one-time token is unknown or missing): nothing was "
                                          "run; reload the page and retry\n")
        if path == "/act/silence":  # a repeat checks the store once the send before it is done
            async with request.app[SILENCING]:
                return await handler(request)
    return await handler(request)


def already_done(when: float | None) -> web.HTTPConflict:
    """The answer to a form sent again with a used one-time token (nothing is run again)."""
    at = time.strftime("%H:%M:%S UTC", time.gmtime(when)) if when is not None else "?"
    return web.HTTPConflict(text=f"already done: this same form was already sent at {at} (a double submit, "
                                 "a resent form, or the same form in another tab); nothing was run again. "
                                 "Reload the page to do it again.\n")


def _asked(path: str, form: Any) -> str:
    """What an action form asks for, as its one-time token compares two sends: its fields (not the
    tokens), and for a silence its matchers alone, parsed (``check=disk* host=local`` is
    ``host=local check=disk*``): a reason or a duration does not make another silence. Two tabs
    silencing ``check=disk*`` with two reasons made two silences of the same alerts, and the
    operator who expired "the" silence left the other holding them."""
    if path == "/act/silence":
        from agent.engine.operator_actions import parse_matchers

        try:
            matchers = parse_matchers(str(form.get("matchers") or "").split())
        except BotwardenError:
            matchers = {}
        if matchers:
            return "matchers=" + " ".join(f"{k}={v}" for k, v in sorted(matchers.items()))
    return "\n".join(f"{k}={v}" for k, v in sorted((k, str(v)) for k, v in form.items() if k not in ("csrf", "once")))


def build_app(ctx: WebContext) -> web.Application:
    app = web.Application(middlewares=[_headers, _guard], client_max_size=64 * 1024)
    app[CTX] = ctx
    app[SILENCING] = asyncio.Lock()
    from agent.web import control, signin, views

    app.router.add_get("/healthz", views.healthz)
    app.router.add_get("/favicon.ico", views.favicon)
    app.router.add_get("/login", signin.login_page)
    app.router.add_post("/login", signin.login)
    app.router.add_post("/logout", signin.logout)
    app.router.add_get("/", views.overview)
    app.router.add_get("/incidents", views.incidents)
    app.router.add_get("/incidents/{id:\\d+}", views.incident)
    app.router.add_get("/checks", views.checks)
    app.router.add_get("/trading", views.trading_page)
    app.router.add_get("/agent", views.agent_page)
    app.router.add_get("/plays", views.plays)
    app.router.add_get("/runs/{id:\\d+}", views.run_page)
    app.router.add_get("/events/{page}", views.events)
    app.router.add_get("/charts/{name}.svg", views.chart)
    app.router.add_post("/act/ack/{id:\\d+}", control.ack)
    app.router.add_post("/act/silence", control.silence)
    app.router.add_post("/act/silence/{id:\\d+}/expire", control.expire)
    app.router.add_post("/act/play/{name}", control.play)
    if ctx.static_dir is not None:
        app.router.add_static("/static/", ctx.static_dir, follow_symlinks=False)

    stop = asyncio.Event()

    async def on_startup(app: web.Application) -> None:
        await ctx.live.start()
        app[POLLER] = asyncio.get_running_loop().create_task(ctx.live.run(stop), name="web-live")
        if ctx.config_watch is not None:
            await ctx.config_watch.prime()
            app[CONFIG_WATCH] = asyncio.get_running_loop().create_task(
                ctx.config_watch.run(stop, ctx.live.bump), name="web-config-watch")

    async def on_cleanup(app: web.Application) -> None:
        stop.set()
        await app[POLLER]
        if CONFIG_WATCH in app:
            await app[CONFIG_WATCH]
        await ctx.runs.close()
        if ctx.charts is not None:
            await ctx.charts.close()
        from agent.http import close_shared_clients  # the modules' HTTP sessions of plays run here

        await close_shared_clients()
        await ctx.live.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
