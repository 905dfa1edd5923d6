"""A Hyperliquid websocket connection that stays up: subscribe, keep alive, notice silence,
reconnect with backoff, and say how it is doing.

Built on websocket-client (the SDK's own websocket library) rather than the SDK's
``WebsocketManager``, which neither reconnects nor reports its state. One background thread
runs the connection; a second keeps it honest:

* every ``stale_s / 3`` it sends Hyperliquid's ``{"method": "ping"}`` (the server answers
  ``pong``; it also closes a connection it has sent nothing to for 60 s);
* a connection that has received nothing at all for ``stale_s`` (no data, no pong) is closed
  and counts as down: a half-open TCP connection or a stalled server looks exactly like that;
* so is one that answers pings but has delivered no data for ``stale_s`` (since it opened or
  since its last data): a server that stopped feeding a live connection. The subscriptions must
  include a channel that always speaks (the bot's ``allMids`` and ``bbo``);
* after a failure it waits ``backoff`` (0.25 s, doubling to 30 s, with jitter) before trying
  again; a connection that stayed up for a minute resets the backoff.

Subscriptions are re-sent on every connect. ``on_message(channel, data)`` runs on the
connection's thread and must not block. Times are monotonic seconds.

``down_for_s`` measures the outage as data sees it: it runs from the moment the last connection
that delivered data (a message on a subscribed channel: not the greeting, a ``pong`` or a
``subscriptionResponse``) stopped, and only data stops it. A socket that flaps (connects, is
greeted, goes silent, reconnects) is still down. With ``outage_file`` the outage's start is kept
on disk while it lasts (rewritten every watchdog period, removed when data arrives), so a bot
restarted during an outage goes on counting from its start instead of from its own; a record not
rewritten for ``INHERIT_S`` (the bot was stopped that long) is not inherited.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import websocket

log = logging.getLogger("bot.trading.ws")
State = Literal["connecting", "connected", "down", "stopped"]
BACKOFF_MIN_S = 0.25
BACKOFF_MAX_S = 30.0
STABLE_S = 60.0
CONNECT_TIMEOUT_S = 5.0
INHERIT_S = 60.0  # an outage record older than this was left by a bot stopped long ago


@dataclass(frozen=True)
class WsStatus:
    state: State
    last_message_age_s: float | None
    down_for_s: float
    """How long no data has arrived (0 while a connection delivers data); from the start of the
    outage, an earlier bot's included (``outage_file``), when data never came."""
    reconnects: int
    lag_s: float = 0.0
    """How late data arrives (receipt minus the data's own time), as the feed measures it."""


class HyperliquidSocket:
    def __init__(self, base_url: str, subscriptions: list[dict[str, Any]],
                 on_message: Callable[[str, Any], None], *, stale_s: float = 10.0,
                 on_state: Callable[[State], None] | None = None, outage_file: Path | None = None) -> None:
        self.url = "ws" + base_url[len("http"):].rstrip("/") + "/ws"
        self.subscriptions = subscriptions
        self.on_message = on_message
        self.on_state = on_state
        self.stale_s = stale_s
        self._state: State = "connecting"
        self._lock = threading.Lock()
        self._app: websocket.WebSocketApp | None = None
        self._stop = threading.Event()
        self._created = time.monotonic()
        self._last_message: float | None = None
        self._up_since: float | None = None
        self._live = False  # the current connection has delivered data
        self._last_data: float | None = None  # when it last did (or when it opened, before its first)
        self._file_lock = threading.Lock()  # the outage record is never written once data came
        self.outage_file = outage_file
        self._down_since = self._inherited_outage(self._created)
        self._reconnects = 0
        self._threads: list[threading.Thread] = []

    # ----- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        # websocket-client applies its default timeout to every socket it opens: it bounds the
        # TCP connect and the handshake (reads go through select, so quiet periods are fine).
        websocket.setdefaulttimeout(CONNECT_TIMEOUT_S)
        self._record_outage()  # from now until data arrives (a restart right away keeps it)
        self._threads = [threading.Thread(target=self._run, name="ws-feed", daemon=True),
                         threading.Thread(target=self._watch, name="ws-watchdog", daemon=True)]
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        app = self._app
        if app is not None:
            self._hang_up(app)
        for t in self._threads:
            t.join(timeout)
        self._set_state("stopped")

    @staticmethod
    def _hang_up(app: websocket.WebSocketApp) -> None:
        """Close ``app`` now: websocket-client's close alone leaves its reader in select() for
        up to 10 s; shutting the TCP socket down wakes it at once."""
        app.keep_running = False
        sock = getattr(app.sock, "sock", None) if app.sock is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        app.close()

    def status(self) -> WsStatus:
        now = time.monotonic()
        with self._lock:
            age = None if self._last_message is None else now - self._last_message
            down = 0.0 if self._live else now - self._down_since
            return WsStatus(self._state, age, down, self._reconnects)

    def last_message_at(self) -> float | None:
        return self._last_message

    # ----- the connection thread ------------------------------------------------------------
    def _run(self) -> None:
        backoff = BACKOFF_MIN_S
        while not self._stop.is_set():
            self._set_state("connecting")
            app = websocket.WebSocketApp(self.url, on_open=self._on_open, on_message=self._on_raw,
                                         on_error=self._on_error)
            self._app = app
            started = time.monotonic()
            try:
                app.run_forever(ping_interval=0)
            except Exception:  # any failure of the library is a dropped connection
                log.warning("websocket loop failed", extra={"event": "ws_error"}, exc_info=True)
            self._app = None
            if self._stop.is_set():
                break
            self._set_state("down")
            if self._up_since is not None and time.monotonic() - started >= STABLE_S:
                backoff = BACKOFF_MIN_S
            wait = backoff * (0.5 + random.random() / 2)  # jitter: many bots must not reconnect in step
            log.warning("websocket down; reconnecting",
                        extra={"event": "ws_down", "retry_in_s": round(wait, 3)})
            self._stop.wait(wait)
            backoff = min(backoff * 2, BACKOFF_MAX_S)
            with self._lock:
                self._reconnects += 1

    def _on_open(self, app: websocket.WebSocketApp) -> None:
        with self._lock:
            self._last_message = self._last_data = time.monotonic()
        for sub in self.subscriptions:
            app.send(json.dumps({"method": "subscribe", "subscription": sub}))
        self._up_since = time.monotonic()
        self._set_state("connected")
        log.info("websocket connected", extra={"event": "ws_connected", "url": self.url})

    def _on_raw(self, app: websocket.WebSocketApp, text: str) -> None:
        with self._lock:
            self._last_message = time.monotonic()
        if not text.startswith("{"):
            return  # "Websocket connection established."
        try:
            msg = json.loads(text)
        except ValueError:
            return
        channel = msg.get("channel")
        if channel in ("pong", "subscriptionResponse"):
            return
        if channel != "error":
            with self._lock:
                self._last_data = self._last_message
        if not self._live and channel != "error":
            with self._file_lock:
                with self._lock:
                    self._live = True
                self._forget_outage()
        if channel == "error":
            log.warning("websocket error message",
                        extra={"event": "ws_error_message", "error": str(msg.get("data"))})
            return
        try:
            self.on_message(str(channel), msg.get("data"))
        except Exception:  # a bad message must not kill the connection
            log.exception("websocket message handler failed",
                          extra={"event": "ws_handler_bug", "channel": channel})

    def _on_error(self, app: websocket.WebSocketApp, error: Exception) -> None:
        log.info("websocket error", extra={"event": "ws_error", "error": type(error).__name__})

    # ----- the watchdog ---------------------------------------------------------------------
    def _watch(self) -> None:
        period = max(0.05, self.stale_s / 3)
        while not self._stop.wait(period):
            if not self._live:
                self._record_outage()
            app, state = self._app, self._state
            if app is None or state != "connected":
                continue
            now = time.monotonic()
            silent = now - (self._last_message or 0.0)
            no_data = now - (self._last_data or 0.0)
            if silent > self.stale_s or no_data > self.stale_s:
                # nothing at all (a half-open connection), or pongs but no data: a server that
                # stopped feeding this connection; either way the feed is down, and reopening it
                # is how it comes back
                log.warning("websocket silent; dropping it" if silent > self.stale_s else
                            "websocket delivers no data (pongs only); dropping it",
                            extra={"event": "ws_stale",
                                   "silent_s": round(silent if silent > self.stale_s else no_data, 3)})
                self._set_state("down")
                self._hang_up(app)
                continue
            try:
                app.send(json.dumps({"method": "ping"}))
            except (websocket.WebSocketException, OSError):
                pass  # the connection thread sees the failure

    def _set_state(self, state: State) -> None:
        with self._lock:
            if state == self._state:
                return
            if self._state == "connected" and self._live:
                # down from the moment data stopped: the drop itself, or the last data of a
                # connection that went on answering pings without it
                self._down_since = self._last_data if self._last_data is not None else time.monotonic()
                self._live = False
            self._state = state
        if self.on_state is not None:
            self.on_state(state)

    # ----- the outage record ------------------------------------------------------------------
    def _inherited_outage(self, now: float) -> float:
        """The monotonic start of an outage an earlier bot recorded (recently), else ``now``."""
        if self.outage_file is None:
            return now
        try:
            rec = json.loads(self.outage_file.read_text())
            since, seen = float(rec["down_since"]), float(rec["seen_at"])
        except (OSError, ValueError, KeyError, TypeError, RecursionError):  # a damaged record: no outage inherited
            return now
        wall = time.time()
        if wall - seen > INHERIT_S or since > wall:
            return now
        log.info("websocket outage goes on from before this start",
                 extra={"event": "ws_outage_inherited", "down_for_s": round(wall - since, 3)})
        return now - (wall - since)

    def _record_outage(self) -> None:
        if self.outage_file is None:
            return
        with self._file_lock:
            if self._live:
                return
            wall = time.time()
            with self._lock:
                since = wall - (time.monotonic() - self._down_since)
            tmp = self.outage_file.with_name(self.outage_file.name + ".tmp")
            try:
                self.outage_file.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_text(json.dumps({"down_since": since, "seen_at": wall}))
                os.replace(tmp, self.outage_file)
            except OSError as err:
                log.warning("websocket outage not recorded",
                            extra={"event": "ws_outage_file", "error": str(err)})

    def _forget_outage(self) -> None:
        if self.outage_file is not None:
            with contextlib.suppress(FileNotFoundError):
                self.outage_file.unlink()
