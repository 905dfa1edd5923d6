"""Issue 14 items 2 and 8: nothing a server sends can stall the guard.

A real aiohttp server on 127.0.0.1 (in its own thread, so serving costs the checks' loop
nothing) streams generated bodies that are never held whole: 300 MB of valid exposition text,
a gzip bomb (10 GiB of zeros, compressed as it is sent), and JSON nested 100 000 deep. The
checks and actions that read a server's body run against them while a probe measures how late
the event loop wakes up (the lateness every other check of the agent would see) and psutil
samples this process's RSS.

Bounds (stated in docs/security.md): RSS grows by less than 64 MiB and the event loop is never
late by more than 1 s (before the fix: 1.95 GB and a 93 s freeze with one 330 MB /metrics).
"""
from __future__ import annotations

import asyncio
import threading
import zlib
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from aiohttp import web

from agent.http import RequestFailed, get_ok, request
from agent.modules.actions.bot import BotAction, BotActionParams
from agent.modules.checks.http import HttpCheck
from agent.modules.checks.prometheus import PrometheusCheck

pytestmark = pytest.mark.usefixtures("shared_clients")

HUGE_BYTES = 300_000_000
RSS_BOUND = 64 * 1024 * 1024
LAG_BOUND_S = 1.0
_LINES = "".join(f'bot_series_total{{shard="{i}",kind="hostile"}} {i}.5\n' for i in range(2000)).encode()


async def _huge(request: web.Request) -> web.StreamResponse:
    """300 MB of valid exposition text, generated while it is sent (never held)."""
    resp = web.StreamResponse(headers={"Content-Type": "text/plain; version=0.0.4",
                                       "Content-Length": str(HUGE_BYTES)})
    await resp.prepare(request)
    sent = 0
    try:
        while sent < HUGE_BYTES:
            block = _LINES[: HUGE_BYTES - sent]
            await resp.write(block)
            sent += len(block)
    except (ConnectionError, RuntimeError):
        pass  # the client stopped reading: that is the point
    return resp


async def _bomb(request: web.Request) -> web.StreamResponse:
    """10 GiB of zeros, gzip-compressed as it is sent (about 10 MB on the wire)."""
    resp = web.StreamResponse(headers={"Content-Type": "text/plain", "Content-Encoding": "gzip"})
    await resp.prepare(request)
    gz = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (16 << 20)
    try:
        for _ in range(640):
            await resp.write(gz.compress(block))
        await resp.write(gz.flush())
    except (ConnectionError, RuntimeError):
        pass
    return resp


async def _deep(request: web.Request) -> web.Response:
    return web.Response(body=b"[" * 100_000 + b"]" * 100_000, content_type="application/json")


async def _drip(request: web.Request) -> web.StreamResponse:
    """A slow-loris body: one byte every 50 ms, for ever."""
    resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await resp.prepare(request)
    try:
        while True:
            await resp.write(b"x")
            await asyncio.sleep(0.05)
    except (ConnectionError, RuntimeError):
        pass
    return resp


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="bot_equity_usd 1.0\n")


class _Server:
    def __init__(self) -> None:
        self.url = ""
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.add_routes([web.get("/huge", _huge), web.get("/bomb", _bomb), web.get("/health", _deep),
                        web.get("/deep", _deep), web.get("/drip", _drip), web.get("/ok", _ok)])
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())

    def __enter__(self) -> _Server:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def hostile() -> Iterator[_Server]:
    with _Server() as server:
        yield server


class _Watch:
    """Peak RSS growth and the event loop's worst wake-up lateness while it runs."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self.worst_lag = 0.0
        self._stop = asyncio.Event()

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            due = loop.time() + 0.01
            await asyncio.sleep(0.01)
            self.worst_lag = max(self.worst_lag, loop.time() - due)
            self.peak = max(self.peak, self.proc.memory_info().rss)

    async def run(self, *coros: Any) -> list[Any]:
        probe = asyncio.ensure_future(self._probe())
        try:
            return await asyncio.gather(*coros)
        finally:
            self._stop.set()
            await probe

    @property
    def growth(self) -> int:
        return self.peak - self.base


async def test_huge_and_bomb_metrics_cost_one_cap_and_never_stall_the_loop(hostile, make_ctx) -> None:
    check = PrometheusCheck()
    ctx = make_ctx(timeout=30.0)

    def scrape(path: str) -> Any:
        return check.run(check.Params(url=hostile.url + path, metric="bot_series_total", aggregate="sum"), ctx)

    async def others() -> int:
        ok = 0
        for _ in range(40):  # the agent's other checks keep working meanwhile
            result = await check.run(check.Params(url=hostile.url + "/ok", metric="bot_equity_usd"), ctx)
            ok += result.value == 1.0
        return ok

    watch = _Watch()
    results = await watch.run(*(scrape("/huge") for _ in range(4)), *(scrape("/bomb") for _ in range(4)),
                              others())
    *scrapes, ok = results
    assert ok == 40
    for result in scrapes:
        assert result.error is not None and "body larger than 1048576 bytes" in result.error, result
    print(f"hostile /metrics: RSS +{watch.growth / 2**20:.1f} MiB, worst loop lateness {watch.worst_lag * 1000:.0f} ms")
    assert watch.growth < RSS_BOUND, f"RSS grew by {watch.growth / 2**20:.0f} MiB"
    assert watch.worst_lag < LAG_BOUND_S, f"the event loop was {watch.worst_lag:.2f}s late"


@pytest.mark.parametrize("path", ["/huge", "/bomb"])
async def test_every_body_read_is_capped_compressed_and_decoded(hostile, path) -> None:
    response = await request("GET", hostile.url + path, timeout=30.0, max_body_bytes=4096)
    assert response.truncated and len(response.body) == 4096
    with pytest.raises(RequestFailed, match="body larger than 1048576 bytes"):
        await get_ok(hostile.url + path, timeout=30.0)


async def test_deeply_nested_json_is_no_json_not_a_crash(hostile, make_ctx) -> None:
    result = await HttpCheck().run(HttpCheck.Params(url=hostile.url + "/deep"), make_ctx())
    assert result.error is None and result.value == 200 and result.facts["json"] is None

    action = await BotAction().run(BotActionParams(action="status", url=hostile.url), make_ctx())
    assert action.failed and "not a JSON object" in action.msg


async def test_a_body_that_never_ends_is_bounded_by_the_timeout_as_a_whole(hostile) -> None:
    with pytest.raises(RequestFailed, match=r"timed out after 0\.5s"):
        await request("GET", hostile.url + "/drip", timeout=0.5)
