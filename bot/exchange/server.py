"""The paper exchange's server (aiohttp on 127.0.0.1): ``/info``, ``/exchange``, ``/ws``, ``/admin``.

Entry points:

* :func:`main` - ``bot paper-exchange``: serve until SIGTERM/SIGINT, return an exit code
  (0 clean stop, 2 refused configuration such as a non-loopback host, 3 unusable state file).
* :func:`serve_in_thread` - start it in-process on an ephemeral port for tests; returns a
  :class:`RunningExchange` with ``.url``, ``.admin(...)`` and ``.stop()``.

The admin API is described in :mod:`bot.exchange.admin`; the websocket in :mod:`bot.exchange.ws`.
Every request that changes state commits once; what it made true is then streamed on the
websocket and the scheduled-cancel timers are re-armed (:meth:`PaperExchange.commit`).
"""
from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from eth_account import Account as EthAccount

from bot.exchange.admin import AdminApi
from bot.exchange.endpoint import ExchangeEndpoint
from bot.exchange.faults import Faults, WeightMeter, seeded_random
from bot.exchange.info_views import BAD_REQUEST, InfoViews, info_weight
from bot.exchange.ledger import Ledger, wall_clock_ms
from bot.exchange.market import Market
from bot.exchange.models import open_database
from bot.exchange.trading import Trading
from bot.exchange.ws import WsHub
from bot.exchange.ws_channels import ChannelFeed
from botwarden.settings import PAPER_DEV_PRIVATE_KEY, StackSettings

log = logging.getLogger("bot.exchange")
DEFAULT_ADMIN_TOKEN = "paper-exchange-dev-token"
DEV_ADDRESS = EthAccount.from_key(PAPER_DEV_PRIVATE_KEY).address.lower()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class PaperExchange:
    """One exchange: ledger + market + faults, and the aiohttp application serving them."""

    def __init__(self, *, state: str | Path, seed: int, coins: list[str], admin_token: str | None,
                 tick_seconds: float = 1.0, fund_dev_account: bool = True,
                 ws_interval_s: float = 0.5) -> None:
        self.seed = seed
        self.admin_token = admin_token
        self.tick_seconds = tick_seconds
        self.fund_dev_account = fund_dev_account
        self.ledger = Ledger(open_database(state), Market(seed=seed, coins=list(coins)))
        self.trading = Trading(self.ledger)
        self.views = InfoViews(self.ledger)
        self.endpoint = ExchangeEndpoint(self.ledger, self.trading, self.views.ledger_cap)
        self.faults = Faults()
        self.weights = WeightMeter()
        self.rng = seeded_random(seed)
        self.hub = WsHub(ChannelFeed(self.views), lambda: self.faults, self._ws_post, clock=wall_clock_ms,
                         interval_s=ws_interval_s)
        self._timers: dict[str, tuple[int, asyncio.TimerHandle]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.ensure_dev_account()
        self.app = web.Application(middlewares=[self._fault_middleware], client_max_size=4 * 1024 * 1024)
        self.app.router.add_post("/info", self._info)
        self.app.router.add_post("/exchange", self._exchange)
        self.app.router.add_get("/ws", self.hub.handle)
        AdminApi(self).register(self.app)
        self.app.on_startup.append(self._start)
        self.app.on_shutdown.append(self._shutdown)
        self.app.on_cleanup.append(self._stop)

    def ensure_dev_account(self) -> None:
        """Fund the well-known development account (paper only) if it does not exist."""
        if self.fund_dev_account and DEV_ADDRESS not in self.ledger.accounts:
            self.ledger.fund(DEV_ADDRESS, self.ledger.config.default_funding)
            self.ledger.commit()

    # ----- the clock ------------------------------------------------------------------------
    async def _start(self, app: web.Application) -> None:
        self._tasks = [asyncio.create_task(self._tick_forever()),
                       asyncio.create_task(self.hub.run_publisher())]
        self.arm_scheduled_cancels()

    async def _shutdown(self, app: web.Application) -> None:
        await self.hub.close_all()

    async def _stop(self, app: web.Application) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for _, handle in self._timers.values():
            handle.cancel()
        self.ledger.close()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_seconds)
            try:
                self.tick()
            except Exception:  # one bad tick must not stop the market
                log.exception("market tick failed")
                self.ledger.reload()

    def tick(self) -> int:
        changed = self.trading.tick(wall_clock_ms())
        self.commit()
        return changed

    def commit(self) -> None:
        """Commit the ledger, then stream what the commit made true and re-arm the timers."""
        self.ledger.commit()
        self.hub.publish(self.ledger.take_events())
        self.arm_scheduled_cancels()

    def arm_scheduled_cancels(self) -> None:
        """One timer per armed dead-man's switch, firing at its time (not on the market tick)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not serving yet: _start arms them
        due = self.trading.due_scheduled_cancels()
        for address, (at, handle) in list(self._timers.items()):
            if due.get(address) != at:
                handle.cancel()
                del self._timers[address]
        for address, at in due.items():
            if address not in self._timers:
                delay = max(0.0, (at - wall_clock_ms()) / 1000.0)
                self._timers[address] = (at, loop.call_later(delay, self._fire_scheduled_cancel, address, at))

    def _fire_scheduled_cancel(self, address: str, at: int) -> None:
        self._timers.pop(address, None)
        now = max(wall_clock_ms(), at)  # the loop's clock may run a hair ahead of the wall clock
        try:
            self.trading.fire_scheduled_cancel(address, now)
            self.commit()
        except Exception:
            log.exception("scheduled cancel of %s failed", address)
            self.ledger.reload()

    # ----- faults ---------------------------------------------------------------------------
    @web.middleware
    async def _fault_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/admin"):
            return await handler(request)
        f = self.faults
        if f.outage == "refuse":
            return _drop(request)
        if f.latency_ms > 0:
            await asyncio.sleep(f.latency_ms / 1000.0)
        if f.outage == "503":
            return web.Response(status=503, text="Service Unavailable")
        failed = self._chance_fault()
        if failed == 500:
            return web.Response(status=500, text="Internal Server Error")
        if failed == 429:
            return _too_many()
        return await handler(request)

    def _chance_fault(self) -> int | None:
        """500 or 429 drawn from ``error_rate`` and ``rate_limit_rate`` (HTTP and websocket posts)."""
        f = self.faults
        if f.error_rate > 0 and self.rng.random() < f.error_rate:
            return 500
        if f.rate_limit_rate > 0 and self.rng.random() < f.rate_limit_rate:
            return 429
        return None

    def _take_dropped_response(self) -> bool:
        """``drop_responses``: whether this action's answer is lost (counted down)."""
        if self.faults.drop_responses > 0:
            self.faults.drop_responses -= 1
            return True
        return False

    def _over_weight(self, weight: int) -> bool:
        used = self.weights.add(weight)
        return self.faults.weight_per_minute is not None and used > self.faults.weight_per_minute

    # ----- /info, /exchange and their websocket twin ----------------------------------------
    def answer_info(self, body: Any) -> tuple[int, Any]:
        kind = body.get("type") if isinstance(body, dict) else None
        if self._over_weight(info_weight(kind)):
            return 429, None
        if body is None:
            return 422, BAD_REQUEST
        if kind in self.faults.info_errors:
            return 500, "Internal Server Error"
        return self.views.answer(body, wall_clock_ms())

    def apply_action(self, payload: Any) -> tuple[int, Any]:
        action = payload.get("action") if isinstance(payload, dict) else None
        weight = self.trading.requests_weight(action) if isinstance(action, dict) else 1
        if self._over_weight(1 + weight // 40):
            return 429, None
        self.trading.ioc_no_fill = self.faults.ioc_no_fill
        status, answer = self.endpoint.apply(payload, wall_clock_ms(), auth_failure=self.faults.auth_failure)
        self.hub.publish(self.ledger.take_events())
        self.arm_scheduled_cancels()
        return status, answer

    async def _info(self, request: web.Request) -> web.StreamResponse:
        status, payload = self.answer_info(await _json_body(request))
        if status == 429:
            return _too_many()
        return _json(payload) if status == 200 else web.Response(status=status, text=payload)

    async def _exchange(self, request: web.Request) -> web.StreamResponse:
        status, answer = self.apply_action(await _json_body(request))
        if status == 429:
            return _too_many()
        if status != 200:
            return web.Response(status=status, text=answer)
        if self._take_dropped_response():
            return _drop(request)
        return _json(answer)

    async def _ws_post(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """A websocket ``post``: the same answer as over HTTP; an HTTP error becomes an
        ``error`` response mirroring its status line and text (# paper: the exact text). The
        faults act as over HTTP: ``latency_ms`` delays the answer, ``error_rate`` and
        ``rate_limit_rate`` answer 500 and 429, ``drop_responses`` applies the action and loses
        its answer with the connection (None: the hub cuts it)."""
        kind, payload = request.get("type"), request.get("payload")
        if self.faults.latency_ms > 0:
            await asyncio.sleep(self.faults.latency_ms / 1000.0)
        failed = self._chance_fault()
        if failed is not None:
            reason = {500: "Internal Server Error", 429: "Too Many Requests"}[failed]
            return {"type": "error", "payload": f"{failed} {reason}"}
        if not isinstance(payload, dict):
            status, answer = 422, BAD_REQUEST
        elif kind == "info":
            status, answer = self.answer_info(payload)
        elif kind == "action":
            status, answer = self.apply_action(payload)
            if status == 200 and self._take_dropped_response():
                return None
        else:
            status, answer = 422, BAD_REQUEST
        if status == 200 and isinstance(payload, dict):
            if kind == "info":
                return {"type": "info", "payload": {"type": payload.get("type"), "data": answer}}
            return {"type": "action", "payload": answer}
        reason = {422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error"}.get(status, "Error")
        text = f"{status} {reason}: {answer}" if answer and answer != reason else f"{status} {reason}"
        return {"type": "error", "payload": text}


def _json(payload: Any) -> web.Response:
    return web.Response(body=json.dumps(payload, separators=(",", ":")).encode(), content_type="application/json")


def _too_many() -> web.Response:
    # The SDK parses a 4xx body as JSON and expects {"code","msg"} or null; Hyperliquid sends null.
    return web.Response(status=429, body=b"null", content_type="application/json")


def _drop(request: web.Request) -> web.Response:
    """Close the connection without answering (the client sees a reset / remote disconnect)."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=204)


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json(loads=json.loads)
    except (ValueError, UnicodeDecodeError):
        return None


def _loopback_socket(host: str, port: int) -> socket.socket:
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"refusing to bind {host}: the paper exchange serves loopback only")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Linux copies TCP_NODELAY to accepted sockets; aiohttp also sets it per connection.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


def admin_token_from_env(settings: StackSettings) -> str | None:
    """The admin token, or None (the admin API is then disabled)."""
    return os.environ.get(settings.exchange.admin_token_env) or None


async def _serve(exchange: PaperExchange, sock: socket.socket, ready: Callable[[], None],
                 stop: asyncio.Event) -> None:
    runner = web.AppRunner(exchange.app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    ready()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(settings: StackSettings, *, host: str, port: int, seed: int, state: str) -> int:
    """Serve the paper exchange until SIGTERM/SIGINT. Exit codes: 0, 2 (bad host), 3 (state)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        sock = _loopback_socket(host, port)
    except (ValueError, OSError) as exc:
        log.error("cannot listen on %s:%s: %s", host, port, exc)
        return 2
    admin_token = admin_token_from_env(settings)
    if admin_token is None:
        log.warning("the admin API (fault injection) is disabled: $%s is not set", settings.exchange.admin_token_env)
    try:
        exchange = PaperExchange(state=state, seed=seed, coins=settings.exchange.coins, admin_token=admin_token)
    except Exception as exc:  # noqa: BLE001 - unusable state file: say so, no traceback
        log.error("cannot open exchange state %s: %s", state, exc)
        sock.close()
        return 3

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await _serve(exchange, sock, lambda: log.info("paper exchange on http://%s:%s (seed %s, state %s)",
                                                      host, sock.getsockname()[1], seed, state), stop)

    asyncio.run(run())
    log.info("paper exchange stopped")
    return 0


@dataclass
class RunningExchange:
    """A paper exchange served from a background thread (tests)."""

    url: str
    admin_token: str
    exchange: PaperExchange
    _loop: asyncio.AbstractEventLoop
    _stop: asyncio.Event
    _thread: threading.Thread
    _client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10.0))

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the admin API (``path`` like ``/admin/faults``); raises on a non-2xx answer."""
        r = self._client.request(method, self.url + path, json=body,
                                 headers={"Authorization": f"Bearer {self.admin_token}"})
        r.raise_for_status()
        return r.json()

    def stop(self) -> None:
        """Stop serving and close the state file (idempotent)."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=10)
        self._client.close()


def serve_in_thread(*, state: str | Path, seed: int = 42, coins: list[str] | None = None, port: int = 0,
                    admin_token: str = DEFAULT_ADMIN_TOKEN, tick_seconds: float = 1.0) -> RunningExchange:
    """Start a paper exchange on 127.0.0.1:``port`` (0 = ephemeral) in a daemon thread."""
    sock = _loopback_socket("127.0.0.1", port)
    exchange = PaperExchange(state=state, seed=seed, coins=coins or ["BTC", "ETH", "SOL"],
                             admin_token=admin_token, tick_seconds=tick_seconds)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop_holder: dict[str, asyncio.Event] = {}
    errors: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def go() -> None:
            stop_holder["stop"] = asyncio.Event()
            await _serve(exchange, sock, started.set, stop_holder["stop"])

        try:
            loop.run_until_complete(go())
        except BaseException as exc:  # noqa: BLE001 - surfaced to the caller below
            errors.append(exc)
            started.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="paper-exchange", daemon=True)
    thread.start()
    started.wait(timeout=10)
    if errors:
        raise RuntimeError(f"paper exchange failed to start: {errors[0]!r}")
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    return RunningExchange(url=url, admin_token=admin_token, exchange=exchange, _loop=loop,
                           _stop=stop_holder["stop"], _thread=thread)
