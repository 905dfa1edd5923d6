"""The bot's only door to the exchange: hyperliquid-python-sdk wrapped with timeouts,
latency/error metrics, error classification and idempotent order placement.

It signs with the account's own key or with an API (agent) wallet for ``account_address``
(``Exchange(api_wallet, url, account_address=...)``); every read is of the account. Mids,
candles and fills come from the websocket :class:`MarketFeed` when it has them fresh, from REST
otherwise (each fallback is counted in ``api_requests_total{method=...}`` like any REST call).

Errors are shaped by what the caller must do (botwarden.errors): a timeout, a refused connection,
a 5xx or a 429 is a :class:`TransientError` (retry later); anything else the exchange refuses
comes back as a ``rejected`` :class:`OrderOutcome` (one order refused: a bad price, margin) or
a :class:`GatewayError`. An exchange that refuses a whole signed request (``{"status": "err"}``:
``User or API Wallet 0x... does not exist.`` for a revoked or expired API wallet, a bad nonce...)
is a :class:`GatewayError` and is remembered in :attr:`Gateway.refusal` until an action goes
through again: the bot reports it on /health as a reason it is degraded.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

import eth_account
import requests
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.error import ClientError, ServerError
from hyperliquid.utils.types import Cloid

from bot.trading.market_feed import MarketFeed
from bot.trading.metrics import BotMetrics
from botwarden.errors import BotwardenError, TransientError
from botwarden.protection import tpsl_of

log = logging.getLogger("bot.trading.gateway")
T = TypeVar("T")

OutcomeStatus = Literal["filled", "resting", "open", "canceled", "triggered", "rejected", "unknown"]


class GatewayError(BotwardenError):
    """The exchange refused a request for a reason retrying will not fix (4xx, auth)."""

    def __init__(self, message: str, *, kind: str, hint: str | None = None, refusal: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.kind = kind
        self.refusal = refusal
        """The exchange's own words when it refused the whole request (``{"status": "err"}``)."""


class ExchangeTransientError(TransientError):
    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message, hint="retried on the next loop iteration")
        self.kind = kind


@dataclass(frozen=True)
class ExchangeOrder:
    oid: int
    cloid: str | None
    coin: str
    is_buy: bool
    size: float
    limit_px: float
    trigger_px: float | None
    reduce_only: bool
    is_trigger: bool
    tpsl: str | None = None
    """``"sl"`` (stop-loss), ``"tp"`` (take-profit) or None (not a trigger, or of unknown kind)."""


@dataclass(frozen=True)
class ExchangePosition:
    coin: str
    size: float  # signed
    entry_px: float
    unrealized_pnl: float
    notional: float


@dataclass(frozen=True)
class AccountState:
    equity: float
    positions: dict[str, ExchangePosition]

    @property
    def exposure(self) -> float:
        return sum(abs(p.notional) for p in self.positions.values())


@dataclass(frozen=True)
class OrderOutcome:
    """What became of one order. ``already_known`` is True when the exchange already had the
    cloid and nothing was (re)sent: the duplicate that was avoided."""

    status: OutcomeStatus
    oid: int | None = None
    filled_size: float = 0.0
    avg_px: float | None = None
    error: str | None = None
    already_known: bool = False
    refused: str | None = None
    """Set when the exchange refused the whole request: the :class:`GatewayError` kind (``auth``
    for a signer it does not know: a revoked or expired API wallet; else ``refused``)."""


def _f(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def parse_open_order(row: dict[str, Any]) -> ExchangeOrder:
    trigger = row.get("triggerPx")
    is_trigger = bool(row.get("isTrigger", False))
    return ExchangeOrder(
        oid=int(row["oid"]),
        cloid=row.get("cloid") or None,
        coin=str(row["coin"]),
        is_buy=row.get("side") == "B",
        size=_f(row.get("sz")),
        limit_px=_f(row.get("limitPx")),
        trigger_px=_f(trigger) if is_trigger and trigger is not None else None,
        reduce_only=bool(row.get("reduceOnly", False)),
        is_trigger=is_trigger,
        tpsl=tpsl_of(row.get("orderType"), is_trigger=is_trigger),
    )


def whole_request_refusal(resp: Any) -> str | None:
    """Why the exchange refused a whole ``/exchange`` request (``{"status": "err", "response":
    "..."}``), or None when it took the request (each order may still carry its own error)."""
    if isinstance(resp, dict) and resp.get("status") == "ok":
        return None
    msg = resp.get("response") if isinstance(resp, dict) else resp
    return str(msg)


def parse_order_response(resp: Any) -> OrderOutcome:
    """Map an ``/exchange`` order response to an :class:`OrderOutcome`."""
    if not isinstance(resp, dict) or resp.get("status") != "ok":
        msg = resp.get("response") if isinstance(resp, dict) else resp
        return OrderOutcome("rejected", error=str(msg))
    statuses = resp.get("response", {}).get("data", {}).get("statuses", [])
    if not statuses:
        return OrderOutcome("rejected", error="no status in response")
    st = statuses[0]
    if isinstance(st, dict) and "filled" in st:
        f = st["filled"]
        return OrderOutcome("filled", oid=int(f["oid"]), filled_size=_f(f.get("totalSz")), avg_px=_f(f.get("avgPx")))
    if isinstance(st, dict) and "resting" in st:
        return OrderOutcome("resting", oid=int(st["resting"]["oid"]))
    if isinstance(st, dict) and "error" in st:
        return OrderOutcome("rejected", error=str(st["error"]))
    return OrderOutcome("rejected", error=f"unexpected status {st!r}")


def parse_order_status(resp: Any) -> OrderOutcome | None:
    """Map an ``orderStatus`` answer; None when the exchange has never seen the order."""
    if not isinstance(resp, dict) or resp.get("status") != "order":
        return None
    wrapper = resp.get("order") or {}
    order = wrapper.get("order") or {}
    status = str(wrapper.get("status", "unknown"))
    orig, left = _f(order.get("origSz")), _f(order.get("sz"))
    mapped: dict[str, OutcomeStatus] = {"open": "open", "filled": "filled", "triggered": "triggered"}
    outcome: OutcomeStatus = mapped.get(status, "canceled" if "anceled" in status else "rejected")
    return OrderOutcome(
        outcome,
        oid=int(order["oid"]) if "oid" in order else None,
        filled_size=max(orig - left, 0.0) if outcome != "filled" else orig,
        avg_px=None,
        error=None if outcome not in ("rejected",) else status,
    )


class Gateway:
    """One account on one exchange (``base_url``). Thread-safe enough for the loop and the
    control thread to share: each SDK call is independent and signed with a fresh nonce."""

    def __init__(
        self,
        base_url: str,
        private_key: str,
        *,
        timeout_s: float,
        metrics: BotMetrics,
        lookup_attempts: int = 3,
        lookup_backoff_s: float = 0.5,
        account_address: str | None = None,
        feed: MarketFeed | None = None,
    ) -> None:
        self.metrics = metrics
        self.lookup_attempts = lookup_attempts
        self.lookup_backoff_s = lookup_backoff_s
        self.feed = feed
        wallet = eth_account.Account.from_key(private_key)
        self.signer: str = wallet.address
        self.address: str = account_address or wallet.address
        """The account read and traded (the signer's own unless it is an API wallet)."""
        # The SDK's Exchange builds its Info, which fetches spotMeta and meta (two requests).
        self.exchange = self._call("meta", lambda: Exchange(wallet, base_url, account_address=account_address,
                                                            timeout=timeout_s))
        self.info: Info = self.exchange.info
        self.data_at: float | None = None
        """Wall time the last candles :meth:`candles` returned are from: now for REST, the
        socket's receipt minus its measured lag for pushed ones."""
        self.refusal: str | None = None
        """The exchange's refusal of this bot's last signed request (a revoked API wallet...), or
        None once a request has gone through (or the API wallet is approved again)."""

    # --- plumbing -----------------------------------------------------------------------
    def _call(self, method: str, fn: Callable[[], T]) -> T:
        """Run one API call, timing it and classifying its failure."""
        started = time.monotonic()
        kind: str | None = None
        try:
            return fn()
        except requests.Timeout as e:
            kind = "timeout"
            raise ExchangeTransientError(f"{method}: timed out", kind=kind) from e
        except requests.ConnectionError as e:
            kind = "connection"
            raise ExchangeTransientError(f"{method}: connection failed", kind=kind) from e
        except ServerError as e:
            kind = "server_error"
            raise ExchangeTransientError(f"{method}: HTTP {e.status_code}", kind=kind) from e
        except ClientError as e:
            if e.status_code == 429:
                kind = "rate_limited"
                raise ExchangeTransientError(f"{method}: rate limited (429)", kind=kind) from e
            kind = "auth" if e.status_code in (401, 403) else "client_error"
            raise GatewayError(f"{method}: HTTP {e.status_code}: {e.error_message}", kind=kind) from e
        except ValueError as e:  # unparsable body
            kind = "bad_response"
            raise ExchangeTransientError(f"{method}: bad response", kind=kind) from e
        finally:
            self.metrics.observe_api(method, time.monotonic() - started, kind)

    def _action(self, method: str, fn: Callable[[], Any], *, only_auth: bool = False) -> Any:
        """Send one signed action. A refusal of the whole request raises :class:`GatewayError`
        (kind ``auth`` when the signer is unknown, revoked or expired) and is kept in
        :attr:`refusal` (with ``only_auth``, an auth refusal only: a setting the exchange refuses
        does not stop trading); an accepted request clears it."""
        resp = self._call(method, fn)
        refused = whole_request_refusal(resp)
        if refused is None:
            self.refusal = None
            return resp
        kind = "auth" if "does not exist" in refused or "API Wallet" in refused else "refused"
        if kind == "auth" or not only_auth:
            self.refusal = refused
        self.metrics.api_errors.labels(kind=kind).inc()
        raise GatewayError(f"{method}: the exchange refused the request: {refused}", kind=kind, refusal=refused,
                           hint="an unknown signer is a revoked or expired API wallet: approve it again"
                           if kind == "auth" else None)

    def verify_signer(self) -> str | None:
        """For an API wallet, ask the exchange (``userRole``) whether it is still approved for
        :attr:`address`; a wallet that is not (revoked, expired) sets :attr:`refusal`. Returns
        :attr:`refusal`. The account's own key is always its own user."""
        if self.signer.lower() == self.address.lower():
            return self.refusal
        role = self.signer_role()
        master = (role.get("data") or {}).get("user") if role.get("role") == "agent" else None
        if str(master).lower() != self.address.lower():
            self.refusal = (f"API wallet {self.signer} is not approved for account {self.address} "
                            f"(userRole: {role.get('role', 'unknown')})")
        elif self.refusal is not None and self.refusal.startswith(f"API wallet {self.signer} is not approved"):
            self.refusal = None  # approved again: what this check found is gone
        elif self.refusal is not None and "does not exist" in self.refusal:
            # A refusal of a signed request stands until a signed request goes through: userRole
            # saying "approved" does not prove the exchange takes the bot's signatures. Prove it
            # with a harmless signed request (cancelling an order id that never existed: the
            # exchange takes the request and answers that one cancel with an error).
            try:
                self._action("signer probe", lambda: self.exchange.cancel(self._probe_coin(), 0))
            except (GatewayError, TransientError):
                pass  # still refused (kept in refusal) or no answer: the next check asks again
        return self.refusal

    def _probe_coin(self) -> str:
        return next(iter(self.info.coin_to_asset))

    # --- reads --------------------------------------------------------------------------
    def sz_decimals(self, coin: str) -> int:
        return int(self.info.asset_to_sz_decimals[self.info.name_to_asset(coin)])

    def account(self) -> AccountState:
        raw = self._call("user_state", lambda: self.info.user_state(self.address))
        positions: dict[str, ExchangePosition] = {}
        for entry in raw.get("assetPositions", []):
            p = entry.get("position", entry)
            size = _f(p.get("szi"))
            if size == 0:
                continue
            positions[p["coin"]] = ExchangePosition(
                coin=p["coin"],
                size=size,
                entry_px=_f(p.get("entryPx")),
                unrealized_pnl=_f(p.get("unrealizedPnl")),
                notional=_f(p.get("positionValue")),
            )
        equity = _f(raw.get("marginSummary", {}).get("accountValue"))
        return AccountState(equity=equity, positions=positions)

    def open_orders(self) -> list[ExchangeOrder]:
        rows = self._call("open_orders", lambda: self.info.frontend_open_orders(self.address))
        return [parse_open_order(r) for r in rows]

    def signer_role(self) -> dict[str, Any]:
        """``userRole`` of the signing key: an API wallet must be ``agent`` of :attr:`address`."""
        raw = self._call("user_role", lambda: self.info.user_role(self.signer))
        return raw if isinstance(raw, dict) else {}

    def mids(self) -> dict[str, float]:
        pushed = self.feed.mids() if self.feed is not None else None
        if pushed is not None:
            return pushed
        raw = self._call("all_mids", lambda: self.info.all_mids())
        return {k: _f(v) for k, v in raw.items()}

    def candles(self, coin: str, interval: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        feed = self.feed if self.feed is not None and self.feed.interval == interval else None
        pushed = feed.candles(coin, start_ms, end_ms) if feed is not None else None
        if pushed is not None and feed is not None:
            self.data_at = time.time() - feed.lag_s()
            return pushed
        rows = self._call("candles", lambda: self.info.candles_snapshot(coin, interval, start_ms, end_ms))
        self.data_at = time.time()
        if feed is not None:
            feed.seed(coin, rows, start_ms, end_ms)
        return rows

    def fills(self) -> list[dict[str, Any]]:
        """Fills of the account: those pushed since the last call while the websocket is live,
        else every recent fill from REST (callers deduplicate by ``tid``)."""
        pushed = self.feed.take_fills() if self.feed is not None else None
        if pushed is not None:
            return pushed
        rows = self._call("user_fills", lambda: self.info.user_fills(self.address))
        if self.feed is not None:
            self.feed.rest_fills_done()
        return rows

    def order_status(self, cloid: str) -> OrderOutcome | None:
        raw = self._call("order_status", lambda: self.info.query_order_by_cloid(self.address, Cloid(cloid)))
        return parse_order_status(raw)

    # --- writes -------------------------------------------------------------------------
    def update_leverage(self, coin: str, leverage: int) -> None:
        self._action("update_leverage", lambda: self.exchange.update_leverage(leverage, coin), only_auth=True)

    def cancel(self, coin: str, oid: int) -> bool:
        try:
            resp = self._action("cancel", lambda: self.exchange.cancel(coin, oid))
        except GatewayError as err:  # refused as a whole: not cancelled (and remembered in refusal)
            log.error("cancel refused", extra={"event": "order_rejected", "coin": coin, "oid": oid,
                                               "error": err.message})
            return False
        ok = isinstance(resp, dict) and resp.get("status") == "ok"
        statuses = resp.get("response", {}).get("data", {}).get("statuses", []) if ok else []
        return ok and all(s == "success" for s in statuses)

    def place(
        self,
        *,
        coin: str,
        is_buy: bool,
        size: float,
        limit_px: float,
        order_type: dict[str, Any],
        reduce_only: bool,
        cloid: str,
        check_first: bool = True,
    ) -> OrderOutcome:
        """Place one order, never twice.

        With ``check_first`` the exchange is asked about ``cloid`` before anything is sent (a
        previous life of the bot may have sent it); a reduce-only order is sent even when that
        question fails (it can only reduce; the exchange refuses a cloid it knows). After a timeout, a refused connection, a
        5xx or a 429 the order may or may not have landed: the exchange is asked about the
        cloid (``lookup_attempts`` times, backing off) and the order is re-sent only when the
        exchange positively does not know it. If the lookups fail too, the
        :class:`ExchangeTransientError` propagates and the order stays *pending* for the next
        iteration (or start-up reconciliation) to resolve by cloid.
        """
        if check_first:
            try:
                known = self.order_status(cloid)
            except ExchangeTransientError:
                if not reduce_only:
                    raise
                # A reduce-only order (a stop-loss, a close) can only reduce, and the exchange refuses
                # a cloid it knows: sent unchecked (with the lookup failing no stop could be placed,
                # the position bare for as long as orderStatus failed)
                known = None
                log.warning("order not looked up before its send (reduce-only: sent unchecked)",
                            extra={"event": "order_unchecked", "cloid": cloid, "coin": coin})
            if known is not None:
                return replace(known, already_known=True)
        send = lambda: self.exchange.order(  # noqa: E731
            coin, is_buy, size, limit_px, order_type, reduce_only=reduce_only, cloid=Cloid(cloid)
        )
        for attempt in range(2):
            try:
                return parse_order_response(self._action("order", send))
            except ExchangeTransientError as err:
                log.warning(
                    "order send failed, looking it up by cloid",
                    extra={"event": "order_in_doubt", "cloid": cloid, "coin": coin, "kind": err.kind},
                )
                known = self._lookup_after_failure(cloid)
                if known is not None:
                    return replace(known, already_known=True)
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def _lookup_after_failure(self, cloid: str) -> OrderOutcome | None:
        last: ExchangeTransientError | None = None
        for i in range(self.lookup_attempts):
            time.sleep(self.lookup_backoff_s * (i + 1))
            try:
                return self.order_status(cloid)
            except ExchangeTransientError as err:
                last = err
        assert last is not None
        raise last
