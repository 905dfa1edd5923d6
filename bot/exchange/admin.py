"""The paper exchange's admin API: fault injection and state for drills and tests.

Bearer token from ``$<settings.exchange.admin_token_env>``; when that variable is unset the admin
API is disabled (every call answered 503): there is no public fallback token
(``DEFAULT_ADMIN_TOKEN`` is only what tests pass explicitly). A bad body is a 400 naming the problem; ``/admin`` ignores every fault.

``GET /admin/state``          faults, config, marks, IP weight used, websocket connections and
                              channels, every account's summary and API wallets
``POST /admin/faults``        merge faults (see :mod:`bot.exchange.faults`); ``DELETE`` clears
``POST /admin/config``        exchange rules (see :class:`bot.exchange.ledger.ExchangeConfig`)
``POST /admin/accounts``      ``{"address": "0x..", "usdc": 1000}`` create and/or fund
``POST /admin/shock``         ``{"coin": "BTC", "pct": -10}`` move the mark now, then tick (the
                              mark stays within 0.1x-10x of its unshocked price); ``DELETE``
                              undoes every shock from now on
``POST /admin/tick``          run the market tick now (fills, triggers, missed scheduled cancels)
``POST /admin/ws/drop``       cut every websocket connection once (clients may reconnect)
``POST /admin/reset``         clear faults and config; ``{"state": true}`` also wipes all state
"""
from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.exchange.faults import Faults
from bot.exchange.ledger import ExchangeConfig, wall_clock_ms

if TYPE_CHECKING:
    from bot.exchange.server import PaperExchange

Handler = Callable[[web.Request, dict[str, Any]], Awaitable[Any]]


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(payload, separators=(",", ":")).encode(), status=status,
                        content_type="application/json")


class AdminApi:
    def __init__(self, exchange: PaperExchange) -> None:
        self.ex = exchange

    def register(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/admin/state", self._guard(self._state))
        r.add_post("/admin/faults", self._guard(self._faults))
        r.add_delete("/admin/faults", self._guard(self._clear_faults))
        r.add_post("/admin/config", self._guard(self._config))
        r.add_post("/admin/accounts", self._guard(self._accounts))
        r.add_post("/admin/shock", self._guard(self._shock))
        r.add_delete("/admin/shock", self._guard(self._undo_shocks))
        r.add_post("/admin/tick", self._guard(self._tick))
        r.add_post("/admin/ws/drop", self._guard(self._ws_drop))
        r.add_post("/admin/reset", self._guard(self._reset))

    def _guard(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def guarded(request: web.Request) -> web.StreamResponse:
            given = request.headers.get("Authorization", "")
            if not self.ex.admin_token:
                return _json({"error": "the admin API is disabled: no admin token was set when the exchange "
                                       "started"}, 503)
            if not hmac.compare_digest(given.encode(), f"Bearer {self.ex.admin_token}".encode()):
                return _json({"error": "unauthorized"}, 401)
            body: Any = {}
            if request.method != "GET" and request.can_read_body:
                try:
                    body = await request.json()
                except (ValueError, UnicodeDecodeError):
                    return _json({"error": "body must be a JSON object"}, 400)
            try:
                return _json(await handler(request, body if isinstance(body, dict) else {}))
            except (ValueError, KeyError, TypeError) as exc:
                return _json({"error": str(exc)}, 400)
        return guarded

    async def _state(self, request: web.Request, body: dict[str, Any]) -> Any:
        ex = self.ex
        led, now = ex.ledger, wall_clock_ms()
        marks = led.marks(now)
        accounts = {}
        for addr, acct in led.accounts.items():
            s = led.margin_summary(addr, marks)
            accounts[addr] = {
                "balance": acct.balance, "account_value": s["account_value"], "cum_volume": acct.cum_volume,
                "n_requests": acct.n_requests, "schedule_cancel_ms": acct.schedule_cancel_ms,
                "positions": {c: {"szi": p.szi, "entry_px": p.entry_px}
                              for (a, c), p in led.positions.items() if a == addr},
                "open_orders": sorted(o.oid for o in led.open_orders.values() if o.address == addr),
                "api_wallets": [{"name": w.name, "address": w.address, "valid_until": w.valid_until}
                                for w in led.api_wallets.values() if w.master == addr]}
        return {"time": now, "seed": ex.seed, "faults": ex.faults.as_dict(), "config": vars(led.config),
                "weight_used": ex.weights.used, "marks": marks, "ws": ex.hub.stats(), "accounts": accounts}

    async def _faults(self, request: web.Request, body: dict[str, Any]) -> Any:
        self.ex.faults.update(body)
        if self.ex.faults.ws_outage or self.ex.faults.outage != "off":  # a dead exchange streams nothing
            await self.ex.hub.drop_all()
        return {"faults": self.ex.faults.as_dict()}

    async def _clear_faults(self, request: web.Request, body: dict[str, Any]) -> Any:
        self.ex.faults = Faults()
        self.ex.weights.reset()
        return {"faults": self.ex.faults.as_dict()}

    async def _config(self, request: web.Request, body: dict[str, Any]) -> Any:
        self.ex.ledger.config.update(body)
        return {"config": vars(self.ex.ledger.config)}

    async def _accounts(self, request: web.Request, body: dict[str, Any]) -> Any:
        address = str(body["address"])
        if not address.startswith("0x") or len(address) != 42:
            raise ValueError("address must be 0x followed by 40 hex digits")
        led = self.ex.ledger
        if address.lower() not in led.accounts and led.agent(address.lower(), led.clock()) is not None:
            raise ValueError(f"{address} is an API wallet: it signs for its master and holds no funds")
        acct = self.ex.ledger.fund(address, float(body.get("usdc", self.ex.ledger.config.default_funding)))
        self.ex.commit()
        return {"address": acct.address, "balance": acct.balance}

    async def _shock(self, request: web.Request, body: dict[str, Any]) -> Any:
        led = self.ex.ledger
        coin, pct = str(body["coin"]), body.get("pct")
        now = wall_clock_ms()
        if coin not in led.market.specs:
            raise ValueError(f"unknown coin {coin!r}; listed: {', '.join(led.market.specs)}")
        before = led.market.mark(coin, now)
        led.add_shock(coin, pct, now)  # type: ignore[arg-type]  # any JSON value: checked there (ValueError -> 400)
        changed = self.ex.tick()
        return {"coin": coin, "before": before, "after": led.market.mark(coin, wall_clock_ms()),
                "orders_changed": changed}

    async def _undo_shocks(self, request: web.Request, body: dict[str, Any]) -> Any:
        undone = self.ex.ledger.undo_shocks(wall_clock_ms())
        changed = self.ex.tick() if undone else 0  # a mark that moves back may trigger stops too
        return {"undone": undone, "orders_changed": changed}

    async def _tick(self, request: web.Request, body: dict[str, Any]) -> Any:
        return {"orders_changed": self.ex.tick()}

    async def _ws_drop(self, request: web.Request, body: dict[str, Any]) -> Any:
        return {"dropped": await self.ex.hub.drop_all()}

    async def _reset(self, request: web.Request, body: dict[str, Any]) -> Any:
        ex = self.ex
        ex.faults = Faults()
        ex.weights.reset()
        ex.ledger.config = ExchangeConfig()
        if body.get("state"):
            ex.ledger.wipe()
            ex.ensure_dev_account()
        ex.arm_scheduled_cancels()
        return {"reset": True, "state": bool(body.get("state"))}
