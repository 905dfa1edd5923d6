"""The paper exchange's websocket, ``/ws``, as Hyperliquid serves it and as the unmodified SDK's
``WebsocketManager`` uses it.

Protocol (Hyperliquid's websocket docs):

* on connect the server says ``Websocket connection established.``;
* ``{"method": "subscribe" | "unsubscribe", "subscription": {...}}`` -> ``subscriptionResponse``
  echoing the request, then the channel's messages (see :mod:`bot.exchange.ws_channels`);
* ``{"method": "ping"}`` -> ``{"channel": "pong"}``;
* ``{"method": "post", "id": n, "request": {"type": "info" | "action", "payload": {...}}}`` ->
  ``{"channel": "post", "data": {"id": n, "response": {"type": "info" | "action" | "error",
  "payload": ...}}}``, answered exactly as ``/info`` and ``/exchange`` answer; posts are in flight
  side by side (answered as each completes, matched by id), never holding up pings or each other;
* anything else -> ``{"channel": "error", "data": "..."}``;
* a connection the server has sent nothing to for 60 s is closed (send a ping to keep it).

Each connection has one sender task and an ordered queue. A ``post`` meets the faults HTTP
meets (``latency_ms``, ``error_rate``, ``rate_limit_rate``, ``drop_responses``: the action is
applied and the connection cut before its answer). Faults (:mod:`bot.exchange.faults`) also
act here: ``ws_stall`` drops a channel's messages at the queue, ``ws_delay_ms`` holds each
message back, ``ws_outage`` and :meth:`WsHub.drop_all` cut connections as a network failure
would (no close frame). A client too slow to take its messages (queue full) is disconnected.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import WSMsgType, web

from bot.exchange.faults import Faults
from bot.exchange.ledger import LedgerEvent
from bot.exchange.ws_channels import MARKET, ChannelFeed, Subscription, parse_subscription

log = logging.getLogger("bot.exchange.ws")
GREETING = "Websocket connection established."
IDLE_TIMEOUT_S = 60.0
QUEUE_LIMIT = 2000
PostHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]


def dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"))


class Connection:
    """One client: its subscriptions, its outgoing queue and its sender."""

    def __init__(self, hub: WsHub, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.hub = hub
        self.ws = ws
        self.request = request
        self.subs: dict[Subscription, dict[str, Any]] = {}  # -> the subscription object as sent
        self.last_push: dict[Subscription, str] = {}
        self.queue: asyncio.Queue[tuple[float, str]] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self.last_sent = time.monotonic()
        self.sender: asyncio.Task[None] | None = None
        self.posts: set[asyncio.Task[None]] = set()  # posts in flight (answered in any order, by id)

    def send(self, channel: str, data: Any = None, *, text: str | None = None) -> None:
        """Queue one message unless its channel is stalled; a full queue drops the client."""
        faults = self.hub.faults()
        if channel in faults.ws_stall:
            return
        due = time.monotonic() + faults.ws_delay_ms / 1000.0
        body = text if text is not None else dumps({"channel": channel, "data": data} if data is not None
                                                  else {"channel": channel})
        try:
            self.queue.put_nowait((due, body))
        except asyncio.QueueFull:
            log.warning("websocket client too slow; disconnecting %s", self.request.remote)
            self.abort()

    def abort(self) -> None:
        """Cut the connection without a close frame (what a network failure looks like)."""
        if self.request.transport is not None:
            self.request.transport.abort()

    async def run_sender(self) -> None:
        while not self.ws.closed:
            idle_left = IDLE_TIMEOUT_S - (time.monotonic() - self.last_sent)
            try:
                due, body = await asyncio.wait_for(self.queue.get(), timeout=max(0.0, idle_left))
            except TimeoutError:
                await self.ws.close(code=1000, message=b"idle")  # nothing sent for 60 s
                return
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                await self.ws.send_str(body)
            except (ConnectionError, RuntimeError):
                return
            self.last_sent = time.monotonic()


class WsHub:
    def __init__(self, feed: ChannelFeed, faults: Callable[[], Faults], post: PostHandler, *,
                 clock: Callable[[], int], interval_s: float = 0.5) -> None:
        self.feed = feed
        self.faults = faults
        self.post = post
        self.clock = clock
        self.interval_s = interval_s
        self.connections: set[Connection] = set()
        self.coins = set(feed.ledger.coins)

    # ----- connections ----------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.faults().ws_outage:  # (an ``outage`` is answered by the fault middleware before this)
            return web.Response(status=503, text="Service Unavailable")
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        conn = Connection(self, ws, request)
        self.connections.add(conn)
        conn.sender = asyncio.create_task(conn.run_sender())
        conn.send("", text=GREETING)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        await self._on_message(conn, msg.data)
                    except Exception:  # one message's failure is its own: said to the client, never the connection's end
                        log.exception("websocket message failed: %.200s", msg.data)
                        conn.send("error", f"Error handling websocket request: {msg.data[:500]}")  # paper
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.connections.discard(conn)
            for task in [conn.sender, *conn.posts]:
                task.cancel()
            for task in [conn.sender, *conn.posts]:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return ws

    async def _on_message(self, conn: Connection, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            msg = None
        method = msg.get("method") if isinstance(msg, dict) else None
        if method == "ping":
            conn.send("pong")
        elif method == "subscribe":
            self._subscribe(conn, msg.get("subscription"))  # type: ignore[union-attr]
        elif method == "unsubscribe":
            self._unsubscribe(conn, msg.get("subscription"))  # type: ignore[union-attr]
        elif method == "post" and isinstance(msg, dict) and _request_id(msg.get("id")) \
                and isinstance(msg.get("request"), dict):
            # in flight beside the connection's other posts and its pings, as over HTTP: a slow
            # answer (latency_ms) holds up nothing else read from this connection
            task = asyncio.create_task(self._answer_post(conn, msg["id"], msg["request"]))
            conn.posts.add(task)
            task.add_done_callback(conn.posts.discard)
        else:
            conn.send("error", f"Error parsing JSON into valid websocket request: {text[:500]}")  # paper

    async def _answer_post(self, conn: Connection, ident: int, request: dict[str, Any]) -> None:
        try:
            response = await self.post(request)
        except Exception:  # one post's failure is its own, never the connection's
            log.exception("websocket post failed")
            response = {"type": "error", "payload": "500 Internal Server Error"}
        if response is None:  # the answer is lost with the connection (drop_responses)
            conn.abort()
            return
        conn.send("post", {"id": ident, "response": response})

    def _subscribe(self, conn: Connection, raw: Any) -> None:
        sub = parse_subscription(raw, self.coins)
        if isinstance(sub, str):
            conn.send("error", sub)
            return
        if sub in conn.subs:
            conn.send("error", f"Already subscribed: {dumps(raw)}")  # paper
            return
        conn.subs[sub] = raw
        conn.send("subscriptionResponse", {"method": "subscribe", "subscription": raw})
        data = self.feed.snapshot(sub, self.clock())
        if data is not None:
            conn.send(sub.channel, data)
            if sub.type in MARKET:
                conn.last_push[sub] = self.feed.fingerprint(sub, data)

    def _unsubscribe(self, conn: Connection, raw: Any) -> None:
        sub = parse_subscription(raw, self.coins)
        if isinstance(sub, str) or sub not in conn.subs:
            conn.send("error", f"Already unsubscribed: {dumps(raw)}")  # paper
            return
        del conn.subs[sub]
        conn.last_push.pop(sub, None)
        conn.send("subscriptionResponse", {"method": "unsubscribe", "subscription": raw})

    async def drop_all(self) -> int:
        """Cut every connection (a network failure); returns how many there were."""
        conns = list(self.connections)
        for c in conns:
            c.abort()
        return len(conns)

    async def close_all(self) -> None:
        for c in list(self.connections):
            with contextlib.suppress(Exception):
                await c.ws.close(code=1001, message=b"server shutdown")

    # ----- publishing -----------------------------------------------------------------------
    def publish(self, events: Sequence[LedgerEvent]) -> None:
        """Send what committed ``events`` produce to every subscriber."""
        if not events or not self.connections:
            return
        messages = self.feed.event_messages(events)
        for conn in list(self.connections):
            for sub in conn.subs:
                for data in messages.get(sub, ()):
                    conn.send(sub.channel, data)

    def push_market(self) -> None:
        """One round of market pushes: each market subscription gets its data if it changed."""
        if not self.connections:
            return
        now = self.clock()
        cache: dict[Subscription, tuple[Any, str]] = {}
        for conn in list(self.connections):
            for sub in conn.subs:
                if sub.type not in MARKET:
                    continue
                if sub not in cache:
                    data = self.feed.market_data(sub, now)
                    cache[sub] = (data, self.feed.fingerprint(sub, data))
                data, fp = cache[sub]
                if data is not None and conn.last_push.get(sub) != fp:
                    conn.last_push[sub] = fp
                    conn.send(sub.channel, data)

    async def run_publisher(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.push_market()
            except Exception:  # one bad round must not stop the feed
                log.exception("websocket market push failed")

    def stats(self) -> dict[str, Any]:
        return {"connections": len(self.connections),
                "subscriptions": sorted({s.channel for c in self.connections for s in c.subs})}


def _request_id(value: object) -> bool:
    """A post's ``id``: an unsigned 64-bit integer (a boolean is not one, though Python says so)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64
