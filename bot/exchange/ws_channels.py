"""What each websocket subscription sends, in Hyperliquid's shapes (its websocket docs' data types).

* :func:`parse_subscription` validates a ``subscription`` object: a Hyperliquid channel this
  exchange serves, with the fields it needs; otherwise the error text for the ``error`` channel.
* :class:`ChannelFeed` builds the messages: the snapshot sent right after subscribing (user
  fills and ledger updates tagged ``isSnapshot: true``, the current book, mids, candle...), the
  market data pushed every round when it changed, and the messages that ledger events (order
  status changes, fills, transfers) produce once their request has committed.

Channel names on the wire are the subscription types, except ``userEvents``, which arrives on
channel ``user`` (as the SDK's ``ws_msg_to_identifier`` expects).
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.exchange import catalog
from bot.exchange.info_views import InfoViews
from bot.exchange.ledger import LedgerEvent
from bot.exchange.market import INTERVAL_SECONDS
from bot.exchange.rules import wire

Json = Any
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"  # the synthetic book's side of a trade
# pushed when changed (also the account channels: their data changes with the mark, not only on events)
MARKET = ("allMids", "l2Book", "bbo", "candle", "activeAssetCtx", "webData2", "clearinghouseState", "openOrders")
NON_USER_CANCELS = ("scheduledCancel", "reduceOnlyCanceled", "marginCanceled")
SNAPSHOT_FILLS = 2000


@dataclass(frozen=True)
class Subscription:
    type: str
    coin: str | None = None
    user: str | None = None
    interval: str | None = None
    aggregate: bool = False

    @property
    def channel(self) -> str:
        return "user" if self.type == "userEvents" else self.type


def _address(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return value.lower()
    return None


def parse_subscription(raw: Any, coins: set[str]) -> Subscription | str:
    """The :class:`Subscription` of a client's ``subscription`` object, or why it is refused."""
    kind = raw.get("type") if isinstance(raw, dict) else None
    if not isinstance(kind, str) or kind not in catalog.WS_CHANNELS:
        return f"Invalid subscription {json.dumps(raw)}"  # paper
    refused = catalog.refusal("subscription", kind)
    if refused:
        return refused
    if raw.get("dex") not in (None, ""):
        return (f"Unsupported by the paper exchange: subscription {kind} on perp dex {raw['dex']!r} "
                "(one perp dex only).")
    coin = raw.get("coin") if isinstance(raw.get("coin"), str) else None  # a list or object names no coin
    user = _address(raw.get("user"))
    needs_coin = kind in ("l2Book", "trades", "candle", "bbo", "activeAssetCtx")
    needs_user = kind in ("orderUpdates", "userFills", "userEvents", "webData2",
                          "userNonFundingLedgerUpdates", "clearinghouseState", "openOrders")
    if needs_coin and coin not in coins:
        return f"Invalid subscription {json.dumps(raw)}: unknown coin {raw.get('coin')!r}"  # paper
    if needs_user and user is None:
        return f"Invalid subscription {json.dumps(raw)}: user must be a 42-character address"  # paper
    if kind == "l2Book" and (raw.get("nSigFigs") is not None or raw.get("mantissa") is not None):
        return ("Unsupported by the paper exchange: l2Book nSigFigs/mantissa (books are served at full "
                "precision).")
    interval = raw.get("interval") if isinstance(raw.get("interval"), str) else None
    if kind == "candle" and interval not in INTERVAL_SECONDS:
        return f"Invalid subscription {json.dumps(raw)}: interval {interval!r} is not served"  # paper
    return Subscription(kind, coin if needs_coin else None, user if needs_user else None,
                        interval if kind == "candle" else None, bool(raw.get("aggregateByTime")))


class ChannelFeed:
    def __init__(self, views: InfoViews) -> None:
        self.views = views
        self.ledger = views.ledger
        self.mv = views.market
        self.av = views.account

    # ----- market data (snapshot and periodic pushes) ---------------------------------------
    def market_data(self, sub: Subscription, now: int) -> Json:
        """The current data of a market subscription (also its snapshot)."""
        if sub.type == "allMids":
            return {"mids": self.mv.all_mids(now)}
        if sub.type == "l2Book":
            return self.mv.l2_book(str(sub.coin), now)
        if sub.type == "bbo":
            return self.mv.bbo(str(sub.coin), now)
        if sub.type == "candle":
            return self.mv.current_candle(str(sub.coin), str(sub.interval), now)
        if sub.type == "activeAssetCtx":
            return {"coin": sub.coin, "ctx": self.mv.asset_ctx(str(sub.coin), now)}
        if sub.type == "webData2":
            return self.web_data2(str(sub.user), now)
        if sub.type == "clearinghouseState":  # Hyperliquid's {dex, user, clearinghouseState}
            return {"dex": "", "user": sub.user, "clearinghouseState": self.av.clearinghouse_state(str(sub.user), now)}
        if sub.type == "openOrders":  # Hyperliquid's {dex, user, orders}: frontendOpenOrders rows
            return {"dex": "", "user": sub.user, "orders": self.av.open_orders(str(sub.user), frontend=True)}
        raise ValueError(sub.type)

    @staticmethod
    def fingerprint(sub: Subscription, data: Json) -> str:
        """What must change for a market push: the data without its clock."""
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k not in ("time", "serverTime")}
            if "clearinghouseState" in data:
                state = data["clearinghouseState"]
                data["clearinghouseState"] = {k: v for k, v in state.items() if k != "time"}
        return json.dumps(data, sort_keys=True)

    def web_data2(self, user: str, now: int) -> Json:
        """``webData2``: the frontend's aggregate of one user. Its shape is not documented by
        Hyperliquid; these are the fields its public clients read (# paper)."""
        agent = next((w for w in self.ledger.api_wallets.values() if w.master == user and not w.name), None)
        acct = self.ledger.accounts.get(user)
        meta, ctxs = self.mv.meta_and_asset_ctxs(now)
        return {"clearinghouseState": self.av.clearinghouse_state(user, now), "leadingVaults": [],
                "totalVaultEquity": "0.0", "openOrders": self.av.open_orders(user, frontend=True),
                "agentAddress": agent.address if agent else None,
                "agentValidUntil": agent.valid_until if agent else None,
                "cumLedger": f"{acct.balance:.6f}" if acct else "0.0", "meta": meta, "assetCtxs": ctxs,
                "serverTime": now, "isVault": False, "user": user, "twapStates": [],
                "spotState": {"balances": []}}

    def snapshot(self, sub: Subscription, now: int) -> Json | None:
        """The first message after subscribing, or None when the channel starts empty."""
        if sub.type in MARKET:
            return self.market_data(sub, now)
        if sub.type == "userFills":
            fills = self.ledger.fills(str(sub.user), limit=SNAPSHOT_FILLS)
            return {"isSnapshot": True, "user": sub.user, "fills": self.av.fills(fills, sub.aggregate)}
        if sub.type == "userNonFundingLedgerUpdates":
            rows = self.ledger.ledger_updates(str(sub.user), 0, None)
            return {"isSnapshot": True, "user": sub.user,
                    "nonFundingLedgerUpdates": [self.av.ledger_update(u) for u in rows]}
        if sub.type == "trades":
            recent = [f for f in self.ledger.recent_fills(str(sub.coin), 20) if f.crossed]
            return [self._trade(f) for f in recent] or None
        return None  # orderUpdates, userEvents: streams of what happens from now on

    # ----- what committed events produce ----------------------------------------------------
    def event_messages(self, events: Sequence[LedgerEvent]) -> dict[Subscription, list[Json]]:
        """Per subscription key, the messages (in order) a batch of committed events produces.

        A subscription may get more than one: ``userEvents`` carries one kind of event per message
        (Hyperliquid's ``WsUserEvent`` is fills | funding | liquidation | nonUserCancel), so a commit
        that both fills and cancels for the exchange's own reasons (a close that fills and takes the
        position's resting reduce-only orders with it) sends its fills, then its nonUserCancel."""
        orders: dict[str, list[Json]] = defaultdict(list)
        fills: dict[str, list[Json]] = defaultdict(list)
        cancels: dict[str, list[Json]] = defaultdict(list)
        trades: dict[str, list[Json]] = defaultdict(list)
        updates: dict[str, list[Json]] = defaultdict(list)
        for e in events:
            if e.kind == "order" and e.order is not None:
                orders[e.address].append(self.av.ws_order(e.order))
                if e.order.status in NON_USER_CANCELS:
                    cancels[e.address].append({"coin": e.order.coin, "oid": e.order.oid})
            elif e.kind == "fill" and e.fill is not None:
                fills[e.address].append(self.av.fill_view(e.fill))
                trades[e.fill.coin].append(self._trade(e.fill))
            elif e.kind == "ledger" and e.update is not None:
                updates[e.address].append(self.av.ledger_update(e.update))
        out: dict[Subscription, list[Json]] = defaultdict(list)
        for user, items in orders.items():
            out[Subscription("orderUpdates", user=user)].append(items)
        for user, items in fills.items():
            out[Subscription("userFills", user=user)].append({"isSnapshot": False, "user": user, "fills": items})
            out[Subscription("userFills", user=user, aggregate=True)].append({
                "isSnapshot": False, "user": user, "fills": self._aggregate(items)})
            out[Subscription("userEvents", user=user)].append({"fills": items})
        for user, items in cancels.items():
            out[Subscription("userEvents", user=user)].append({"nonUserCancel": items})
        for coin, items in trades.items():
            out[Subscription("trades", coin=coin)].append(items)
        for user, items in updates.items():
            out[Subscription("userNonFundingLedgerUpdates", user=user)].append({
                "isSnapshot": False, "user": user, "nonFundingLedgerUpdates": items})
        return dict(out)

    def _aggregate(self, fills: list[Json]) -> list[Json]:
        merged: dict[tuple[int, int], Json] = {}
        for f in fills:
            key = (f["oid"], f["time"])
            if key in merged:
                m = merged[key]
                total = float(m["sz"]) + float(f["sz"])
                m["px"] = wire((float(m["px"]) * float(m["sz"]) + float(f["px"]) * float(f["sz"])) / total, 6)
                m["sz"] = self.mv.sz(f["coin"], total)
            else:
                merged[key] = dict(f)
        return list(merged.values())

    def _trade(self, f: Any) -> Json:
        """A fill as a public ``WsTrade``: the side is the taker's; the other side is the book."""
        side = f.side if f.crossed else ("A" if f.side == "B" else "B")
        buyer, seller = (f.address, ZERO_ADDRESS) if f.side == "B" else (ZERO_ADDRESS, f.address)
        return {"coin": f.coin, "side": side, "px": wire(f.px, 6),
                "sz": self.mv.sz(f.coin, f.sz), "hash": f.hash, "time": f.time, "tid": f.tid,
                "users": [buyer, seller]}
