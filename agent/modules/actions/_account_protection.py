"""The order of operations that never leaves a position without a stop: used by the ``exchange``
action's ``flatten``, ``protect`` and ``cancel_all``, hence by the emergency playbook, the
exchange playbook's emergency response and every hand-over to the emergency playbook.

Rules, each a function below:

* an order *protects* a position when it is reduce-only on the closing side of an open
  position (:func:`protects`): cancelling it can only remove protection, never risk, so no
  cancel here touches one while its position is open;
* an order *can add exposure* unless it is reduce-only (:func:`can_add_exposure`); those are
  cancelled, and so are reduce-only orders of coins with no position (they protect nothing);
* :func:`flatten`: close first (reduce-only IOC, one bulk request), then cancel what can add
  exposure, then read the account again; repeat up to ``attempts`` times while time is left,
  keeping enough of the task's time for the last step: if a position is still open (429s, the
  request cap, no fill inside the IOC band), make sure a reduce-only stop-market rests for it
  (:func:`ensure_stops`), and say, per position, whether it has one.

Every exchange call goes through :func:`agent.modules._hyperliquid.call` (a timeout each, a
clear message per failure); a failure is recorded and the sequence goes on, so one refused
request never skips the stop.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agent.modules import _hyperliquid as hl
from botwarden.errors import ModuleError
from botwarden.protection import is_protected, stop_losses

PER_CALL_TIMEOUT_S = 10.0
"""Upper bound of one exchange request inside a flatten (the task's timeout bounds the whole)."""


def round_price(px: float, sz_decimals: int) -> float:
    """Hyperliquid's perp price rule: 5 significant figures, at most 6 - szDecimals decimals."""
    return round(float(f"{px:.5g}"), max(6 - sz_decimals, 0))


def protects(order: hl.OpenOrder, positions: dict[str, hl.Position]) -> bool:
    """Reduce-only on the closing side of an open position: its stop-loss or take-profit."""
    pos = positions.get(order.coin)
    return order.reduce_only and pos is not None and (order.side == "buy") == (pos.size < 0)


def can_add_exposure(order: hl.OpenOrder) -> bool:
    return not order.reduce_only


def to_cancel(orders: list[hl.OpenOrder], positions: dict[str, hl.Position]) -> list[hl.OpenOrder]:
    """What a cancel may take: every order that can add exposure, and reduce-only orders that
    protect no open position. Never an order that :func:`protects` an open position."""
    return [o for o in orders if can_add_exposure(o) or not protects(o, positions)]


def stops_of(position: hl.Position, orders: list[hl.OpenOrder]) -> list[hl.OpenOrder]:
    """The position's stop-losses (:func:`botwarden.protection.stop_losses`: the rule the bot and
    the web page use too)."""
    return stop_losses(position.size, [o for o in orders if o.coin == position.coin])


def position_facts(positions: list[hl.Position], orders: list[hl.OpenOrder]) -> list[dict[str, Any]]:
    """Each position with ``protected`` (reduce-only stop-losses cover its whole size,
    :func:`botwarden.protection.is_protected`) and its stops."""
    out = []
    for p in positions:
        mine = [o for o in orders if o.coin == p.coin]
        out.append({**p.as_fact(), "protected": is_protected(p.size, mine),
                    "stops": [o.as_fact() for o in stop_losses(p.size, mine)]})
    return out


@dataclass
class Account:
    """One reading of the account, or why there is none."""

    positions: dict[str, hl.Position] = field(default_factory=dict)
    orders: list[hl.OpenOrder] = field(default_factory=list)


Connect = Callable[[float], Awaitable[hl.ExchangeClient]]


@dataclass
class Flattening:
    """The state of one flatten: what was done, what failed, what the account holds now."""

    target: hl.Target
    connect: Connect
    deadline: float
    errors: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    stops_placed: list[dict[str, Any]] = field(default_factory=list)
    last: Account | None = None
    verified: bool = False
    """True when :attr:`last` was read after the last action (the facts are current)."""

    def timeout(self) -> float:
        return max(0.5, min(PER_CALL_TIMEOUT_S, self.deadline - time.monotonic()))

    async def client(self) -> hl.ExchangeClient:
        return await self.connect(self.timeout())

    async def client_and_mids(self, what: str) -> tuple[hl.ExchangeClient, dict[str, str]] | None:
        """The signing client and the mids for ``what`` (close, protect); ``None`` with the error
        recorded when either cannot be had."""
        try:
            client = await self.client()
            mids = await hl.call(lambda: client.info.all_mids(), what=f"{what} (mids)", url=self.target.url,
                                 timeout=self.timeout())
        except ModuleError as exc:
            self.errors.append(exc.message)
            return None
        return client, mids

    async def read(self, what: str) -> Account | None:
        try:
            client = await self.client()
            acct, orders = await hl.call(lambda: (hl.read_account(client, self.target.address),
                                                  hl.read_orders(client, self.target.address)),
                                         what=what, url=self.target.url, timeout=self.timeout())
        except ModuleError as exc:
            self.errors.append(exc.message)
            self.verified = False
            return None
        self.last = Account({p.coin: p for p in acct.positions}, orders)
        self.verified = True
        return self.last

    async def send(self, what: str, fn: Callable[[hl.ExchangeClient], Any]) -> Any:
        """One signed request; None (the failure recorded) when it did not go through."""
        try:
            client = await self.client()
            resp = await hl.call(lambda: fn(client), what=what, url=self.target.url, timeout=self.timeout())
        except ModuleError as exc:
            self.errors.append(exc.message)
            return None
        finally:
            self.verified = False
        error = hl.response_error(resp)
        if error is not None:
            self.errors.append(f"{what}: the exchange refused: {error}")
            return None
        return resp


async def close_positions(run: Flattening, positions: list[hl.Position], slippage_pct: float) -> None:
    """One bulk request of reduce-only IOC closes, ``slippage_pct`` through the mid."""
    if not positions:
        return
    got = await run.client_and_mids("close")
    if got is None:
        return
    client, mids = got
    closes = close_orders(client, positions, mids, slippage_pct)
    resp = await run.send("close", lambda c: c.exchange.bulk_orders(closes))
    for p, status in zip(positions, hl.statuses(resp) if resp is not None else [], strict=False):
        if isinstance(status, dict) and "filled" in status:
            run.closed.append(p.coin)
        else:
            err = status.get("error") if isinstance(status, dict) else status
            run.errors.append(f"close {p.coin}: {err}")


def close_orders(client: hl.ExchangeClient, positions: list[hl.Position], mids: dict[str, Any],
                 slippage_pct: float) -> list[dict[str, Any]]:
    out = []
    for p in positions:
        is_buy = p.size < 0
        mid = float(mids.get(p.coin) or p.entry_px)
        px = round_price(mid * (1 + slippage_pct / 100.0 if is_buy else 1 - slippage_pct / 100.0),
                         client.sz_decimals(p.coin))
        out.append({"coin": p.coin, "is_buy": is_buy, "sz": abs(p.size), "limit_px": px,
                    "order_type": {"limit": {"tif": "Ioc"}}, "reduce_only": True})
    return out


async def cancel_orders(run: Flattening, orders: list[hl.OpenOrder]) -> None:
    """One bulk cancel; the reduce-only orders of open positions must not be in ``orders``."""
    if not orders:
        return
    requests_ = [{"coin": o.coin, "oid": o.oid} for o in orders]
    resp = await run.send("cancel", lambda c: c.exchange.bulk_cancel(requests_))
    for o, status in zip(orders, hl.statuses(resp) if resp is not None else [], strict=False):
        if status == "success":
            run.cancelled.append(o.oid)


def stop_requests(client: hl.ExchangeClient, positions: list[hl.Position], mids: dict[str, Any],
                  stop_pct: float, slippage_pct: float) -> list[dict[str, Any]]:
    """A reduce-only stop-market per position, ``stop_pct`` beyond the mid on the losing side."""
    out = []
    for p in positions:
        is_long = p.size > 0
        mid = float(mids.get(p.coin) or p.entry_px)
        dec = client.sz_decimals(p.coin)
        trigger = round_price(mid * (1 - stop_pct / 100.0 if is_long else 1 + stop_pct / 100.0), dec)
        limit = round_price(trigger * (1 - slippage_pct / 100.0 if is_long else 1 + slippage_pct / 100.0), dec)
        out.append({"coin": p.coin, "is_buy": not is_long, "sz": abs(p.size), "limit_px": limit,
                    "order_type": {"trigger": {"triggerPx": trigger, "isMarket": True, "tpsl": "sl"}},
                    "reduce_only": True})
    return out


async def ensure_stops(run: Flattening, stop_pct: float, slippage_pct: float, wanted: Callable[[str], bool],
                       attempts: int = 3, pause: float = 1.0) -> None:
    """Until every open position has a reduce-only stop covering it (or attempts or time run
    out): read, place the missing stops in one bulk request, read again."""
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(max(0.0, min(pause, run.deadline - time.monotonic())))
        if time.monotonic() >= run.deadline:
            return
        acct = run.last if run.verified and run.last is not None else await run.read("protect (read)")
        if acct is None:
            continue
        positions = [p for p in acct.positions.values() if wanted(p.coin)]
        bare = [p for p, f in zip(positions, position_facts(positions, acct.orders), strict=True)
                if not f["protected"]]
        if not bare:
            return
        await _place_stops(run, bare, stop_pct, slippage_pct)
        await run.read("protect (verify)")


async def _place_stops(run: Flattening, bare: list[hl.Position], stop_pct: float, slippage_pct: float) -> None:
    got = await run.client_and_mids("protect")
    if got is None:
        return
    client, mids = got
    stops = stop_requests(client, bare, mids, stop_pct, slippage_pct)
    resp = await run.send("protect", lambda c: c.exchange.bulk_orders(stops))
    for stop, status in zip(stops, hl.statuses(resp) if resp is not None else [], strict=False):
        if isinstance(status, dict) and "resting" in status:
            run.stops_placed.append({"coin": stop["coin"], "oid": status["resting"].get("oid"),
                                     "trigger_px": stop["order_type"]["trigger"]["triggerPx"]})
        else:
            err = status.get("error") if isinstance(status, dict) else status
            run.errors.append(f"protect {stop['coin']}: {err}")


async def flatten(run: Flattening, *, attempts: int, delay: float, slippage_pct: float, stop_pct: float,
                  reserve: float, wanted: Callable[[str], bool]) -> None:
    """See the module docstring. ``reserve``: seconds kept for :func:`ensure_stops`."""
    def done(acct: Account) -> bool:
        return not any(wanted(c) for c in acct.positions) and \
            not to_cancel([o for o in acct.orders if wanted(o.coin)], acct.positions)

    for attempt in range(attempts):
        if attempt:
            if time.monotonic() + delay >= run.deadline - reserve:
                break
            await asyncio.sleep(delay)
        acct = run.last if run.verified and run.last is not None else await run.read("flatten (read)")
        if acct is None:
            continue
        if done(acct):
            return
        await close_positions(run, [p for p in acct.positions.values() if wanted(p.coin)], slippage_pct)
        after = await run.read("flatten (after close)")
        if after is None:
            continue
        await cancel_orders(run, to_cancel([o for o in after.orders if wanted(o.coin)], after.positions))
        verified = await run.read("flatten (verify)")
        if verified is not None and done(verified):
            return
    acct = run.last if run.verified else await run.read("flatten (verify)")
    if acct is None or any(wanted(c) for c in acct.positions):
        await ensure_stops(run, stop_pct, slippage_pct, wanted)
