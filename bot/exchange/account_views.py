"""Account data in Hyperliquid's shapes: clearinghouse state, orders, fills, API wallets, ledger
updates. Shared by ``/info`` and the websocket channels."""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from bot.exchange.ledger import Ledger, OrderSnapshot
from bot.exchange.market_views import MarketViews
from bot.exchange.models import Fill, LedgerUpdate, Order, Position
from bot.exchange.rules import wire

Json = Any
ZERO_SUMMARY = {"accountValue": "0.0", "totalNtlPos": "0.0", "totalRawUsd": "0.0", "totalMarginUsed": "0.0"}


class AccountViews:
    def __init__(self, ledger: Ledger, market_views: MarketViews) -> None:
        self.ledger = ledger
        self.mv = market_views
        self.market = ledger.market

    # ----- clearinghouse --------------------------------------------------------------------
    def clearinghouse_state(self, user: str, now: int) -> Json:
        led = self.ledger
        if user not in led.accounts:
            return {"marginSummary": ZERO_SUMMARY, "crossMarginSummary": ZERO_SUMMARY,
                    "crossMaintenanceMarginUsed": "0.0", "withdrawable": "0.0", "assetPositions": [],
                    "time": now}
        marks = led.marks(now)
        s = led.margin_summary(user, marks)
        positions = [self._position(p, marks[p.coin], s) for (addr, _), p in sorted(led.positions.items())
                     if addr == user and p.szi != 0]
        summary = {"accountValue": wire(s["account_value"], 6), "totalNtlPos": wire(s["ntl"], 6),
                   "totalRawUsd": wire(s["raw_usd"], 6), "totalMarginUsed": wire(s["margin_used"], 6)}
        cross = {"accountValue": wire(s["cross_account_value"], 6), "totalNtlPos": wire(s["cross_ntl"], 6),
                 "totalRawUsd": wire(s["raw_usd"], 6), "totalMarginUsed": wire(s["cross_margin_used"], 6)}
        return {"marginSummary": summary, "crossMarginSummary": cross,
                "crossMaintenanceMarginUsed": wire(s["maintenance"], 6),
                "withdrawable": wire(led.withdrawable(user, marks), 6), "assetPositions": positions,
                "time": now}

    def _position(self, p: Position, mark: float, s: dict[str, float]) -> Json:
        led, coin = self.ledger, p.coin
        lev = led.leverage_of(p.address, coin)
        upnl = p.szi * (mark - p.entry_px)
        margin = led.position_margin(p, mark)
        leverage: Json = {"type": "cross" if lev.is_cross else "isolated", "value": lev.value}
        if not lev.is_cross:
            leverage["rawUsd"] = wire(-p.szi * p.entry_px + margin, 6)
        liquidation = self._liquidation_px(p.szi, mark, s, coin) if lev.is_cross else \
            self._isolated_liquidation_px(p, margin)
        return {"type": "oneWay", "position": {
            "coin": coin, "szi": self.mv.sz(coin, p.szi), "leverage": leverage,
            "entryPx": wire(p.entry_px, 6),
            "positionValue": wire(abs(p.szi) * mark, 6), "unrealizedPnl": wire(upnl, 6),
            "returnOnEquity": wire(upnl / (abs(p.szi) * p.entry_px / lev.value), 6) if p.entry_px else "0.0",
            "liquidationPx": liquidation, "marginUsed": wire(margin, 6),
            "maxLeverage": self.market.specs[coin].max_leverage,
            "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"}}}

    def _liquidation_px(self, szi: float, mark: float, s: dict[str, float], coin: str) -> str | None:
        # Price where cross account value meets cross maintenance margin, other positions held still.
        mmr = 1 / (2 * self.market.specs[coin].max_leverage)
        other_maint = s["maintenance"] - abs(szi) * mark * mmr
        denom = szi - abs(szi) * mmr
        if denom == 0:
            return None
        px = (szi * mark - s["cross_account_value"] + other_maint) / denom
        return wire(px, 6) if px > 0 else None

    def _isolated_liquidation_px(self, p: Position, margin: float) -> str | None:
        # Price where the position's own margin plus its P&L meets its maintenance margin.
        mmr = 1 / (2 * self.market.specs[p.coin].max_leverage)
        denom = p.szi - abs(p.szi) * mmr
        if denom == 0:
            return None
        px = (p.szi * p.entry_px - margin) / denom
        return wire(px, 6) if px > 0 else None

    # ----- orders ---------------------------------------------------------------------------
    def order_view(self, o: Order, frontend: bool, children: list[Order] | None = None, *,
                   record: bool = False) -> Json:
        """An order as Hyperliquid lists it. ``record`` (orderStatus, historicalOrders): a trigger
        that fired keeps what it was placed as (isTrigger, triggerPx, "Stop Limit"...). In the open
        orders (``record`` False) a fired stop-limit still resting on the book is listed as the
        limit order it now is (paper choice: whether Hyperliquid's frontendOpenOrders marks it is
        not documented), so that no reader counts it as a stop still waiting to protect."""
        view: Json = {"coin": o.coin, "side": "B" if o.is_buy else "A", "limitPx": wire(o.limit_px, 6),
                      "sz": self.mv.sz(o.coin, o.sz), "oid": o.oid, "timestamp": o.timestamp,
                      "origSz": self.mv.sz(o.coin, o.orig_sz)}
        if o.cloid:
            view["cloid"] = o.cloid
        if frontend:
            as_trigger = o.is_trigger and (record or not o.triggered)
            if as_trigger:
                above = (o.tpsl == "tp") != o.is_buy
                cond = f"Price {'above' if above else 'below'} {wire(o.trigger_px, 6)}"
                kind = ("Take Profit" if o.tpsl == "tp" else "Stop") + \
                    (" Market" if o.is_market else " Limit")
            else:
                cond, kind = "N/A", "Limit"
            # A trigger's tif is null, fired or not (the Ioc/Gtc it executes with once fired is the
            # exchange's, not the order's).
            view.update({"triggerCondition": cond, "isTrigger": as_trigger,
                         "triggerPx": wire(o.trigger_px if as_trigger else 0.0, 6),
                         "children": [self.order_view(c, True) for c in children or ()],
                         "isPositionTpsl": o.grouping == "positionTpsl",
                         "reduceOnly": o.reduce_only, "orderType": kind, "tif": None if as_trigger else o.tif,
                         "cloid": o.cloid})
        return view

    def ws_order(self, o: OrderSnapshot) -> Json:
        """A ``WsOrder``: the order as it was at one status change."""
        basic: Json = {"coin": o.coin, "side": "B" if o.is_buy else "A", "limitPx": wire(o.limit_px, 6),
                       "sz": self.mv.sz(o.coin, o.sz), "oid": o.oid, "timestamp": o.timestamp,
                       "origSz": self.mv.sz(o.coin, o.orig_sz)}
        if o.cloid:
            basic["cloid"] = o.cloid
        return {"order": basic, "status": o.status, "statusTimestamp": o.status_ts}

    def open_orders(self, user: str, frontend: bool) -> list[Json]:
        """``openOrders`` (what rests on the book: no trigger waiting to fire) or
        ``frontendOpenOrders`` (every open order; the TP/SL of a ``normalTpsl`` parent that has not
        fully filled are listed under its ``children``, not on their own: they wait for its fill)."""
        mine = [o for o in self.ledger.open_orders.values() if o.address == user]
        if not frontend:
            return [self.order_view(o, False) for o in sorted(mine, key=lambda o: -o.oid) if not o.waiting_trigger]
        waiting = {o.oid: o for o in mine if not o.is_trigger}  # an open entry: its TP/SL wait for its whole fill
        children: dict[int, list[Order]] = {}
        for o in mine:
            if o.parent_oid is not None and o.parent_oid in waiting:
                children.setdefault(o.parent_oid, []).append(o)
        nested = {c.oid for group in children.values() for c in group}
        return [self.order_view(o, True, sorted(children.get(o.oid, []), key=lambda c: c.oid))
                for o in sorted(mine, key=lambda o: -o.oid) if o.oid not in nested]

    def order_status(self, user: str, ref: int | str) -> Json:
        order = self.ledger.find_order(user, ref)
        if order is None:
            return {"status": "unknownOid"}
        return {"status": "order", "order": {"order": self.order_view(order, True, record=True), "status": order.status,
                                             "statusTimestamp": order.status_ts}}

    def historical_orders(self, user: str) -> list[Json]:
        return [{"order": self.order_view(o, True, record=True), "status": o.status, "statusTimestamp": o.status_ts}
                for o in self.ledger.orders_of(user, limit=2000)]

    # ----- fills ----------------------------------------------------------------------------
    def fill_view(self, f: Fill) -> Json:
        view: Json = {"coin": f.coin, "px": wire(f.px, 6), "sz": self.mv.sz(f.coin, f.sz), "side": f.side,
                      "time": f.time, "startPosition": self.mv.sz(f.coin, f.start_position), "dir": f.dir,
                      "closedPnl": wire(f.closed_pnl, 6), "hash": f.hash, "oid": f.oid, "crossed": f.crossed,
                      "fee": wire(f.fee, 6), "tid": f.tid, "feeToken": "USDC"}
        if f.cloid:
            view["cloid"] = f.cloid
        if f.builder_fee:
            view["builderFee"] = wire(f.builder_fee, 6)
        return view

    def fills(self, fills: Iterable[Fill], aggregate_by_time: bool = False) -> list[Json]:
        """Fill views, newest first; ``aggregate_by_time`` merges the partial fills of one order
        at one time (a taker order that walked several levels) into one, at the average price."""
        views = [self.fill_view(f) for f in fills]
        if not aggregate_by_time:
            return views
        merged: list[Json] = []
        for v in views:
            last = merged[-1] if merged else None
            if last is not None and last["oid"] == v["oid"] and last["time"] == v["time"]:
                sz_a, sz_b = float(last["sz"]), float(v["sz"])
                total = sz_a + sz_b
                last["px"] = wire((float(last["px"]) * sz_a + float(v["px"]) * sz_b) / total, 6)
                last["sz"] = self.mv.sz(v["coin"], total)
                for key in ("fee", "closedPnl"):
                    last[key] = wire(float(last[key]) + float(v[key]), 6)
                last["startPosition"] = v["startPosition"]  # views are newest first: v came earlier
            else:
                merged.append(dict(v))
        return merged

    # ----- API wallets, builders, ledger updates --------------------------------------------
    def user_role(self, address: str, now: int) -> Json:
        led = self.ledger
        if address in led.accounts:
            return {"role": "user"}
        agent = led.agent(address, now)
        if agent is not None:
            return {"role": "agent", "data": {"user": agent.master}}
        return {"role": "missing"}

    def extra_agents(self, user: str, now: int) -> list[Json]:
        return [{"name": w.name, "address": w.address, "validUntil": w.valid_until}
                for w in sorted(self.ledger.api_wallets.values(), key=lambda w: w.approved_at)
                if w.master == user and w.name and self.ledger.agent(w.address, now) is not None]

    def max_builder_fee(self, user: str, builder: str) -> int:
        approval = self.ledger.builder_approvals.get((user, builder))
        return approval.max_fee if approval else 0

    @staticmethod
    def ledger_update(u: LedgerUpdate) -> Json:
        return {"time": u.time, "hash": u.hash, "delta": json.loads(u.delta)}
