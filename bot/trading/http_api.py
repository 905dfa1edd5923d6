"""The bot's HTTP surface, served from its own threads so it answers while the loop is busy.

* ``GET /health``: JSON (see :meth:`RuntimeStatus.health`), always 200 while the process answers.
* ``GET /metrics``: Prometheus text from the bot's own registry.
* ``POST /control/{halt,resume,cancel-all,close-all}``: bearer token from the environment,
  compared with :func:`hmac.compare_digest`. No token configured: 503 and why. Wrong or
  missing token: 401.

Halt and resume act on the halt file (:mod:`botwarden.halts`), also while the trading loop
has not started (the exchange unreachable at start-up): the loop reads the file when it starts.

* ``POST /control/halt[?reason=TEXT&by=WHO]``: 200 ``{"ok": true, "halted": true, "durable":
  true, "halt": {...}, "halts": [...]}`` only once no entry order is being sent and none can be
  (see :meth:`TradingEngine.halt`); an operator halt already in force is kept, not doubled.
  500 with ``"durable": false`` when the halt file could not be written: the running bot is
  halted, but a restart would lose it.
* ``POST /control/resume[?id=ID&id=...]``: ends the given halts (default: every halt); 200
  ``{"ok": true, "cleared": n, "ended": [...], "halts": [...still in force]}``.

Who can reach it. The TCP listener binds loopback only (any other address is refused at start).
With ``control_socket`` set (the bot's default, ``bot.control_socket``), ``/control`` is served
only on that unix socket, created mode 0600 in the 0700 ``var/``: the agent sends its bearer
token there, so a local user who binds the TCP port while the bot is down receives nothing
(TCP ``/control`` then answers 404 saying where it is).

Nothing a client sends can exhaust it: at most :data:`MAX_CONNECTIONS` connections are served
at once (one thread each; more are answered 503 and closed without a thread), every socket
operation of a connection times out after :data:`IO_TIMEOUT_S`, and a request body is read
only when its ``Content-Length`` is a number from 0 to :data:`MAX_BODY_BYTES` (else 400/413).

Built on the standard library's :class:`ThreadingHTTPServer`, with Nagle disabled on the
listening socket and on every accepted connection.
"""
from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

from prometheus_client import CONTENT_TYPE_LATEST

from bot.trading.metrics import BotMetrics
from bot.trading.status import RuntimeStatus
from botwarden.errors import BotwardenError
from botwarden.halts import Halt, HaltFile, HaltFileError

log = logging.getLogger("bot.trading.http")

MAX_CONNECTIONS = 32
"""Connections served at once (the agent needs a handful); more are answered 503 and closed."""
IO_TIMEOUT_S = 5.0
"""Every read or write of a connection (request line, headers, body, idle keep-alive)."""
MAX_BODY_BYTES = 65_536
_BUSY_BODY = b'{"error": "too many clients"}'
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
         b"Content-Length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY)


class Controls(Protocol):
    """What the control endpoints drive (the :class:`TradingEngine`)."""

    def halt(self, kind: str, reason: str, *, by: str = ...) -> tuple[Halt, bool]: ...
    def resume(self, by: str, ids: list[str] | None = None) -> list[Halt]: ...
    def active_halts(self) -> list[Halt]: ...
    def cancel_all(self) -> dict[str, Any]: ...
    def close_all(self) -> dict[str, Any]: ...


class _Bounded(socketserver.ThreadingMixIn):
    """A thread per connection, at most :data:`MAX_CONNECTIONS` of them."""

    daemon_threads = True
    max_connections = MAX_CONNECTIONS

    def _init_slots(self) -> None:
        self._slots = threading.BoundedSemaphore(self.max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            try:
                request.sendall(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)  # type: ignore[attr-defined]
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _Server(_Bounded, ThreadingHTTPServer):
    allow_reuse_address = True
    request_queue_size = 128  # the listen backlog: the default 5 makes connects wait on SYN retries

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._init_slots()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr


class _UnixServer(_Bounded, socketserver.UnixStreamServer):
    """``/control`` on a unix socket that only this user can connect to (0600)."""

    def __init__(self, path: Path, handler: type[BaseHTTPRequestHandler]) -> None:
        self._init_slots()
        if path.is_socket():
            path.unlink()  # left by a bot that was killed; a file of another kind is not ours
        old = os.umask(0o177)  # created 0600: no window in which another user may connect
        try:
            super().__init__(str(path), handler)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)


def require_loopback(host: str) -> None:
    """Refuse any address but loopback: the bot's surface is for this machine's agent only."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(f"refusing to serve on {host!r}: the bot's HTTP surface binds loopback only "
                         "(127.0.0.1 or ::1); set bot.host accordingly")


class BotHttpServer:
    """Serve /health, /metrics and /control on ``host:port`` (port 0 = ephemeral).

    ``controls`` may be None until the engine exists; halt and resume then act on ``halts``
    (the halt file) directly, the other control requests get 503. ``token`` None disables the
    control endpoints (503 with the env var to set).
    ``control_socket``: serve ``/control`` on this unix socket (0600) and not over TCP.
    Raises ``ValueError`` for a ``host`` that is not loopback.
    """

    def __init__(self, host: str, port: int, *, status: RuntimeStatus, metrics: BotMetrics,
                 token: str | None, token_env: str, controls: Callable[[], Controls | None],
                 halts: HaltFile | None = None, control_socket: Path | None = None) -> None:
        require_loopback(host)
        self.halts = halts
        self.status = status
        self.metrics = metrics
        self._token = token.encode() if token else None
        self.token_env = token_env
        self.controls = controls
        self.control_socket = control_socket
        self.httpd = _Server((host, port), self._handler_class(control=control_socket is None))
        self.port: int = self.httpd.server_address[1]
        self.unixd = _UnixServer(control_socket, self._handler_class(control=True)) if control_socket else None
        self._threads: list[threading.Thread] = []

    def refresh_waiting_halts(self) -> None:
        """Before the engine exists (the bot waiting for its API wallet, the exchange...), /health
        reports the halt file's halts: a halt taken before a restart stands, and saying none
        would read as resolved. The engine keeps them current once it runs."""
        if self.halts is None or self.controls() is not None:
            return
        halts = self.halts.active()
        self.status.halts = [h.as_dict() for h in halts]
        self.status.halted_reason = "; ".join(h.describe() for h in halts) or None

    def start(self) -> None:
        for name, server in (("bot-http", self.httpd), ("bot-control", self.unixd)):
            if server is not None:
                thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        for server in (self.httpd, self.unixd):
            if server is not None:
                server.shutdown()
                server.server_close()
        if self.control_socket is not None:
            self.control_socket.unlink(missing_ok=True)

    def authorize(self, header: str | None) -> tuple[HTTPStatus, str | None]:
        """(200, None) when ``header`` carries the token, else the refusal."""
        if self._token is None:
            return (HTTPStatus.SERVICE_UNAVAILABLE,
                    f"control endpoints are disabled: ${self.token_env} is not set in the bot's environment")
        scheme, _, given = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self._token):
            return HTTPStatus.UNAUTHORIZED, "missing or wrong bearer token"
        return HTTPStatus.OK, None

    def _control(self, action: str, query: dict[str, list[str]] | None = None) -> tuple[HTTPStatus, dict[str, Any]]:
        query = query or {}
        controls = self.controls()
        if action in ("halt", "resume"):
            return self._halt_or_resume(action, controls, query)
        if controls is None:
            return HTTPStatus.SERVICE_UNAVAILABLE, {"error": "the bot is still starting (exchange not connected)"}
        try:
            if action == "cancel-all":
                return HTTPStatus.OK, {"ok": True, **controls.cancel_all()}
            if action == "close-all":
                return HTTPStatus.OK, {"ok": True, **controls.close_all()}
        except BotwardenError as err:
            log.error("control action failed", extra={"event": "control_failed", "action": action,
                                                      "error": err.message})
            return HTTPStatus.BAD_GATEWAY, {"ok": False, "error": err.message}
        return HTTPStatus.NOT_FOUND, {"error": f"unknown control action {action!r}"}

    def _halt_or_resume(self, action: str, controls: Controls | None,
                        query: dict[str, list[str]]) -> tuple[HTTPStatus, dict[str, Any]]:
        reason = (query.get("reason") or ["halted through the control endpoint"])[0][:500]
        by = (query.get("by") or ["control"])[0][:100]
        ids = query.get("id") or None
        try:
            if controls is not None:
                if action == "halt":
                    halt, durable = controls.halt("control", reason, by=by)
                    halts = controls.active_halts()
                else:
                    ended = controls.resume(by, ids)
                    halts = controls.active_halts()
            elif self.halts is None:
                return HTTPStatus.SERVICE_UNAVAILABLE, {"error": "the bot is still starting (exchange not connected)"}
            elif action == "halt":  # no trading loop yet: it reads the file when it starts
                halt, durable = self.halts.add("control", reason, by=by)[0], True
                halts = self.halts.active()
            else:
                ended = self.halts.clear(ids)
                halts = self.halts.active()
        except HaltFileError as err:
            log.error("control action failed", extra={"event": "control_failed", "action": action,
                                                      "error": str(err)})
            return HTTPStatus.INTERNAL_SERVER_ERROR, {"ok": False, "error": str(err)}
        listed = [h.as_dict() for h in halts]
        if action == "resume":
            return HTTPStatus.OK, {"ok": True, "cleared": len(ended), "ended": [h.as_dict() for h in ended],
                                   "halts": listed}
        if not durable:
            return HTTPStatus.INTERNAL_SERVER_ERROR, {
                "ok": False, "halted": True, "durable": False, "halt": halt.as_dict(), "halts": listed,
                "error": "halted in the running bot only: the halt file could not be written, a restart would "
                         "lose the halt (see the bot's log)"}
        return HTTPStatus.OK, {"ok": True, "halted": True, "durable": True, "halt": halt.as_dict(), "halts": listed}

    def _handler_class(self, *, control: bool) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "botwarden-bot"
            timeout = IO_TIMEOUT_S  # every socket operation: a stalled client frees its thread

            def address_string(self) -> str:
                return str(self.client_address[0]) if self.client_address else "unix"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # access logs would repeat every scrape; errors are logged as events

            def _send(self, code: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, code: int, doc: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                self._send(code, json.dumps(doc).encode(), "application/json", headers)

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/health":
                    server.refresh_waiting_halts()
                    self._json(200, server.status.health())
                elif path == "/metrics":
                    self._send(200, server.metrics.render(), CONTENT_TYPE_LATEST)
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self) -> None:
                raw = (self.headers.get("Content-Length") or "0").strip()
                if not raw.isdigit():  # "-1" would read until the client leaves
                    self.close_connection = True
                    self._json(400, {"error": "Content-Length must be a number of bytes"})
                    return
                if int(raw) > MAX_BODY_BYTES:
                    self.close_connection = True
                    self._json(413, {"error": f"request body larger than {MAX_BODY_BYTES} bytes"})
                    return
                if int(raw):
                    self.rfile.read(int(raw))  # bodies are ignored; the read is bounded by the timeout
                path = self.path.split("?", 1)[0]
                if not path.startswith("/control/"):
                    self._json(404, {"error": "not found"})
                    return
                if not control:
                    self._json(404, {"error": f"control is served on the unix socket {server.control_socket} only"})
                    return
                action = path[len("/control/"):]
                code, why = server.authorize(self.headers.get("Authorization"))
                if why is not None:
                    log.warning("control refused", extra={"event": "control_refused", "action": action,
                                                          "code": int(code), "peer": self.address_string()})
                    extra = {"WWW-Authenticate": "Bearer"} if code == HTTPStatus.UNAUTHORIZED else None
                    self._json(code, {"error": why}, extra)
                    return
                log.warning("control action", extra={"event": "control", "action": action})
                status, doc = server._control(action, parse_qs(self.path.partition("?")[2]))
                self._json(status, doc)

        return Handler
