"""The paper exchange's HTTP server (aiohttp on 127.0.0.1): ``/info``, ``/exchange``, ``/admin``.

Entry points:

* :func:`main` - ``bot paper-exchange``: serve until SIGTERM/SIGINT, return an exit code
  (0 clean stop, 2 refused configuration such as a non-loopback host, 3 unusable state file).
* :func:`serve_in_thread` - start it in-process on an ephemeral port for tests; returns a
  :class:`RunningExchange` with ``.url``, ``.admin(...)`` and ``.stop()``.

Admin API (bearer token from ``$<settings.exchange.admin_token_env>``; when that variable is
unset the admin API is disabled, every call answered 503: there is no public fallback token.
:data:`DEFAULT_ADMIN_TOKEN` is only what tests pass explicitly):

``GET /admin/state``          faults, config, marks, IP weight used, every account's summary
``POST /admin/faults``        merge faults (see :mod:`bot.exchange.faults`); ``DELETE`` clears
``POST /admin/config``        exchange rules (see :class:`bot.exchange.ledger.ExchangeConfig`)
``POST /admin/accounts``      ``{"address": "0x..", "usdc": 1000}`` create and/or fund
``POST /admin/shock``         ``{"coin": "BTC", "pct": -10}`` move the mark now, then tick
``POST /admin/tick``          run the market tick now (fills, triggers, scheduled cancels)
``POST /admin/reset``         clear faults and config; ``{"state": true}`` also wipes all state
"""
from __future__ import annotations

import asyncio
import hmac
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

from bot.exchange.auth import nonce_error, recover_signer
from bot.exchange.faults import Faults, WeightMeter, seeded_random
from bot.exchange.info_views import BAD_REQUEST, InfoViews, info_weight
from bot.exchange.ledger import ExchangeConfig, Ledger, wall_clock_ms
from bot.exchange.market import Market
from bot.exchange.models import open_database
from bot.exchange.rules import err_too_many_requests, err_unknown_user
from bot.exchange.trading import Trading
from botwarden.settings import PAPER_DEV_PRIVATE_KEY, StackSettings

log = logging.getLogger("bot.exchange")
DEFAULT_ADMIN_TOKEN = "paper-exchange-dev-token"
DEV_ADDRESS = EthAccount.from_key(PAPER_DEV_PRIVATE_KEY).address.lower()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class PaperExchange:
    """One exchange: ledger + market + faults, and the aiohttp application serving them."""

    def __init__(self, *, state: str | Path, seed: int, coins: list[str], admin_token: str | None,
                 tick_seconds: float = 1.0, fund_dev_account: bool = True) -> None:
        self.seed = seed
        self.admin_token = admin_token
        self.tick_seconds = tick_seconds
        self.fund_dev_account = fund_dev_account
        self.ledger = Ledger(open_database(state), Market(seed=seed, coins=list(coins)))
        self.trading = Trading(self.ledger)
        self.views = InfoViews(self.ledger)
        self.faults = Faults()
        self.weights = WeightMeter()
        self.rng = seeded_random(seed)
        self._ensure_dev_account()
        self.app = web.Application(middlewares=[self._fault_middleware], client_max_size=4 * 1024 * 1024)
        self.app.router.add_post("/info", self._info)
        self.app.router.add_post("/exchange", self._exchange)
        self.app.router.add_get("/admin/state", self._admin(self._admin_state))
        self.app.router.add_post("/admin/faults", self._admin(self._admin_faults))
        self.app.router.add_delete("/admin/faults", self._admin(self._admin_clear_faults))
        self.app.router.add_post("/admin/config", self._admin(self._admin_config))
        self.app.router.add_post("/admin/accounts", self._admin(self._admin_accounts))
        self.app.router.add_post("/admin/shock", self._admin(self._admin_shock))
        self.app.router.add_post("/admin/tick", self._admin(self._admin_tick))
        self.app.router.add_post("/admin/reset", self._admin(self._admin_reset))
        self.app.on_startup.append(self._start_ticker)
        self.app.on_cleanup.append(self._stop_ticker)

    def _ensure_dev_account(self) -> None:
        if self.fund_dev_account and DEV_ADDRESS not in self.ledger.accounts:
            self.ledger.fund(DEV_ADDRESS, self.ledger.config.default_funding)
            self.ledger.commit()

    # ----- the clock ------------------------------------------------------------------------
    async def _start_ticker(self, app: web.Application) -> None:
        self._ticker = asyncio.create_task(self._tick_forever())

    async def _stop_ticker(self, app: web.Application) -> None:
        self._ticker.cancel()
        try:
            await self._ticker
        except asyncio.CancelledError:
            pass
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
        self.ledger.commit()
        return changed

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
        if f.error_rate > 0 and self.rng.random() < f.error_rate:
            return web.Response(status=500, text="Internal Server Error")
        if f.rate_limit_rate > 0 and self.rng.random() < f.rate_limit_rate:
            return _too_many()
        return await handler(request)

    def _over_weight(self, weight: int) -> bool:
        used = self.weights.add(weight)
        return self.faults.weight_per_minute is not None and used > self.faults.weight_per_minute

    # ----- /info ----------------------------------------------------------------------------
    async def _info(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        kind = body.get("type") if isinstance(body, dict) else None
        if self._over_weight(info_weight(kind)):
            return _too_many()
        if body is None:
            return web.Response(status=422, text=BAD_REQUEST)
        status, payload = self.views.answer(body, wall_clock_ms())
        if status != 200:
            return web.Response(status=status, text=payload)
        return _json(payload)

    # ----- /exchange ------------------------------------------------------------------------
    async def _exchange(self, request: web.Request) -> web.StreamResponse:
        payload = await _json_body(request)
        if not isinstance(payload, dict) or not isinstance(payload.get("action"), dict):
            return web.Response(status=422, text=BAD_REQUEST)
        action = payload["action"]
        n = self.trading.requests_weight(action)
        if self._over_weight(1 + n // 40):
            return _too_many()
        answer = self._authenticated_apply(payload, action, n)
        if self.faults.drop_responses > 0:
            self.faults.drop_responses -= 1
            return _drop(request)
        return _json(answer)

    def _authenticated_apply(self, payload: dict[str, Any], action: dict[str, Any], weight: int) -> dict[str, Any]:
        signer = recover_signer(payload)
        if signer is None:
            return {"status": "err", "response": "Unable to recover signer."}
        led = self.ledger
        if self.faults.auth_failure or signer not in led.accounts:
            return {"status": "err", "response": err_unknown_user(signer)}
        now = wall_clock_ms()
        nonce = payload.get("nonce")
        if not isinstance(nonce, int):
            return {"status": "err", "response": BAD_REQUEST}
        problem = nonce_error(nonce, led.nonces.get(signer, []), now)
        if problem:
            return {"status": "err", "response": problem}
        acct = led.accounts[signer]
        cap = self.views.ledger_cap(acct.cum_volume)
        if acct.n_requests + weight > cap:
            return {"status": "err", "response": err_too_many_requests(acct.n_requests + weight, cap, acct.cum_volume)}
        try:
            led.record_nonce(signer, nonce)
            acct.n_requests += weight
            self.trading.ioc_no_fill = self.faults.ioc_no_fill
            answer = self.trading.apply(signer, action, now)
            led.commit()
        except Exception:
            led.reload()  # back to the last committed state, never a half-applied action
            log.exception("action %s failed", action.get("type"))
            return {"status": "err", "response": "Internal error while applying the action"}
        return answer

    # ----- /admin ---------------------------------------------------------------------------
    def _admin(self, handler: Callable[[web.Request, Any], Awaitable[Any]]) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            given = request.headers.get("Authorization", "")
            if not self.admin_token:
                return web.json_response({"error": "the admin API is disabled: no admin token was set when the "
                                                   "exchange started"}, status=503)
            if not hmac.compare_digest(given.encode(), f"Bearer {self.admin_token}".encode()):
                return web.json_response({"error": "unauthorized"}, status=401)
            body = await _json_body(request) if request.method != "GET" and request.can_read_body else {}
            try:
                return _json(await handler(request, body if isinstance(body, dict) else {}))
            except (ValueError, KeyError, TypeError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
        return guarded

    async def _admin_state(self, request: web.Request, body: dict[str, Any]) -> Any:
        led, now = self.ledger, wall_clock_ms()
        marks = led.marks(now)
        accounts = {}
        for addr, acct in led.accounts.items():
            s = led.margin_summary(addr, marks)
            accounts[addr] = {
                "balance": acct.balance, "account_value": s["account_value"], "cum_volume": acct.cum_volume,
                "n_requests": acct.n_requests, "schedule_cancel_ms": acct.schedule_cancel_ms,
                "positions": {c: {"szi": p.szi, "entry_px": p.entry_px} for (a, c), p in led.positions.items() if a == addr},
                "open_orders": sorted(o.oid for o in led.open_orders.values() if o.address == addr)}
        return {"time": now, "seed": self.seed, "faults": self.faults.as_dict(), "config": vars(led.config),
                "weight_used": self.weights.used, "marks": marks, "accounts": accounts}

    async def _admin_faults(self, request: web.Request, body: dict[str, Any]) -> Any:
        self.faults.update(body)
        return {"faults": self.faults.as_dict()}

    async def _admin_clear_faults(self, request: web.Request, body: dict[str, Any]) -> Any:
        self.faults = Faults()
        self.weights.reset()
        return {"faults": self.faults.as_dict()}

    async def _admin_config(self, request: web.Request, body: dict[str, Any]) -> Any:
        self.ledger.config.update(body)
        return {"config": vars(self.ledger.config)}

    async def _admin_accounts(self, request: web.Request, body: dict[str, Any]) -> Any:
        address = str(body["address"])
        if not address.startswith("0x") or len(address) != 42:
            raise ValueError("address must be 0x followed by 40 hex digits")
        acct = self.ledger.fund(address, float(body.get("usdc", self.ledger.config.default_funding)))
        self.ledger.commit()
        return {"address": acct.address, "balance": acct.balance}

    async def _admin_shock(self, request: web.Request, body: dict[str, Any]) -> Any:
        coin, pct = str(body["coin"]), float(body["pct"])
        if coin not in self.ledger.market.specs or pct <= -100:
            raise ValueError(f"unknown coin {coin!r} or pct <= -100")
        now = wall_clock_ms()
        before = self.ledger.market.mark(coin, now)
        self.ledger.add_shock(coin, pct, now)
        changed = self.tick()
        return {"coin": coin, "before": before, "after": self.ledger.market.mark(coin, wall_clock_ms()),
                "orders_changed": changed}

    async def _admin_tick(self, request: web.Request, body: dict[str, Any]) -> Any:
        return {"orders_changed": self.tick()}

    async def _admin_reset(self, request: web.Request, body: dict[str, Any]) -> Any:
        self.faults = Faults()
        self.weights.reset()
        self.ledger.config = ExchangeConfig()
        if body.get("state"):
            self.ledger.wipe()
            self._ensure_dev_account()
        return {"reset": True, "state": bool(body.get("state"))}


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
    except Exception as exc:  # unusable state file: say so, no traceback
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
        except BaseException as exc:  # surfaced to the caller below
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
