"""``/info`` request types, answered in Hyperliquid's shapes with string-encoded numbers.

``InfoViews.answer(body, now)`` returns ``(http_status, json)``: 200 with the view; 422 with
Hyperliquid's deserialization text for an unknown type or a malformed request; 422 with
"Unsupported by the paper exchange: ..." for a Hyperliquid type, or an option of one (``dex``,
``nSigFigs``, a ``1M`` candle), that this exchange does not serve (see :mod:`catalog`).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.exchange import catalog
from bot.exchange.account_views import AccountViews
from bot.exchange.ledger import Ledger
from bot.exchange.market import INTERVAL_SECONDS
from bot.exchange.market_views import MarketViews
from bot.exchange.rules import wire

Json = Any
BAD_REQUEST = "Failed to deserialize the JSON body into the target type"

# IP-weight of each info type (Hyperliquid rate-limit docs): most cost 20, the light ones 2.
LIGHT_INFO = {"l2Book", "allMids", "clearinghouseState", "orderStatus", "spotClearinghouseState", "exchangeStatus"}
CANDLE_INTERVALS = {*INTERVAL_SECONDS, "1M"}  # what Hyperliquid serves


class UnsupportedError(Exception):
    """A request for something Hyperliquid serves and this exchange refuses by name."""


def info_weight(kind: object) -> int:
    """The IP weight of an ``/info`` request of ``type`` ``kind`` (any JSON value: a list or an object
    is a bad request, weighed as the default 20 and then refused 422 by :meth:`InfoViews.answer`)."""
    if not isinstance(kind, str):
        return 20
    return 2 if kind in LIGHT_INFO else 60 if kind == "userRole" else 20


def user_of(body: Json, key: str = "user") -> str:
    user = body[key]
    if not isinstance(user, str) or not user.startswith("0x") or len(user) != 42:
        raise ValueError(user)
    return user.lower()


def unsupported_option(what: str, why: str) -> UnsupportedError:
    return UnsupportedError(f"Unsupported by the paper exchange: {what} ({why}).")  # paper


def check_dex(body: Json) -> None:
    dex = body.get("dex")
    if dex not in (None, ""):
        raise unsupported_option(f"perp dex {dex!r}", "one perp dex only")


def _u64(value: Any) -> int:
    """A time or an oid as Hyperliquid reads it: an unsigned 64-bit integer, or the body cannot be
    deserialized (ValueError: 422). ``null`` reads as 0 (callers treat it as absent); a negative,
    fractional, string or boolean one was coerced by ``int()``: -5 and 1.5 read as 0, ``true`` as 1."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
        raise ValueError(value)
    return value


class InfoViews:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.market = MarketViews(ledger.market, ledger.coins)
        self.account = AccountViews(ledger, self.market)
        self._handlers: dict[str, Callable[[Json, int], Json]] = {
            "meta": lambda b, now: self.market.meta(),
            "spotMeta": lambda b, now: self.market.spot_meta(),
            "allMids": lambda b, now: self.market.all_mids(now),
            "metaAndAssetCtxs": lambda b, now: self.market.meta_and_asset_ctxs(now),
            "l2Book": self._l2_book,
            "candleSnapshot": self._candle_snapshot,
            "clearinghouseState": lambda b, now: self.account.clearinghouse_state(user_of(b), now),
            "spotClearinghouseState": lambda b, now: {"balances": []} if user_of(b) else None,
            "openOrders": lambda b, now: self.account.open_orders(user_of(b), frontend=False),
            "frontendOpenOrders": lambda b, now: self.account.open_orders(user_of(b), frontend=True),
            "historicalOrders": lambda b, now: self.account.historical_orders(user_of(b)),
            "orderStatus": self._order_status,
            "userFills": lambda b, now: self.account.fills(self.ledger.fills(user_of(b)),
                                                          bool(b.get("aggregateByTime"))),
            "userFillsByTime": self._user_fills_by_time,
            "userNonFundingLedgerUpdates": self._ledger_updates,
            "userRateLimit": self._user_rate_limit,
            "userFees": self._user_fees,
            "userRole": lambda b, now: self.account.user_role(user_of(b), now),
            "extraAgents": lambda b, now: self.account.extra_agents(user_of(b), now),
            "maxBuilderFee": lambda b, now: self.account.max_builder_fee(user_of(b), user_of(b, "builder")),
            "exchangeStatus": lambda b, now: {"time": now, "specialStatuses": None},
        }
        unknown = {k for k, e in catalog.INFO_TYPES.items() if e.supported} ^ set(self._handlers)
        assert not unknown, f"catalog and handlers disagree on {unknown}"

    def answer(self, body: Json, now: int) -> tuple[int, Json]:
        kind = body.get("type") if isinstance(body, dict) else None
        if not isinstance(kind, str):
            return 422, BAD_REQUEST
        refused = catalog.refusal("info type", kind)
        if refused:
            return 422, refused
        handler = self._handlers.get(kind)
        if handler is None:
            return 422, BAD_REQUEST
        try:
            check_dex(body)
            return 200, handler(body, now)
        except UnsupportedError as exc:
            return 422, str(exc)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            # a body of the wrong shape, or a number beyond 64 bits (SQLite's OverflowError): as
            # Hyperliquid answers a body it cannot deserialize
            return 422, BAD_REQUEST

    # ----- the handlers that need more than one line ----------------------------------------
    def _l2_book(self, body: Json, now: int) -> Json:
        coin = body["coin"]
        if body.get("nSigFigs") is not None or body.get("mantissa") is not None:
            raise unsupported_option("l2Book nSigFigs/mantissa", "books are served at full precision")
        if coin not in self.ledger.market.specs:
            return None  # Hyperliquid answers null for an unknown coin
        return self.market.l2_book(coin, now)

    def _candle_snapshot(self, body: Json, now: int) -> Json:
        req = body["req"]
        coin, interval = req["coin"], req["interval"]
        if interval not in CANDLE_INTERVALS:
            raise ValueError(interval)
        if interval not in INTERVAL_SECONDS:
            raise unsupported_option(f"candle interval {interval}", "calendar months are not simulated")
        if coin not in self.ledger.market.specs:
            return []
        return self.market.candles(coin, interval, _u64(req["startTime"]), _u64(req.get("endTime")) or now, now)

    def _order_status(self, body: Json, now: int) -> Json:
        ref = body["oid"]
        return self.account.order_status(user_of(body), ref.lower() if isinstance(ref, str) else _u64(ref))

    def _user_fills_by_time(self, body: Json, now: int) -> Json:
        end = body.get("endTime")
        end_ms = _u64(end) if end is not None else None
        fills = self.ledger.fills(user_of(body), _u64(body["startTime"]), end_ms)
        return self.account.fills(fills, bool(body.get("aggregateByTime")))

    def _ledger_updates(self, body: Json, now: int) -> Json:
        end = body.get("endTime")
        end_ms = _u64(end) if end is not None else None
        rows = self.ledger.ledger_updates(user_of(body), _u64(body["startTime"]), end_ms)
        return [self.account.ledger_update(u) for u in rows]

    def _user_rate_limit(self, body: Json, now: int) -> Json:
        acct = self.ledger.accounts.get(user_of(body))
        vlm = acct.cum_volume if acct else 0.0
        used = acct.n_requests if acct else 0
        return {"cumVlm": wire(vlm, 6), "nRequestsUsed": used,
                "nRequestsCap": self.ledger_cap(vlm), "nRequestsSurplus": 0}

    def ledger_cap(self, volume: float) -> int:
        cap = self.ledger.config.address_request_cap
        return cap if cap is not None else 10_000 + int(volume)

    def _user_fees(self, body: Json, now: int) -> Json:
        user_of(body)
        return {"userCrossRate": "0.00045", "userAddRate": "0.00015", "activeReferralDiscount": "0.0",
                "dailyUserVlm": [], "feeSchedule": {"cross": "0.00045", "add": "0.00015"}}
