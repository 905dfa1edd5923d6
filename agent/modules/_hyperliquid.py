"""Plumbing shared by the ``exchange`` check and action: the exchange reached *directly*.

The agent signs through the unmodified ``hyperliquid-python-sdk`` so that the emergency steps
work when the bot is dead or hung, and *reads* the account without it (:class:`InfoReader`:
Hyperliquid's ``/info`` over the agent's own HTTP transport, capped and bounded like every other
read): the SDK and eth_account cost the resident agent about 12 MB for as long as it lives once
imported, and the checks that run every few seconds only read. This module owns:

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
* :class:`InfoReader`: the reads of the checks, without the SDK;
* parsed views of the account (:class:`AccountSnapshot`, :class:`OpenOrder`), the same whether
  the answer came through the SDK (actions) or the reader (checks).
"""
from __future__ import annotations

import asyncio
import subprocess
import sys
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
        signing = settings.signing_key("agent", derive=lambda key: address_in_child(key).lower())
    except (RuntimeError, ValueError) as exc:
        raise ModuleError(f"no signing key: {exc}") from None
    try:
        signer = address_in_child(signing.key)
    except ValueError:
        raise ModuleError(f"the signing key in ${signing.env} is not a valid private key") from None
    account = account_address or signing.account
    return Target(url=str(base_url).rstrip("/"), address=account or signer, signer=signer, key=signing.key,
                  account_address=account)


_addresses: dict[str, str] = {}


def address_in_child(key: str) -> str:
    """The EIP-55 address of ``key``, derived once per key in a child interpreter
    (``python -m botwarden.keys``): the secp256k1 and Keccak libraries cost the resident agent
    about 8 MB for good once imported (measured: coincurve 4.8, pycryptodome's Keccak 3.5), for
    an address that never changes. ``ValueError`` when the key is not a key. Blocking (~100 ms,
    once): the checks call it from a probe thread."""
    import hashlib

    digest = hashlib.sha256(key.encode()).hexdigest()
    with _lock:
        known = _addresses.get(digest)
    if known is not None:
        return known
    proc = subprocess.run([sys.executable, "-m", "botwarden.keys"], input=key, capture_output=True, text=True,
                          timeout=30, check=False)
    if proc.returncode != 0:
        raise ValueError("not a private key")
    address = proc.stdout.strip()
    with _lock:
        _addresses[digest] = address
    return address


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
    return parse_account(client.info.user_state(address))


def parse_account(raw: Mapping[str, Any]) -> AccountSnapshot:
    """An account from a ``clearinghouseState`` answer."""
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

    @property
    def is_buy(self) -> bool:
        return self.side == "buy"

    @property
    def limit_px(self) -> float:
        return self.price

    @property
    def tpsl(self) -> str | None:
        """``"sl"``, ``"tp"`` or None, read from the order type (:func:`botwarden.protection.tpsl_of`)."""
        from botwarden.protection import tpsl_of

        return tpsl_of(self.order_type, is_trigger=self.trigger_px is not None)

    def as_fact(self) -> dict[str, Any]:
        return {"coin": self.coin, "side": self.side, "size": self.size, "price": self.price, "oid": self.oid,
                "reduce_only": self.reduce_only, "trigger_px": self.trigger_px, "order_type": self.order_type}

    def describe(self) -> str:
        trigger = f" trigger {self.trigger_px:g}" if self.trigger_px is not None else ""
        ro = " reduce-only" if self.reduce_only else ""
        return f"{self.coin} {self.side} {self.size:g} @ {self.price:g}{trigger}{ro} (oid {self.oid})"


def read_orders(client: ExchangeClient, address: str) -> list[OpenOrder]:
    """Every resting order of ``address``, triggers included (``frontendOpenOrders``; blocking)."""
    return parse_orders(client.info.frontend_open_orders(address))


def parse_orders(rows: Any) -> list[OpenOrder]:
    """Resting orders from a ``frontendOpenOrders`` answer."""
    out = []
    for row in rows:
        is_trigger = bool(row.get("isTrigger", False))
        out.append(OpenOrder(coin=str(row["coin"]), side="buy" if row.get("side") == "B" else "sell",
                             size=_f(row.get("sz")), price=_f(row.get("limitPx")), oid=int(row["oid"]),
                             reduce_only=bool(row.get("reduceOnly", False)),
                             trigger_px=_f(row.get("triggerPx")) if is_trigger else None,
                             order_type=str(row.get("orderType") or ("Trigger" if is_trigger else "Limit"))))
    return sorted(out, key=lambda o: (o.coin, o.oid))


# --- reads without the SDK -----------------------------------------------------------------------
class InfoReader:
    """Hyperliquid's ``/info`` for the checks, through :mod:`agent.http` (one shared session,
    the body capped, the timeout bounding the whole request, large answers parsed off the event
    loop). Failures are :class:`ModuleError` in the words :func:`call` uses for the SDK's."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    async def post(self, body: Mapping[str, Any], *, what: str, timeout: float) -> Any:
        from agent.http import RequestFailed, parse_json, request

        try:
            resp = await request("POST", f"{self.url}/info", json_body=dict(body), timeout=timeout,
                                 max_body_bytes=INFO_MAX_BODY_BYTES)
        except RequestFailed as exc:
            if "timed out" in exc.reason:
                raise ModuleError(f"{what}: exchange {self.url} timed out after {timeout:g}s") from None
            raise ModuleError(f"{what}: exchange {self.url} is unreachable ({exc.reason})") from None
        if resp.status == 429:
            raise ModuleError(f"{what}: exchange {self.url} rate limited the request (HTTP 429)")
        if resp.status >= 500:
            raise ModuleError(f"{what}: exchange {self.url} answered HTTP {resp.status}")
        if resp.status != 200:
            detail = resp.text[:200].strip()
            raise ModuleError(f"{what}: exchange {self.url} refused with HTTP {resp.status}"
                              + (f": {detail}" if detail else ""))
        if resp.truncated:
            raise ModuleError(f"{what}: the answer of exchange {self.url} is larger than "
                              f"{INFO_MAX_BODY_BYTES // 1_048_576} MiB")
        try:
            if len(resp.body) > 65_536:
                return await asyncio.to_thread(parse_json, resp.body)
            return parse_json(resp.body)
        except ValueError as exc:
            raise ModuleError(f"{what}: unexpected answer from exchange {self.url}: {exc}"[:300]) from None

    async def user_state(self, address: str, *, what: str, timeout: float) -> AccountSnapshot:
        raw = await self.post({"type": "clearinghouseState", "user": address}, what=what, timeout=timeout)
        if not isinstance(raw, Mapping):
            raise ModuleError(f"{what}: unexpected answer from exchange {self.url}: not an account")
        return parse_account(raw)

    async def open_orders(self, address: str, *, what: str, timeout: float) -> list[OpenOrder]:
        rows = await self.post({"type": "frontendOpenOrders", "user": address}, what=what, timeout=timeout)
        return parse_orders(rows if isinstance(rows, list) else [])

    async def fills(self, address: str, *, what: str, timeout: float, since_ms: int | None = None) -> list[Any]:
        body: dict[str, Any] = ({"type": "userFills", "user": address} if since_ms is None else
                                {"type": "userFillsByTime", "user": address, "startTime": since_ms})
        rows = await self.post(body, what=what, timeout=timeout)
        return rows if isinstance(rows, list) else []


INFO_MAX_BODY_BYTES = 8 * 1_048_576
"""An account's fills can be large (thousands of rows); past this an answer is refused."""
