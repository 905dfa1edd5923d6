"""The bot action sends its bearer token over the bot's 0600 unix socket, never over TCP.

The threat: while the bot is down, any local user can bind its TCP port, answer ``/health``
like a bot and wait for the agent's ``halt``. With the stack's control socket the token goes
to ``var/bot-control.sock`` only (a file in a 0700 directory), so the impostor sees no token.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agent.http import close_shared_clients
from agent.modules.actions.bot import BotAction, BotActionParams
from agent.modules.base import HostContext, RunContext
from bot.trading.http_api import BotHttpServer
from tests.bot.conftest import bot_settings, make_engine, paper_exchange  # noqa: F401 (fixtures)

TOKEN = "socket-only-control-token"
TOKEN_ENV = "BOTWARDEN_TEST_SOCKET_TOKEN"


class _Impostor:
    """Holds the bot's TCP port: answers /health like a healthy bot, records every header."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        impostor = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                impostor.headers.append(dict(self.headers))
                body = json.dumps({"status": "healthy", "positions": [], "open_orders": 0}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self.do_GET()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def impostor() -> Iterator[_Impostor]:
    imp = _Impostor()
    try:
        yield imp
    finally:
        imp.httpd.shutdown()
        imp.httpd.server_close()


@pytest.fixture(autouse=True)
async def _clients() -> Any:
    yield
    await close_shared_clients()


def _ctx(url: str, socket_path: Path) -> RunContext:
    return RunContext(host=HostContext("box", {"bot": {"url": url, "control_token_env": TOKEN_ENV,
                                                       "control_socket_path": str(socket_path)}}), timeout=10.0)


async def test_an_impostor_on_the_tcp_port_never_receives_the_token(
        impostor: _Impostor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    result = await BotAction().run(BotActionParams(action="halt"), _ctx(impostor.url, tmp_path / "bot-control.sock"))
    assert result.failed, result.msg  # the socket is not there: no halt taken, and it says so
    assert impostor.headers and not any("Authorization" in h for h in impostor.headers)


async def test_halt_goes_through_the_control_socket(make_engine: Any, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    engine = make_engine()
    engine.status.connected = True
    path = tmp_path / "bot-control.sock"
    srv = BotHttpServer("127.0.0.1", 0, status=engine.status, metrics=engine.metrics, token=TOKEN,
                        token_env=TOKEN_ENV, controls=lambda: engine, control_socket=path)
    srv.start()
    try:
        result = await BotAction().run(BotActionParams(action="halt"), _ctx(f"http://127.0.0.1:{srv.port}", path))
    finally:
        srv.stop()
    assert result.changed and not result.failed, result.msg
    assert engine.status.halted_reason and any(h.kind == "control" for h in engine.active_halts())
