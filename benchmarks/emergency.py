"""Scenario 3: emergency on an account with 100 resting orders and 10 positions.

The paper exchange runs as its own process (``bot paper-exchange``) with ten perp markets
(``exchange.coins``). Each repetition wipes the exchange state (admin ``reset``), opens one
position per coin and places 100 resting bids far below the market (one bulk order) through
the unmodified SDK with the paper development key, then times the exchange part of
``playbooks/emergency.yaml``: the real ``exchange`` action module's ``flatten`` (close every
position reduce-only in one bulk order, then cancel what can add exposure in one bulk cancel,
verified), run in this process with a fresh SDK client (as a new ``agent run-playbook``
process would build one), until the account is flat, verified through the SDK (no open
orders, no positions). The bot and supervisor steps of the playbook are not part of it.

Requests are counted on the wire: a counter wraps ``requests.Session.send`` (the SDK's HTTP
path) while the action runs, by endpoint and by signed action type; nothing is answered by it.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
import yaml
from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info

from agent.modules import _hyperliquid as hl
from agent.modules.actions.exchange import ExchangeAction, ExchangeActionParams
from agent.modules.base import HostContext, RunContext
from benchmarks._common import BIN, Series, free_port, log, short_tmp, wait_for
from bot.exchange.market import round_to_tick, tick_size
from bot.exchange.server import DEFAULT_ADMIN_TOKEN
from botwarden.settings import PAPER_DEV_PRIVATE_KEY

COINS = ["BTC", "ETH", "SOL", "AVAX", "ARB", "DOGE", "LINK", "OP", "SUI", "APT"]
RESTING_ORDERS = 100
POSITION_USD = 200.0
ORDER_USD = 20.0
UNSET_KEY_ENV = "BOTWARDEN_BENCH_KEY_THAT_IS_NOT_SET"  # -> the paper development key, as the bot picks it


class WireCounter:
    """Counts the SDK's HTTP requests: ``/info`` by type, ``/exchange`` by action type and size."""

    def __init__(self) -> None:
        self.info: Counter[str] = Counter()
        self.exchange: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    @contextmanager
    def counting(self) -> Iterator[WireCounter]:
        original = requests.Session.send
        counter = self

        def send(session: requests.Session, request: requests.PreparedRequest, **kw: Any) -> requests.Response:
            counter._record(request)
            return original(session, request, **kw)

        requests.Session.send = send  # type: ignore[method-assign]
        try:
            yield self
        finally:
            requests.Session.send = original  # type: ignore[method-assign]

    def _record(self, request: requests.PreparedRequest) -> None:
        body = json.loads(request.body or b"{}")
        with self._lock:
            if (request.url or "").endswith("/exchange"):
                action = body.get("action", {})
                items = next((len(action[k]) for k in ("cancels", "orders") if isinstance(action.get(k), list)), 1)
                self.exchange.append((str(action.get("type")), items))
            else:
                self.info[str(body.get("type"))] += 1


def _admin(url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(f"{url}/admin/{path}", data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {DEFAULT_ADMIN_TOKEN}",
                                          "Content-Type": "application/json"}, method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _px(px: float, sz_decimals: int, up: bool) -> float:
    return round_to_tick(px, tick_size(px, sz_decimals), up)


def _setup(info: Info, ex: Exchange, decimals: dict[str, int]) -> None:
    """One position per coin (market orders) and RESTING_ORDERS bids at 80 % of the mid (one bulk order)."""
    mids = {c: float(v) for c, v in info.all_mids().items()}
    for i, coin in enumerate(COINS):
        sz = round(POSITION_USD / mids[coin], decimals[coin]) or 10.0 ** -decimals[coin]
        resp = ex.market_open(coin, i % 2 == 0, sz)
        assert resp["status"] == "ok" and "filled" in resp["response"]["data"]["statuses"][0], resp
    orders = []
    for i in range(RESTING_ORDERS):
        coin = COINS[i % len(COINS)]
        px = _px(mids[coin] * (0.8 - 0.001 * (i // len(COINS))), decimals[coin], up=False)
        sz = max(round(ORDER_USD / px, decimals[coin]), 10.0 ** -decimals[coin])
        orders.append({"coin": coin, "is_buy": True, "sz": sz, "limit_px": px,
                       "order_type": {"limit": {"tif": "Gtc"}}, "reduce_only": False})
    resp = ex.bulk_orders(orders)
    statuses = resp["response"]["data"]["statuses"]
    assert all("resting" in s for s in statuses), [s for s in statuses if "resting" not in s][:3]


def _flat(info: Info, address: str) -> tuple[int, int]:
    """(open orders, open positions) of ``address`` read through the SDK."""
    state = info.user_state(address)
    positions = [p for p in state["assetPositions"] if float(p["position"]["szi"]) != 0]
    return len(info.open_orders(address)), len(positions)


async def _emergency(ctx: RunContext) -> list[tuple[Any, float]]:
    """``flatten``, as the playbook runs it: [(result, milliseconds)]."""
    t0 = time.perf_counter()
    result = await ExchangeAction().run(ExchangeActionParams(action="flatten"), ctx)
    return [(result, (time.perf_counter() - t0) * 1000)]


def run(reps: int) -> dict[str, Any]:
    """``reps`` timed repetitions; returns the series and the request counts of each repetition."""
    d = short_tmp("bwe")
    port = free_port()
    settings = d / "settings.yaml"
    settings.write_text(yaml.safe_dump({"var_dir": str(d / "var"), "exchange": {
        "port": port, "state": str(d / "exchange.db"), "coins": COINS}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTWARDEN_")}
    env["BOTWARDEN_EXCHANGE_ADMIN_TOKEN"] = DEFAULT_ADMIN_TOKEN  # the exchange has no token of its own
    proc = subprocess.Popen([str(BIN / "bot"), "paper-exchange", "--settings", str(settings)], cwd=d, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(d / "exchange.log", "wb"))
    url = f"http://127.0.0.1:{port}"
    flat_ms = Series("100 orders + 10 positions -> flat (flatten, verified through the SDK)")
    flatten_ms = Series("flatten action (10 closes, then 100 cancels)")
    counts: list[dict[str, Any]] = []
    try:
        wait_for(lambda: _try(lambda: _admin(url, "state")), 30, 0.05)
        info = Info(url, skip_ws=True, timeout=10)
        decimals = {a["name"]: int(a["szDecimals"]) for a in info.meta()["universe"]}
        address = Account.from_key(PAPER_DEV_PRIVATE_KEY).address
        ctx = RunContext(host=HostContext("bench", {"exchange": {"url": url},
                                                    "bot": {"network": "paper", "private_key_env": UNSET_KEY_ENV}}),
                         timeout=10.0)
        for rep in range(reps):
            _admin(url, "reset", {"state": True})
            ex = Exchange(Account.from_key(PAPER_DEV_PRIVATE_KEY), url, timeout=10)
            _setup(info, ex, decimals)
            assert _flat(info, address) == (RESTING_ORDERS, len(COINS)), _flat(info, address)
            hl.forget_clients()  # a fresh client, as a new `agent run-playbook` process builds one
            wire = WireCounter()
            with wire.counting():
                t0 = time.perf_counter()
                results = asyncio.run(_emergency(ctx))
                t_actions = time.perf_counter()
            left = _flat(info, address)
            t_flat = time.perf_counter()
            if left != (0, 0) or any(r.failed for r, _ in results):
                log(f"  rep {rep}: NOT flat: {left}; {[r.msg for r, _ in results]}")
                continue
            flat_ms.add((t_flat - t0) * 1000)
            flatten_ms.add(results[0][1])
            counts.append({"exchange": list(wire.exchange), "info": dict(wire.info),
                           "actions_ms": (t_actions - t0) * 1000})
        return {"flat": flat_ms, "flatten": flatten_ms, "counts": counts, "reps": reps}
    finally:
        proc.terminate()
        proc.wait(20)


def _try(fn: Any) -> Any:
    try:
        return fn()
    except Exception:  # noqa: BLE001 - not up yet
        return None


if __name__ == "__main__":
    out = run(int(os.environ.get("BENCH_REPS", "20")))
    for key in ("flat", "flatten"):
        log(f"{out[key].row()}")
    log(json.dumps(out["counts"][:1]))
