"""Issue 14 item 3: the bot's HTTP server against hostile local clients.

Loopback only; a bounded number of connection threads (300 idle connections do not make 300
threads); every socket operation times out; a negative or huge ``Content-Length`` is refused at
once; ``/control`` served on a 0600 unix socket, and not over TCP, so whoever binds the TCP port
while the bot is down never receives the agent's bearer token.
"""
from __future__ import annotations

import socket
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.trading import http_api
from bot.trading.http_api import MAX_CONNECTIONS, BotHttpServer
from bot.trading.metrics import BotMetrics
from bot.trading.status import RuntimeStatus
from tests.support import loopback

TOKEN = "unix-socket-control-token"


def _server(controls: Callable[[], Any] = lambda: None, **kw: Any) -> BotHttpServer:
    return BotHttpServer("127.0.0.1", 0, status=RuntimeStatus(loop_seconds=1.0, candle_seconds=60),
                         metrics=BotMetrics(), token=TOKEN, token_env="BOTWARDEN_BOT_TOKEN", controls=controls, **kw)


@pytest.fixture
def served() -> Iterator[Callable[..., BotHttpServer]]:
    servers: list[BotHttpServer] = []

    def serve(**kw: Any) -> BotHttpServer:
        srv = _server(**kw)
        srv.start()
        servers.append(srv)
        return srv

    yield serve
    for srv in servers:
        srv.stop()


def _raw(port: int, request: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        return s.recv(65536)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.org"])
def test_anything_but_loopback_is_refused(host: str) -> None:
    with pytest.raises(ValueError, match="binds loopback only"):
        BotHttpServer(host, 0, status=RuntimeStatus(loop_seconds=1.0, candle_seconds=60), metrics=BotMetrics(),
                      token=TOKEN, token_env="X", controls=lambda: None)


@pytest.mark.parametrize(("length", "status"), [("-1", b"400"), ("abc", b"400"), ("10000000", b"413")])
def test_a_bad_content_length_is_refused_at_once(served: Callable[..., BotHttpServer], length: str,
                                                 status: bytes) -> None:
    srv = served()
    answer = _raw(srv.port, f"POST /control/halt HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode())
    assert answer.split(b"\r\n", 1)[0] == b"HTTP/1.1 " + status + (b" Bad Request" if status == b"400"
                                                                    else b" Request Entity Too Large")


def test_a_silent_client_is_dropped_after_the_io_timeout(served: Callable[..., BotHttpServer],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_api, "IO_TIMEOUT_S", 0.3)
    srv = served()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"GET /health HTTP/1.1\r\n")  # and never the rest
        assert s.recv(100) == b""  # the server closed it (a 10 s client timeout would raise)


def test_idle_connections_cannot_make_threads_without_bound(served: Callable[..., BotHttpServer],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_api, "IO_TIMEOUT_S", 60.0)  # the idle clients stay for the whole test
    srv = served()
    before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(300)]
    try:
        # The bound is reached: the next client is told so at once instead of waiting.
        answer = _raw(srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 503") and b"too many clients" in answer
        assert threading.active_count() - before <= MAX_CONNECTIONS
    finally:
        for s in idle:
            s.close()
    # Freed as the idle clients leave: the agent's next health check is served.
    for _ in range(50):
        try:
            if loopback.get(f"http://127.0.0.1:{srv.port}/health", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        threading.Event().wait(0.1)
    assert loopback.get(f"http://127.0.0.1:{srv.port}/health", timeout=5).status_code == 200


def test_control_is_served_on_a_0600_unix_socket_and_refused_over_tcp(
        served: Callable[..., BotHttpServer], make_engine: Callable[..., Any], tmp_path: Path) -> None:
    engine = make_engine()
    path = tmp_path / "bot-control.sock"
    srv = served(controls=lambda: engine, control_socket=path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    auth = {"Authorization": f"Bearer {TOKEN}"}
    tcp = loopback.post(f"http://127.0.0.1:{srv.port}/control/halt", headers=auth)
    assert tcp.status_code == 404 and str(path) in tcp.json()["error"]
    assert engine.status.halted_reason is None
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(path))) as unix:
        answer = unix.post("http://bot/control/halt", headers=auth).json()
        assert answer["ok"] is True and answer["halted"] is True
        assert unix.post("http://bot/control/halt", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert loopback.get(f"http://127.0.0.1:{srv.port}/health").status_code == 200
    srv.stop()
    assert not path.exists()
