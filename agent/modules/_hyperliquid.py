"""Plumbing shared by the ``exchange`` check and action: the exchange reached *directly*.

The agent talks to the exchange through the unmodified ``hyperliquid-python-sdk`` so that the
emergency steps work when the bot is dead or hung. This module owns:

* which account and which key: the host's ``exchange.url``; the agent's own API wallet when
  ``$<agent.api_wallet_key_env>`` is set (``make run`` generates and approves one on paper), so
  the guard can cancel and flatten even when the bot's key is revoked or its nonces are in a bad
  state; else the account's own key, chosen exactly as the bot chooses it
  (:meth:`botwarden.settings.StackSettings.signing_key`). The account is ``bot.account_address`` or
  the address of the account's key. The key is held by the SDK's wallet object only; it is
  never logged, never put in a fact, a message or an exception;
* one cached :class:`ExchangeClient` per (url, signer, account): the SDK's ``Info``
  constructor fetches ``meta`` and ``spotMeta``, so building one per check would double the
  traffic of every check; the cache is refreshed after :data:`META_TTL_SECONDS`;
* :func:`call`: every blocking SDK call runs in a worker thread under a timeout, and its
  failures become :class:`ModuleError` messages an operator can act on;
* parsed views of the account (:class:`AccountSnapshot`, :class:`OpenOrder`).
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from agent.modules.base import RunContext
from botwarden.errors import ModuleError

# The SDK (with eth_account, pycryptodome, requests) costs tens of MB of RSS; the registry imports
# this module at every start-up, so the SDK is imported inside the functions that use it, i.e.
# only once an exchange check or action actually runs.
if TYPE_CHECKING:
    from hyperliquid.api import API
    from hyperliquid.exchange import Exchange
    from hyperliquid.info import Info

T = TypeVar("T")
META_TTL_SECONDS = 3600.0
"""How long a cached client's market metadata (coins, size decimals) is trusted."""


# --- which exchange, which account -------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """The exchange URL and the account the modules act on. ``key`` never leaves this object
    except into the SDK's wallet; its repr hides it."""

    url: str
    address: str
    """The account whose state is read and traded (the signer's, unless ``account_address``)."""
    signer: str
    key: str = field(repr=False)
    account_address: str | None = None


def resolve_target(ctx: RunContext, url: str | None, account_address: str | None) -> Target:
    """The exchange and account for this host: ``url`` or the host's ``exchange.url``; the agent's
    API wallet or the account's key (see the module docstring). Raises :class:`ModuleError` when
    the key is missing or malformed (the message names the variable, never the value)."""
    host_vars = ctx.host.vars
    exchange_vars = host_vars.get("exchange") or {}
    base_url = url or (exchange_vars.get("url") if isinstance(exchange_vars, Mapping) else None)
    if not base_url:
        raise ModuleError("no exchange URL: give url or define exchange.url for the host")
    bot_vars = host_vars.get("bot") if isinstance(host_vars.get("bot"), Mapping) else {}
    agent_vars = host_vars.get("agent") if isinstance(host_vars.get("agent"), Mapping) else {}
    assert isinstance(bot_vars, Mapping) and isinstance(agent_vars, Mapping)
    bot_keys = ("network", "private_key_env", "account_address")
    bot_section = {k: bot_vars[k] for k in bot_keys if bot_vars.get(k)}
    agent_section = {k: agent_vars[k] for k in ("api_wallet_key_env", "api_wallet_name") if agent_vars.get(k)}
    from botwarden.settings import StackSettings

    try:
        settings = StackSettings.model_validate({"bot": bot_section, "agent": agent_section})
        signing = settings.signing_key("agent")
    except (RuntimeError, ValueError) as exc:
        raise ModuleError(f"no signing key: {exc}") from None
    from eth_account import Account as EthAccount  # heavy: see the imports at the top

    try:
        signer = EthAccount.from_key(signing.key).address
    except Exception:  # noqa: BLE001 - the library's message may quote the key; say only where it came from
        raise ModuleError(f"the signing key in ${signing.env} is not a valid private key") from None
    account = account_address or signing.account
    return Target(url=str(base_url).rstrip("/"), address=account or signer, signer=signer, key=signing.key,
                  account_address=account)


# --- cached SDK clients ------------------------------------------------------------------------
@dataclass
class ExchangeClient:
    """The SDK's ``Exchange`` for one target and its ``Info`` (``exchange.info``), built once."""

    info: Info
    exchange: Exchange
    built_at: float

    def set_timeout(self, seconds: float) -> None:
        # The SDK passes API.timeout to requests on every call; the callers' timeouts differ.
        self.info.timeout = seconds  # the exchange's own Info
        self.exchange.timeout = seconds

    def asset(self, coin: str) -> int:
        return int(self.info.name_to_asset(coin))

    def sz_decimals(self, coin: str) -> int:
        return int(self.info.asset_to_sz_decimals[self.asset(coin)])


_clients: dict[tuple[str, str, str | None], ExchangeClient] = {}
_plain_apis: dict[str, API] = {}
_lock = threading.Lock()


def client_for(target: Target, timeout: float) -> ExchangeClient:
    """The cached client of ``target`` (blocking: call it through :func:`call`)."""
    cache_key = (target.url, target.signer, target.account_address)
    with _lock:
        client = _clients.get(cache_key)
    if client is not None and time.monotonic() - client.built_at < META_TTL_SECONDS:
        client.set_timeout(timeout)
        return client
    from eth_account import Account as EthAccount  # heavy: see the imports at the top
    from hyperliquid.exchange import Exchange

    # The Exchange builds its own Info (no websocket), which fetches meta and spotMeta once;
    # reads go through that same Info.
    exchange = Exchange(EthAccount.from_key(target.key), target.url, account_address=target.account_address,
                        timeout=timeout)
    client = ExchangeClient(info=exchange.info, exchange=exchange, built_at=time.monotonic())
    with _lock:
        _clients[cache_key] = client
    return client


def plain_api(url: str, timeout: float) -> API:
    """A bare ``API`` (no metadata fetched) for probes such as the latency check."""
    from hyperliquid.api import API  # heavy: see the imports at the top

    with _lock:
        api = _plain_apis.get(url)
        if api is None:
            api = _plain_apis[url] = API(url, timeout)
    api.timeout = timeout
    return api


def forget_clients() -> None:
    """Drop every cached client (tests; a changed key)."""
    with _lock:
        _clients.clear()
        _plain_apis.clear()


# --- calling the SDK ---------------------------------------------------------------------------
async def call(fn: Callable[[], T], *, what: str, url: str, timeout: float) -> T:
    """Run the blocking ``fn`` in a thread, bounded by ``timeout``; failures -> ModuleError.

    Messages name the exchange and what failed (``timed out``, ``unreachable``, ``HTTP 503``,
    ``rate limited``) and never carry request bodies (they hold signatures).
    """
    import requests  # heavy: see the imports at the top; ``fn`` uses the SDK, so it is loaded anyway
    from hyperliquid.utils.error import ClientError, ServerError

    try:
        async with asyncio.timeout(timeout):
            return await asyncio.to_thread(fn)
    except TimeoutError:
        raise ModuleError(f"{what}: exchange {url} timed out after {timeout:g}s") from None
    except requests.Timeout:
        raise ModuleError(f"{what}: exchange {url} timed out after {timeout:g}s") from None
    except requests.ConnectionError:
        raise ModuleError(f"{what}: exchange {url} is unreachable (connection failed)") from None
    except ServerError as exc:
        raise ModuleError(f"{what}: exchange {url} answered HTTP {exc.status_code}") from None
    except ClientError as exc:
        if exc.status_code == 429:
            raise ModuleError(f"{what}: exchange {url} rate limited the request (HTTP 429)") from None
        detail = f": {exc.error_message}" if exc.error_message else ""
        raise ModuleError(f"{what}: exchange {url} refused with HTTP {exc.status_code}{detail}"[:300]) from None
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ModuleError(f"{what}: unexpected answer from exchange {url}: {type(exc).__name__}: {exc}"[:300]) \
            from None


def response_error(resp: Any) -> str | None:
    """The whole-request error of an ``/exchange`` answer (``{"status": "err", ...}``), else None."""
    if isinstance(resp, dict) and resp.get("status") == "ok":
        return None
    if isinstance(resp, dict):
        return str(resp.get("response") or resp)[:300]
    return f"unexpected answer {str(resp)[:200]!r}"


def looks_like_auth_error(message: str) -> bool:
    """Hyperliquid's answers when the signer is not (or no longer) allowed to act for the account."""
    text = message.lower()
    return any(s in text for s in ("does not exist", "unable to recover signer", "not authorized",
                                   "invalid signature", "must deposit before performing actions"))


def statuses(resp: Any) -> list[Any]:
    """Per-order (or per-cancel) statuses of an ``ok`` answer."""
    try:
        return list(resp["response"]["data"]["statuses"])
    except (KeyError, TypeError):
        return []


# --- parsed account views ----------------------------------------------------------------------
def _f(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True)
class Position:
    coin: str
    size: float
    """Signed: > 0 long, < 0 short."""
    entry_px: float
    notional: float
    unrealized_pnl: float
    margin_used: float

    @property
    def side(self) -> str:
        return "long" if self.size > 0 else "short"

    def as_fact(self) -> dict[str, Any]:
        return {"coin": self.coin, "side": self.side, "size": abs(self.size), "entry_px": self.entry_px,
                "notional": self.notional, "unrealized_pnl": self.unrealized_pnl}

    def describe(self) -> str:
        return f"{self.coin} {self.side} {abs(self.size):g} @ {self.entry_px:g}"


@dataclass(frozen=True)
class AccountSnapshot:
    account_value: float
    margin_used: float
    maintenance_margin: float
    withdrawable: float
    total_notional: float
    positions: list[Position]


def read_account(client: ExchangeClient, address: str) -> AccountSnapshot:
    """``clearinghouseState`` of ``address`` (blocking)."""
    raw = client.info.user_state(address)
    summary = raw.get("marginSummary") or {}
    positions = []
    for entry in raw.get("assetPositions") or []:
        p = entry.get("position", entry)
        size = _f(p.get("szi"))
        if size == 0:
            continue
        positions.append(Position(coin=str(p["coin"]), size=size, entry_px=_f(p.get("entryPx")),
                                  notional=_f(p.get("positionValue")), unrealized_pnl=_f(p.get("unrealizedPnl")),
                                  margin_used=_f(p.get("marginUsed"))))
    return AccountSnapshot(account_value=_f(summary.get("accountValue")), margin_used=_f(summary.get("totalMarginUsed")),
                           maintenance_margin=_f(raw.get("crossMaintenanceMarginUsed")),
                           withdrawable=_f(raw.get("withdrawable")), total_notional=_f(summary.get("totalNtlPos")),
                           positions=positions)


@dataclass(frozen=True)
class OpenOrder:
    coin: str
    side: str
    """``buy`` or ``sell``."""
    size: float
    price: float
    oid: int
    reduce_only: bool
    trigger_px: float | None
    order_type: str

    def as_fact(self) -> dict[str, Any]:
        return {"coin": self.coin, "side": self.side, "size": self.size, "price": self.price, "oid": self.oid,
                "reduce_only": self.reduce_only, "trigger_px": self.trigger_px, "order_type": self.order_type}

    def describe(self) -> str:
        trigger = f" trigger {self.trigger_px:g}" if self.trigger_px is not None else ""
        ro = " reduce-only" if self.reduce_only else ""
        return f"{self.coin} {self.side} {self.size:g} @ {self.price:g}{trigger}{ro} (oid {self.oid})"


def read_orders(client: ExchangeClient, address: str) -> list[OpenOrder]:
    """Every resting order of ``address``, triggers included (``frontendOpenOrders``; blocking)."""
    out = []
    for row in client.info.frontend_open_orders(address):
        is_trigger = bool(row.get("isTrigger", False))
        out.append(OpenOrder(coin=str(row["coin"]), side="buy" if row.get("side") == "B" else "sell",
                             size=_f(row.get("sz")), price=_f(row.get("limitPx")), oid=int(row["oid"]),
                             reduce_only=bool(row.get("reduceOnly", False)),
                             trigger_px=_f(row.get("triggerPx")) if is_trigger else None,
                             order_type=str(row.get("orderType") or ("Trigger" if is_trigger else "Limit"))))
    return sorted(out, key=lambda o: (o.coin, o.oid))
