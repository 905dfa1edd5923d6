"""The agent's heartbeat pings (agent.engine.heartbeat) against a real HTTP receiver on 127.0.0.1."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from agent.engine.heartbeat import run_heartbeat
from tests.support.ports import free_port

SECRET = "hb-4f9a7c21e0d3"


class Receiver:
    """Records (host, path, body) of every request; answers ``status``."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []
        self.status = 200

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.host, request.path, await request.read()))
        return web.Response(status=self.status, text="OK")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, int]]:
    rec = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield rec, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


def _config(url: str) -> SimpleNamespace:
    return SimpleNamespace(
        inventory=SimpleNamespace(heartbeat=SimpleNamespace(url=url, every=0.05, timeout=2.0)),
        templating=SimpleNamespace(render_str=lambda text, _vars: text),
        settings=SimpleNamespace(template_vars=dict),
    )


async def _beat(url: str, until: Any) -> list[tuple[bool, str]]:
    """Run the heartbeat until ``until(results)`` holds; the (ok, detail) changes it reported."""
    results: list[tuple[bool, str]] = []
    stop = asyncio.Event()

    async def on_result(ok: bool, detail: str) -> None:
        results.append((ok, detail))

    task = asyncio.create_task(run_heartbeat(lambda: _config(url), stop,
                                             redact=lambda s: s.replace(SECRET, "***"), on_result=on_result))
    try:
        async with asyncio.timeout(10):
            while not until(results):
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await task
    return results


async def test_pings_then_a_failing_receiver_is_reported_with_its_status(receiver) -> None:
    rec, port = receiver
    url = f"http://127.0.0.1:{port}/ping/{SECRET}"
    assert await _beat(url, lambda r: len(rec.seen) >= 2) == [(True, "HTTP 200")]
    assert rec.seen[0][1:] == (f"/ping/{SECRET}", b"botwarden agent alive")
    rec.status = 500
    assert await _beat(url, lambda r: len(r) >= 1) == [(False, "HTTP 500")]


async def test_a_refused_ping_says_so_without_the_url() -> None:
    port = free_port()  # a port that was free a moment ago and has no listener
    assert await _beat(f"http://127.0.0.1:{port}/ping/{SECRET}", lambda r: r) == [(False, "Connection refused")]


async def test_a_failure_detail_that_echoes_the_secret_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    """The failure detail can carry what the receiver sent back: a receiver that answers with a
    malformed status line quoting the request target puts the URL's secret into the transport's
    reason. The detail reported (and the warning logged) must show it redacted."""

    async def echo_target(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target = (await reader.readline()).split()[1]  # b"POST /ping/<secret> HTTP/1.1"
        writer.write(b"NOPE " + target + b"\r\n\r\n")  # not an HTTP status line
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo_target, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with caplog.at_level("WARNING", logger="agent.engine.heartbeat"):
            [(ok, detail)] = await _beat(f"http://127.0.0.1:{port}/ping/{SECRET}", lambda r: r)
    finally:
        server.close()
        await server.wait_closed()
    assert not ok and "Bad status line" in detail and "/ping/***" in detail
    assert SECRET not in detail
    assert caplog.messages and not any(SECRET in m for m in caplog.messages)


async def test_pings_go_through_the_proxy_of_the_environment(receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unlike the checks (trust_env=False), the heartbeat reaches an outside service: a host
    that only gets out through a proxy must still ping."""
    rec, port = receiver
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{port}")
    await _beat(f"http://hc-ping.invalid/ping/{SECRET}", lambda r: rec.seen)
    assert rec.seen[0][:2] == ("hc-ping.invalid", f"/ping/{SECRET}")
