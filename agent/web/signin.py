"""Sign-in and sign-out.

The sign-in form carries its own CSRF token (a random value in a short-lived HttpOnly cookie,
repeated in the form), so a third-party page cannot sign a browser into an account of its
choosing. A successful sign-in starts a new session (a fresh id: no fixation) and sends the
browser back to the page it asked for (only a local path is followed).
"""
from __future__ import annotations

import logging
import secrets

from aiohttp import web

from agent.web.auth import tokens_match
from agent.web.context import COOKIE, LOGIN_COOKIE, ctx_of, session_of

log = logging.getLogger("agent.web")


def local_path(value: str | None) -> str:
    """``value`` when it is a path on this site, else ``/``: it must start with one ``/`` (not
    ``//`` or ``/\\``) and hold only printable ASCII without spaces or backslashes. Nothing is
    stripped first: browsers drop tab, CR and LF from a URL, so ``/<TAB>/evil.example`` would
    become ``//evil.example``, another site. The pages' own links are percent-encoded, so a
    legitimate path passes as it is."""
    if not value or not value.startswith("/") or value[1:2] in ("/", "\\"):
        return "/"
    if any(not 0x20 < ord(c) < 0x7F or c == "\\" for c in value):
        return "/"
    return value


def _client(request: web.Request) -> str:
    return request.remote or "?"


async def login_page(request: web.Request, *, error: str | None = None, status: int = 200) -> web.Response:
    ctx = ctx_of(request)
    # One token per browser while it signs in: a second GET (another tab, a redirected favicon
    # request) must not invalidate the form already shown.
    existing = request.cookies.get(LOGIN_COOKIE, "")
    token = existing if len(existing) >= 32 else secrets.token_urlsafe(24)
    html = ctx.render("login.html.j2", csrf=token, error=error, next=local_path(request.query.get("next")),
                      title="Sign in")
    response = web.Response(text=html, content_type="text/html", status=status)
    response.set_cookie(LOGIN_COOKIE, token, max_age=600, httponly=True, samesite="Strict",
                        secure=ctx.secure_cookie, path="/login")
    return response


async def login(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    form = await request.post()
    if not tokens_match(request.cookies.get(LOGIN_COOKIE), str(form.get("csrf") or "")):
        raise web.HTTPForbidden(text="the sign-in form expired or came from elsewhere: reload it and retry\n")
    name = str(form.get("username") or "").strip()
    password = str(form.get("password") or "")
    # Per (name, address), as django-axes' ["username", "ip_address"] lockout: behind one proxy
    # every client has one address, so counting per address would let anyone lock the operator
    # out by guessing other names; counting per name alone, from anywhere. Any name is counted
    # alike, so the answers say nothing about which names exist.
    keys = (f"user:{name.lower()}\naddr:{_client(request)}",)
    wait = ctx.throttle.retry_after(*keys)
    if wait > 0:
        log.warning("sign-in refused (too many failures) for %r from %s", name[:64], _client(request))
        response = await login_page(request, error=f"Too many failed sign-ins: try again in {int(wait) + 1} s.",
                                    status=429)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = ctx.users.authenticate(name, password)
    if user is None:
        ctx.throttle.failed(*keys)
        log.warning("failed sign-in for %r from %s", name[:64], _client(request))  # a name may be 64 KiB
        return await login_page(request, error="Wrong user name or password.", status=401)
    ctx.sessions.end(request.cookies.get(COOKIE))
    session = ctx.sessions.create(user)
    log.info("%s signed in (%s) from %s", user.name, user.role, _client(request))
    response = web.HTTPSeeOther(local_path(str(form.get("next") or "/")))
    response.set_cookie(COOKIE, session.id, httponly=True, samesite="Strict", secure=ctx.secure_cookie, path="/",
                        max_age=int(ctx.sessions.lifetime))
    response.del_cookie(LOGIN_COOKIE, path="/login")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    session = session_of(request)
    ctx.sessions.end(session.id)
    log.info("%s signed out", session.user.name)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    raise response
