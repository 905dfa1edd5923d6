"""``/info`` request types, answered in Hyperliquid's shapes with string-encoded numbers.

``InfoViews.answer(body, now)`` returns ``(http_status, json)``: 200 with the view, or 422 with
Hyperliquid's deserialize error text for an unknown type or malformed request.
"""
from __future__ import annotations

from typing import Any

from bot.exchange.ledger import Ledger
from bot.exchange.market import INTERVAL_SECONDS
from bot.exchange.models import Fill, Order
from bot.exchange.rules import wire

Json = Any
BAD_REQUEST = "Failed to deserialize the JSON body into the target type"

# IP-weight of each info type (Hyperliquid rate-limit docs): most cost 20, the light ones 2.
LIGHT_INFO = {"l2Book", "allMids", "clearinghouseState", "orderStatus", "spotClearinghouseState", "exchangeStatus"}


def info_weight(kind: str | None) -> int:
    return 2 if kind in LIGHT_INFO else 60 if kind == "userRole" else 20


class InfoViews:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.market = ledger.market

    def answer(self, body: Json, now: int) -> tuple[int, Json]:
        kind = body.get("type") if isinstance(body, dict) else None
        handler = getattr(self, f"_info_{kind}", None) if isinstance(kind, str) else None
        if handler is None:
            return 422, BAD_REQUEST
        try:
            return 200, handler(body, now)
        except (KeyError, TypeError, ValueError, AttributeError):
            return 422, BAD_REQUEST

    def _user(self, body: Json) -> str:
        user = body["user"]
        if not isinstance(user, str) or not user.startswith("0x") or len(user) != 42:
            raise ValueError(user)
        return user.lower()

    def _sz(self, coin: str, x: float) -> str:
        return wire(x, self.market.specs[coin].sz_decimals)

    # ----- market ---------------------------------------------------------------------------
    def _info_meta(self, body: Json, now: int) -> Json:
        return {"universe": [{"name": c, "szDecimals": s.sz_decimals, "maxLeverage": s.max_leverage,
                              "marginTableId": s.max_leverage} for c, s in self.market.specs.items()]}

    def _info_spotMeta(self, body: Json, now: int) -> Json:
        return {"universe": [], "tokens": [{"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0,
                                            "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054", "isCanonical": True,
                                            "evmContract": None, "fullName": None}]}

    def _info_allMids(self, body: Json, now: int) -> Json:
        return {c: wire(self.market.book(c, now).mid, 6) for c in self.ledger.coins}

    def _info_metaAndAssetCtxs(self, body: Json, now: int) -> Json:
        ctxs = []
        for c in self.ledger.coins:
            mid = self.market.book(c, now).mid
            day = self.market.candles(c, "1d", now - 86_400_000, now, now)
            ctxs.append({"funding": "0.0000125", "openInterest": "0.0", "prevDayPx": wire(day[0].o if day else mid, 6),
                         "dayNtlVlm": "0.0", "premium": "0.0", "oraclePx": wire(mid, 6), "markPx": wire(mid, 6),
                         "midPx": wire(mid, 6), "impactPxs": [wire(mid, 6), wire(mid, 6)]})
        return [self._info_meta(body, now), ctxs]

    def _info_l2Book(self, body: Json, now: int) -> Json:
        coin = body["coin"]
        if coin not in self.market.specs:
            return None  # Hyperliquid answers null for an unknown coin
        book = self.market.book(coin, now)
        d = 6 - self.market.specs[coin].sz_decimals
        side = lambda levels: [{"px": wire(x.px, d), "sz": self._sz(coin, x.sz), "n": x.n} for x in levels]  # noqa: E731
        return {"coin": coin, "time": now, "levels": [side(book.bids), side(book.asks)]}

    def _info_candleSnapshot(self, body: Json, now: int) -> Json:
        req = body["req"]
        coin, interval = req["coin"], req["interval"]
        if coin not in self.market.specs or interval not in INTERVAL_SECONDS:
            return []
        start, end = int(req["startTime"]), int(req.get("endTime") or now)
        d = 6 - self.market.specs[coin].sz_decimals
        return [{"t": k.t, "T": k.T, "s": coin, "i": interval, "o": wire(k.o, d), "c": wire(k.c, d),
                 "h": wire(k.h, d), "l": wire(k.l, d), "v": self._sz(coin, k.v), "n": k.n}
                for k in self.market.candles(coin, interval, start, end, now)]

    # ----- account --------------------------------------------------------------------------
    def _info_clearinghouseState(self, body: Json, now: int) -> Json:
        user = self._user(body)
        led = self.ledger
        if user not in led.accounts:
            zero = {"accountValue": "0.0", "totalNtlPos": "0.0", "totalRawUsd": "0.0", "totalMarginUsed": "0.0"}
            return {"marginSummary": zero, "crossMarginSummary": zero, "crossMaintenanceMarginUsed": "0.0",
                    "withdrawable": "0.0", "assetPositions": [], "time": now}
        marks = led.marks(now)
        s = led.margin_summary(user, marks)
        positions = []
        for (addr, coin), p in sorted(led.positions.items()):
            if addr != user or p.szi == 0:
                continue
            mark = marks[coin]
            lev = led.leverage_of(user, coin)
            upnl = p.szi * (mark - p.entry_px)
            margin = abs(p.szi) * mark / lev.value
            leverage: Json = {"type": "cross" if lev.is_cross else "isolated", "value": lev.value}
            if not lev.is_cross:
                leverage["rawUsd"] = wire(-p.szi * p.entry_px + margin, 6)
            positions.append({"type": "oneWay", "position": {
                "coin": coin, "szi": self._sz(coin, p.szi), "leverage": leverage, "entryPx": wire(p.entry_px, 6),
                "positionValue": wire(abs(p.szi) * mark, 6), "unrealizedPnl": wire(upnl, 6),
                "returnOnEquity": wire(upnl / (abs(p.szi) * p.entry_px / lev.value), 6) if p.entry_px else "0.0",
                "liquidationPx": self._liquidation_px(p.szi, mark, s, coin), "marginUsed": wire(margin, 6),
                "maxLeverage": self.market.specs[coin].max_leverage,
                "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"}}})
        summary = {"accountValue": wire(s["account_value"], 6), "totalNtlPos": wire(s["ntl"], 6),
                   "totalRawUsd": wire(s["raw_usd"], 6), "totalMarginUsed": wire(s["margin_used"], 6)}
        withdrawable = max(0.0, s["account_value"] - s["margin_used"] - s["order_margin"])
        return {"marginSummary": summary, "crossMarginSummary": summary,
                "crossMaintenanceMarginUsed": wire(s["maintenance"], 6), "withdrawable": wire(withdrawable, 6),
                "assetPositions": positions, "time": now}

    def _liquidation_px(self, szi: float, mark: float, s: dict[str, float], coin: str) -> str | None:
        # Price where account value meets maintenance margin, other positions held still.
        mmr = 1 / (2 * self.market.specs[coin].max_leverage)
        other_maint = s["maintenance"] - abs(szi) * mark * mmr
        denom = szi - abs(szi) * mmr
        if denom == 0:
            return None
        px = (szi * mark - s["account_value"] + other_maint) / denom
        return wire(px, 6) if px > 0 else None

    def _info_spotClearinghouseState(self, body: Json, now: int) -> Json:
        self._user(body)
        return {"balances": []}

    def _order_view(self, o: Order, frontend: bool) -> Json:
        view: Json = {"coin": o.coin, "side": "B" if o.is_buy else "A", "limitPx": wire(o.limit_px, 6),
                      "sz": self._sz(o.coin, o.sz), "oid": o.oid, "timestamp": o.timestamp,
                      "origSz": self._sz(o.coin, o.orig_sz)}
        if o.cloid:
            view["cloid"] = o.cloid
        if frontend:
            if o.is_trigger:
                above = (o.tpsl == "tp") != o.is_buy
                cond = f"Price {'above' if above else 'below'} {wire(o.trigger_px, 6)}"
                kind = ("Take Profit" if o.tpsl == "tp" else "Stop") + (" Market" if o.is_market else " Limit")
            else:
                cond, kind = "N/A", "Limit"
            view.update({"triggerCondition": cond, "isTrigger": o.is_trigger, "triggerPx": wire(o.trigger_px, 6),
                         "children": [], "isPositionTpsl": o.grouping == "positionTpsl",
                         "reduceOnly": o.reduce_only, "orderType": kind, "tif": o.tif, "cloid": o.cloid})
        return view

    def _open(self, user: str) -> list[Order]:
        return sorted((o for o in self.ledger.open_orders.values() if o.address == user), key=lambda o: -o.oid)

    def _info_openOrders(self, body: Json, now: int) -> Json:
        return [self._order_view(o, False) for o in self._open(self._user(body)) if not o.is_trigger]

    def _info_frontendOpenOrders(self, body: Json, now: int) -> Json:
        return [self._order_view(o, True) for o in self._open(self._user(body))]

    def _info_orderStatus(self, body: Json, now: int) -> Json:
        ref = body["oid"]
        ref = ref.lower() if isinstance(ref, str) else int(ref)
        order = self.ledger.find_order(self._user(body), ref)
        if order is None:
            return {"status": "unknownOid"}
        return {"status": "order", "order": {"order": self._order_view(order, True), "status": order.status,
                                             "statusTimestamp": order.status_ts}}

    def _fill_view(self, f: Fill) -> Json:
        view = {"coin": f.coin, "px": wire(f.px, 6), "sz": self._sz(f.coin, f.sz), "side": f.side, "time": f.time,
                "startPosition": self._sz(f.coin, f.start_position), "dir": f.dir, "closedPnl": wire(f.closed_pnl, 6),
                "hash": f.hash, "oid": f.oid, "crossed": f.crossed, "fee": wire(f.fee, 6), "tid": f.tid,
                "feeToken": "USDC"}
        if f.cloid:
            view["cloid"] = f.cloid
        return view

    def _info_userFills(self, body: Json, now: int) -> Json:
        return [self._fill_view(f) for f in self.ledger.fills(self._user(body))]

    def _info_userFillsByTime(self, body: Json, now: int) -> Json:
        end = body.get("endTime")
        fills = self.ledger.fills(self._user(body), int(body["startTime"]), int(end) if end is not None else None)
        return [self._fill_view(f) for f in fills]

    def _info_userRateLimit(self, body: Json, now: int) -> Json:
        acct = self.ledger.accounts.get(self._user(body))
        vlm = acct.cum_volume if acct else 0.0
        used = acct.n_requests if acct else 0
        return {"cumVlm": wire(vlm, 6), "nRequestsUsed": used, "nRequestsCap": self.ledger_cap(vlm),
                "nRequestsSurplus": 0}

    def ledger_cap(self, volume: float) -> int:
        cap = self.ledger.config.address_request_cap
        return cap if cap is not None else 10_000 + int(volume)

    def _info_userFees(self, body: Json, now: int) -> Json:
        self._user(body)
        return {"userCrossRate": "0.00045", "userAddRate": "0.00015", "activeReferralDiscount": "0.0",
                "dailyUserVlm": [], "feeSchedule": {"cross": "0.00045", "add": "0.00015"}}

    def _info_exchangeStatus(self, body: Json, now: int) -> Json:
        return {"time": now, "specialStatuses": None}
