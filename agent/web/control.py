"""Control actions, for the operator role only (the guard in :mod:`agent.web.app` enforces it).

Each one calls the function its CLI command calls (:mod:`agent.engine.operator_actions`:
``acknowledge`` for ``agent ack``, ``create_silence`` / ``end_silence`` for ``agent silence``,
``find_play`` and :func:`~agent.engine.operator_run.run_play_once` for ``agent run-playbook``),
with the actor ``web:<user>``, so it lands in the audit trail and in ``agent history`` like the
CLI's. The store is opened for the action and closed after it (one short write transaction).

A play that would change something and needs confirmation (a ``confirm:`` text or a destructive
module) runs only when the form repeats the host names the confirmation page showed and carries
that page's confirmation token, which the run uses up (:meth:`agent.web.auth.Session.consume`):
concurrent or replayed submissions of one confirmation run the play once, the others are
answered 409 with a fresh confirmation page. Check mode runs at once.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web

from agent.web.context import ctx_of, row_id, session_of
from botwarden.errors import BotwardenError

log = logging.getLogger("agent.web")
T = TypeVar("T")


def _back(request: web.Request, default: str = "/") -> str:
    """The page the form was sent from, when it is a path on this site (the same rule as sign-in's
    ``next=``: a Referer ``http://host//evil.example/x`` gave ``Location: //evil.example/x``)."""
    from agent.web.signin import local_path

    ref = request.headers.get("Referer", "")
    host = request.host
    for prefix in (f"http://{host}", f"https://{host}"):
        if ref.startswith(prefix + "/"):
            path = ref[len(prefix):]
            return path if local_path(path) == path else default
    return default


async def _with_store(request: web.Request, fn: Callable[[Any], T]) -> T:
    from agent.store import Store

    ctx = ctx_of(request)
    url, redact = ctx.store_url, ctx.config.templating.redact

    def run() -> T:
        st = Store(url, create=False, redact=redact)  # never a database the agent does not read; rows redacted
        try:
            st.migrate()
            return fn(st)
        finally:
            st.close()

    try:
        return await asyncio.to_thread(run)
    finally:  # the page the action redirects to shows what it did (or did not do): read again
        ctx.live.changed()


async def ack(request: web.Request) -> web.StreamResponse:
    from agent.engine.operator_actions import acknowledge

    session = session_of(request)
    incident = row_id(request)
    form = await request.post()
    comment = str(form.get("comment") or "").strip() or None
    try:
        inc = await _with_store(request, lambda st: acknowledge(st, incident, by=session.user.actor, comment=comment,
                                                                now=datetime.now(UTC)))
    except BotwardenError as exc:
        session.say("error", str(exc))
    else:
        session.say("ok", f"incident #{incident} ({inc.check} on {inc.host}) acknowledged: no reminders or "
                          "escalation until its state changes")
    raise web.HTTPSeeOther(_back(request, f"/incidents/{incident}"))


async def silence(request: web.Request) -> web.StreamResponse:
    from agent.engine.operator_actions import create_silence, parse_for, parse_matchers
    from agent.web.app import REPEAT_OF, already_done

    session = session_of(request)
    form = await request.post()
    try:
        matchers = parse_matchers(str(form.get("matchers") or "").split())
        if not matchers:
            raise web.HTTPBadRequest(text="give at least one matcher, e.g. host=local check=bot*\n")
        seconds = parse_for(str(form.get("duration") or "1h"), name="the duration")
        reason = str(form.get("reason") or "").strip()
        repeat_of = request.get(REPEAT_OF)

        def make(st: Any) -> int | None:
            # (the guard runs one silence at a time: a repeat is checked once the send before it is done)
            if repeat_of is not None and any(s.matchers == matchers for s in st.silences()):
                return None  # a repeat of a silence that still holds these alerts
            return create_silence(st, matchers, seconds=seconds, reason=reason, by=session.user.actor,
                                  now=datetime.now(UTC))

        sid = await _with_store(request, make)
        if sid is None:
            raise already_done(repeat_of)
    except BotwardenError as exc:
        session.say("error", str(exc))
    else:
        session.say("ok", f"silence #{sid} active: " + " ".join(f"{k}={v}" for k, v in matchers.items()))
    raise web.HTTPSeeOther("/incidents#silences")


async def expire(request: web.Request) -> web.StreamResponse:
    from agent.engine.operator_actions import end_silence

    session = session_of(request)
    sid = row_id(request)
    try:
        await _with_store(request, lambda st: end_silence(st, sid, by=session.user.actor, now=datetime.now(UTC)))
    except BotwardenError as exc:
        session.say("error", str(exc))
    else:
        session.say("ok", f"silence #{sid} expired; alerts it held that are still failing will be sent")
    raise web.HTTPSeeOther("/incidents#silences")


async def play(request: web.Request) -> web.StreamResponse:
    from agent.engine.operator_actions import confirmation_text, find_play, needs_confirmation

    ctx = ctx_of(request)
    session = session_of(request)
    form = await request.post()
    check_mode = str(form.get("mode") or "check") != "apply"
    try:
        found, hosts = find_play(ctx.config, request.match_info["name"], str(form.get("limit") or "") or None)
    except BotwardenError as exc:
        session.say("error", str(exc))
        raise web.HTTPSeeOther("/plays") from None
    host_names = [h.name for h in hosts]
    if not check_mode and needs_confirmation(found, ctx.config):
        typed = [h.strip() for h in str(form.get("confirm_hosts") or "").split(",") if h.strip()]
        # Used up here, before anything else is looked at: no await lies between this and the run.
        confirmed = session.consume(str(form.get("confirmation") or ""), found.name, host_names)
        if typed != host_names or not confirmed:
            used = bool(typed) and typed == host_names
            question = confirmation_text(found, ctx.config, host_names)
            html = ctx.render("confirm.html.j2", title=f"Confirm {found.name}", play=found, question=question,
                              hosts=", ".join(host_names), limit=str(form.get("limit") or ""),
                              wrong=bool(typed) and not used, used=used,
                              confirmation=session.confirmation(found.name, host_names),
                              session=session, user=session.user, csrf=session.csrf)
            if used:
                log.warning("%s: a confirmation of %s was already used or expired; nothing was run",
                            session.user.actor, found.name)
            return web.Response(text=html, content_type="text/html",
                                status=409 if used else (400 if typed else 200))
    run = ctx.runs.start(ctx.config, found, hosts, check_mode=check_mode, actor=session.user.actor)
    log.warning("%s runs playbook %s on %s%s", session.user.actor, found.name, ", ".join(host_names),
                " in check mode" if check_mode else "")
    raise web.HTTPSeeOther(f"/runs/{run.id}")
