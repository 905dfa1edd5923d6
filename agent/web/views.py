"""The pages (GET) and their live updates.

Every page is rendered in full on the server (it works without JavaScript). Its changing part
is one template (``_<page>.html.j2``) that the page includes and that ``/events/<page>``
re-renders and sends as a server-sent event whenever the snapshot changes; a few lines of the
page's own script put it in place. Pages are rendered from the shared snapshot
(:class:`agent.web.live.Live`), so a page view never waits on the agent's store.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from aiohttp import web
from aiohttp_sse import sse_response
from markupsafe import Markup

from agent.web.auth import tokens_equal
from agent.web.context import ctx_of, row_id, session_of

T = TypeVar("T")
log = logging.getLogger("agent.web")
PAGES = ("overview", "incidents", "checks", "trading", "agent")


def _heartbeat_s(request: web.Request) -> float:
    """A stream sends an event (an ``update``, else a ``ping``) at least this often
    (``web.heartbeat_seconds``): the page's script counts on it to tell a live view from a
    dead one (a hung server, a connection that died silently on a phone's network handoff).
    aiohttp-sse's own heartbeats are comments, which EventSource never shows to a script."""
    return float(ctx_of(request).config.settings.web.heartbeat_seconds)


class _Beat:
    """When a stream last sent an event; sends a ``ping`` event when a heartbeat passed without one.

    A ping's data is JSON from ``data()``: ``at`` (now), and for the live pages ``view_at`` (when
    the snapshot shown was read) and ``old`` (no snapshot can be made now, ``why``): a stream that
    pings is alive, but the view it serves may be frozen, and the script must say so."""

    def __init__(self, stream: Any, every: float, data: Any = None) -> None:
        self.stream, self.every = stream, every
        self.data = data or (lambda: json.dumps({"at": datetime.now(UTC).strftime("%H:%M:%S"), "old": False}))
        self.loop = asyncio.get_running_loop()
        self.sent_at = self.loop.time()
        self.shown = ""
        """The digest of the live part the page shows once it has this stream's events ("": not told)."""

    def left(self) -> float:
        return max(0.0, self.sent_at + self.every - self.loop.time())

    async def send(self, data: str, event: str) -> None:
        # The event's id is the server's clock (ms): the script measures its offset from the
        # browser's clock with it, and counts ages (<time data-at>) on the server's time. After a
        # "-", the digest of what the page shows then: the browser says it back when it reconnects.
        ms = f"{time.time() * 1000:.0f}"
        await self.stream.send(data, event=event, id=f"{ms}-{self.shown}" if self.shown else ms)
        self.sent_at = self.loop.time()

    async def due(self) -> None:
        if self.left() <= 0:
            await self.send(self.data(), "ping")


async def healthz(request: web.Request) -> web.Response:
    """Liveness of the page itself (no sign-in): 200 ``{"status": "ok"}`` while it serves, and
    nothing else: the safety verdict, positions and halts are for signed-in users only."""
    return web.json_response({"status": "ok"})


async def favicon(request: web.Request) -> web.Response:
    return web.Response(status=204)


def _common(request: web.Request, page: str, **values: Any) -> dict[str, Any]:
    session = session_of(request)
    return {"user": session.user, "csrf": session.csrf, "flash": session.take_flash(), "page": page,
            "host_names": list(ctx_of(request).config.hosts), **values}


async def _page(request: web.Request, page: str, title: str, **extra: Any) -> web.Response:
    ctx = ctx_of(request)
    snap = await ctx.live.current()
    values = await _live_values(request, page, snap, **extra)
    # The live part's digest goes in the stream's address: a stream whose first view is the one
    # the page was rendered with sends nothing then (it replaced the part just loaded, and what
    # the operator had begun typing in it: an ack's comment).
    shown = _shown(_fragment(request, page, snap, values)).digest()
    html = ctx.render(f"{page}.html.j2", title=title, shown_q=f"?shown={shown}",
                      **_common(request, page, snap=snap, **values))
    return web.Response(text=html, content_type="text/html")


async def _live_values(request: web.Request, page: str, snap: Any, **extra: Any) -> dict[str, Any]:
    """What the live part of ``page`` needs besides the snapshot (read on demand)."""
    ctx = ctx_of(request)
    values: dict[str, Any] = dict(extra)
    if page == "incident":
        values.update(await asyncio.to_thread(_incident_view, ctx, int(extra["incident_id"])))
    if page == "trading" and ctx.charts is not None:
        values["chart_version"] = await ctx.charts.ensure(snap)
    return values


def _incident_view(ctx: Any, incident_id: int) -> dict[str, Any]:
    from agent.engine.operator_actions import redactor as _redactor
    from agent.engine.operator_actions import timeline

    try:
        st = ctx.live.gatherer.store()
        inc = st.get_incident(incident_id)
        if inc is None:
            return {"incident": None, "timeline": []}
        return {"incident": inc, "timeline": timeline(st, incident_id, _redactor(ctx.config))}
    except Exception as exc:  # an unreadable store is said on the page, never a 500
        log.warning("reading incident #%d from the agent's store failed", incident_id, exc_info=True)
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        return {"incident": None, "timeline": [], "incident_error": f"{type(exc).__name__}: {first}"}


async def overview(request: web.Request) -> web.Response:
    return await _page(request, "overview", "Overview")


async def incidents(request: web.Request) -> web.Response:
    return await _page(request, "incidents", "Incidents")


async def incident(request: web.Request) -> web.Response:
    incident_id = row_id(request)
    return await _page(request, "incident", f"Incident #{incident_id}", incident_id=incident_id)


async def checks(request: web.Request) -> web.Response:
    return await _page(request, "checks", "Checks")


async def trading_page(request: web.Request) -> web.Response:
    return await _page(request, "trading", "Trading")


async def agent_page(request: web.Request) -> web.Response:
    return await _page(request, "agent", "Agent")


async def plays(request: web.Request) -> web.Response:
    from agent.engine.operator_actions import needs_confirmation

    ctx = ctx_of(request)
    listed = [(p, needs_confirmation(p, ctx.config), [h.name for h in ctx.config.hosts_of(p)])
              for name, p in sorted(ctx.config.playbooks.items()) if p.tasks]
    snap = await ctx.live.current()
    html = ctx.render("plays.html.j2", title="Plays", plays=listed, **_common(request, "plays", snap=snap))
    return web.Response(text=html, content_type="text/html")


async def run_page(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    run = ctx.runs.get(row_id(request))
    if run is None:
        raise web.HTTPNotFound(text="no such run (runs are kept in memory, the last 20; see `agent history`)\n")
    snap = await ctx.live.current()
    html = ctx.render("run.html.j2", title=f"Run of {run.play}", run=run, **_common(request, "run", snap=snap))
    return web.Response(text=html, content_type="text/html")


def _fragment(request: web.Request, page: str, snap: Any, values: dict[str, Any]) -> str:
    ctx = ctx_of(request)
    session = session_of(request)
    return ctx.render(f"_{page}.html.j2", snap=snap, user=session.user, csrf=session.csrf,
                      host_names=list(ctx.config.hosts), **values)


async def events(request: web.Request) -> web.StreamResponse:
    """``/events/<page>``: the page's live part as an ``update`` event whenever it changes."""
    ctx = ctx_of(request)
    page = request.match_info["page"]
    extra: dict[str, Any] = {}
    numbered = re.fullmatch(r"(incident|run)-([0-9]+)", page)  # ASCII digits: "²".isdigit() is true too
    if numbered and numbered[1] == "incident":
        page, extra = "incident", {"incident_id": _stream_id(numbered[2])}
    elif numbered:
        return await _run_events(request, _stream_id(numbered[2]))
    elif page not in PAGES:
        raise web.HTTPNotFound(text=f"no live page {page!r}\n")
    ctx.live.streams += 1
    try:
        heartbeat = _heartbeat_s(request)
        async with sse_response(request, ping_interval=heartbeat) as stream:
            seen: tuple[int, int] = (-1, -1)
            last: _Shown | None = None
            # The digest of the part the page was loaded with: what the page shows only as long as
            # it was sent nothing. The browser reconnects a dropped stream by itself, to the same
            # address, saying the last event it had (Last-Event-ID): that page shows what it was
            # sent since, not what it was loaded with (a silence it was sent, since expired, and the
            # view back to the loaded one: nothing was sent, the expired silence stayed "active").
            # Each event's id says what the page shows after it (``<ms>-<digest>``): that is the
            # view the page has (none said: it is sent whole). Sending it whole at every reconnect
            # wiped an ack's comment being typed at every drop of a phone's connection.
            resumed = request.headers.get("Last-Event-ID")
            loaded = request.query.get("shown", "") if resumed is None else resumed.partition("-")[2]
            beat = _Beat(stream, heartbeat, lambda: ctx.config.templating.redact(ctx.live.ping()))
            while stream.is_connected() and _still_signed_in(request):
                newer = await _unless_signed_out(request, ctx.live.wait_newer(seen, beat.left()))
                if newer is None or not _still_signed_in(request):  # signed out (or expired) while it waited
                    break
                if newer != seen:  # a new read (or a new chart): render it; send only what changed
                    seen = newer
                    snap = ctx.live.snapshot or await ctx.live.current()
                    html = _fragment(request, page, snap, await _live_values(request, page, snap, **extra))
                    if last is None and loaded and tokens_equal(_shown(html).digest(), loaded):
                        last = _shown(html)  # the page shows this already
                        beat.shown = loaded
                    else:
                        last, _ = await _send_changes(beat, html, last)
                    await beat.send(beat.data(), "ping")  # the page learns it is as of this read
                await beat.due()
            return stream
    except ConnectionResetError:  # the browser went away (another page, a closed tab)
        return web.Response(status=204)
    finally:
        ctx.live.streams -= 1


ROW = re.compile(r"<!--row ([A-Za-z0-9_-]+)-->(.*?)<!--/row-->", re.S)
"""A part of a live fragment that is sent alone when only it changed (``<!--row ID-->`` before an
element with ``id="ID"``, ``<!--/row-->`` after it): a check's line, a card of the overview."""
_TICKING = re.compile(r"(<time\b[^>]*\bdata-(?:at|since|read)=[^>]*>)[^<]*(</time>)")
"""Times the page's script writes itself (ages counted on, the banner's time of the last read):
their text differs at every render and is never a reason to send anything."""


@dataclass(frozen=True)
class _Shown:
    """What a stream last sent, as compared: its skeleton (rows left out) and each row."""

    skeleton: str
    rows: tuple[tuple[str, str], ...]

    def digest(self) -> str:
        text = "\x00".join([self.skeleton, *(f"{i}\x01{h}" for i, h in self.rows)])
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _shown(html: str) -> _Shown:
    rows = tuple((m[1], _TICKING.sub(r"\1\2", m[2])) for m in ROW.finditer(html))
    return _Shown(_TICKING.sub(r"\1\2", ROW.sub(lambda m: f"<!--row {m[1]}-->", html)), rows)


async def _send_changes(beat: _Beat, html: str, last: _Shown | None) -> tuple[_Shown, bool]:
    """Send ``html`` as an ``update`` (the whole fragment) when its skeleton changed, else the rows
    that changed as one ``rows`` event (JSON ``[[id, html], ...]``), else nothing: a check whose
    value changed re-sent the whole checks list, and every read re-sent every page (the ages in
    it changed at every render), to every open browser. Returns what is shown now, and whether
    anything was sent."""
    shown = _shown(html)
    ids = [i for i, _ in shown.rows]
    if last is None or shown.skeleton != last.skeleton or ids != [i for i, _ in last.rows] \
            or len(set(ids)) != len(ids):
        beat.shown = shown.digest()
        await beat.send(html, "update")
        return shown, True
    changed = [i for (i, now), (_, before) in zip(shown.rows, last.rows, strict=True) if now != before]
    if not changed:
        return last, False
    whole = {m[1]: m[2] for m in ROW.finditer(html)}
    beat.shown = shown.digest()
    await beat.send(json.dumps([[i, whole[i]] for i in changed]), "rows")
    return shown, True


def _stream_id(digits: str) -> int:
    """The id of ``/events/incident-<id>`` (or ``run-<id>``): 404 past any row id, as the page's own
    route (:func:`agent.web.context.row_id`), not an overflow in the store's thread."""
    from agent.engine.operator_actions import MAX_ROW_ID

    value = int(digits)
    if value > MAX_ROW_ID:
        raise web.HTTPNotFound(text=f"no such id {digits[:30]}\n")
    return value


async def _unless_signed_out(request: web.Request, waiting: Coroutine[Any, Any, T]) -> T | None:
    """``await waiting``, unless the session ends first (sign-out, or its expiry): then None at
    once, so a stream stops sending to a signed-out browser then, not at its next heartbeat."""
    sessions, sid = ctx_of(request).sessions, session_of(request).id
    task = asyncio.ensure_future(waiting)
    ended = asyncio.ensure_future(sessions.ended(sid).wait())
    try:
        await asyncio.wait({task, ended}, timeout=sessions.left(sid), return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
        if not task.done():
            task.cancel()
    return task.result() if task.done() and not task.cancelled() else None


def _still_signed_in(request: web.Request) -> bool:
    """The stream's session has not ended (sign-out, expiry): a stream opened before sign-out
    kept sending positions and orders to the signed-out browser."""
    return ctx_of(request).sessions.get(session_of(request).id) is not None


async def _run_events(request: web.Request, run_id: int) -> web.StreamResponse:
    ctx = ctx_of(request)
    run = ctx.runs.get(run_id)
    if run is None:
        raise web.HTTPNotFound(text="no such run\n")
    try:
        heartbeat = _heartbeat_s(request)
        async with sse_response(request, ping_interval=heartbeat) as stream:
            last = None
            beat = _Beat(stream, heartbeat)
            while stream.is_connected() and _still_signed_in(request):
                html = ctx.render("_run.html.j2", run=run)
                if html != last:
                    await beat.send(html, "update")
                    last = html
                if run.done:
                    await stream.send("done", event="done")
                    break
                await beat.due()
                await _unless_signed_out(request, ctx.runs.wait_changed(beat.left()))
            return stream
    except ConnectionResetError:  # the browser went away
        return web.Response(status=204)


async def chart(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    if ctx.charts is None:
        raise web.HTTPNotFound(text="charts are off\n")
    svg = ctx.charts.svg(request.match_info["name"])
    if svg is None:
        raise web.HTTPNotFound(text="no such chart yet\n")
    return web.Response(body=svg, content_type="image/svg+xml")


def ago(at: datetime | None, now: datetime | None = None) -> str:
    """``3m20s ago`` (the template filter)."""
    from agent.core.values import format_duration

    if at is None:
        return ""
    seconds = ((now or datetime.now(UTC)) - at).total_seconds()
    return "just now" if seconds < 1 else f"{format_duration(max(seconds, 0.0))} ago"


def lasted(start: datetime, end: datetime | None) -> str:
    from agent.core.values import format_duration

    return format_duration(max(((end or datetime.now(UTC)) - start).total_seconds(), 0.0))


def ago_markup(at: datetime | None) -> Markup | str:
    """The ``ago`` template filter: ``<time data-at="1765000000.000">3m20s ago</time>``, the
    time as Unix seconds in ``data-at``; the page's script counts the age on (``live.js``), on the
    server's clock (each event carries it). A live page is sent again only when something shown
    changes, so a plain "3m20s ago" stayed on screen for as long as nothing changed (an agent dead
    for ten minutes: "last result 7s ago"); and an age in the markup (the age at render) changed
    at every render, so every read re-sent every page. Without JavaScript the text is right as
    loaded."""
    if at is None:
        return ""
    return Markup('<time datetime="{}" data-at="{:.3f}">{}</time>').format(
        at.astimezone(UTC).isoformat(), at.timestamp(), ago(at))


def lasted_markup(start: datetime, end: datetime | None) -> Markup | str:
    """The ``lasted`` template filter: a duration still running (``end`` None, "open for 5m") is
    counted on by the page's script (``data-since``) like :func:`ago_markup`; a finished one is
    plain text."""
    if end is not None:
        return lasted(start, end)
    return Markup('<time datetime="{}" data-since="{:.3f}">{}</time>').format(
        start.astimezone(UTC).isoformat(), start.timestamp(), lasted(start, None))


def read_at_markup(at: datetime) -> Markup:
    """The ``read_at`` template filter: ``<time data-read>05:13:12</time>``, when the view shown was
    read. A live page is sent again only when something shown changes, so this is set by the
    script from each read's ``ping`` (``view_at``): the banner said "as of" the last change, not
    the last read."""
    return Markup('<time data-read="">{}</time>').format(at.strftime("%H:%M:%S"))


__all__ = ["ago", "ago_markup", "lasted", "lasted_markup", "read_at_markup", "timedelta"]
