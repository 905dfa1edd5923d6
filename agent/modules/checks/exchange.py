"""Check: the trading account, read directly from the exchange.

Independent of the bot: it works when the bot is dead, hung or wrong, which is the point (the
bot's own /metrics say what the bot *believes*; this says what the exchange *holds*). One
``metric`` per check; every metric's facts are listed in :attr:`ExchangeCheck.facts`. Reads go
through Hyperliquid's ``/info`` without the SDK (:class:`agent.modules._hyperliquid.InfoReader`);
the ``auth`` metric signs, so its probe runs in a child process that loads the SDK.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from agent.core.values import Lookback
from agent.exposition import read_samples
from agent.http import RequestFailed, get_ok, parse_json, safe_url
from agent.modules import _hyperliquid as hl
from agent.modules.base import CheckModule, CheckResult, Params, RunContext
from botwarden.errors import ModuleError

ExchangeMetric = Literal["equity", "pnl", "positions", "orders", "margin_usage", "api_latency", "auth",
                         "rate_limit", "equity_drift", "last_fill_age"]

DEFAULT_VALUE = {
    "equity": "account_value", "pnl": "pnl_daily_percent", "positions": "count", "orders": "count",
    "margin_usage": "margin_usage_percent", "api_latency": "latency_ms", "auth": "auth_ok",
    "rate_limit": "headroom_percent", "equity_drift": "drift_percent", "last_fill_age": "last_fill_age_s",
}


class ExchangeCheckParams(Params):
    metric: ExchangeMetric = Field(
        description="what to measure: equity, pnl, positions, orders, margin_usage, api_latency, auth, "
                    "rate_limit, equity_drift or last_fill_age (facts of each: see the facts list)")
    url: str | None = Field(None, description="exchange API base URL; default: the host's exchange.url")
    account_address: str | None = Field(
        None, description="account to read when the key is an API wallet acting for another address; "
                          "default: the signing key's own address")
    window: Lookback = Field(3600.0, description="pnl: how far back realized losses are looked at (1h, 24h)")
    bot_url: str | None = Field(
        None, description="the bot's base URL for equity_drift (/metrics) and last_fill_age (/health); "
                          "default: the host's bot.url")


class ExchangeCheck(CheckModule):
    """Reads the account through the cached SDK client (see :mod:`agent.modules._hyperliquid`)."""

    name: ClassVar[str] = "exchange"
    Params: ClassVar[type[ExchangeCheckParams]] = ExchangeCheckParams
    description: ClassVar[str] = ("The trading account read directly from the exchange: equity, P&L, "
                                  "positions, orders, margin, latency, credentials, rate limit, drift, fills")
    default_value: ClassVar[str | None] = "value"
    facts: ClassVar[dict[str, str]] = {
        "value": "the metric's main fact (account_value, pnl_daily_percent, count, margin_usage_percent, "
                 "latency_ms, auth_ok, headroom_percent, drift_percent or last_fill_age_s)",
        "address": "the account read (never the key)",
        "account_value": "equity, pnl, positions, margin_usage, equity_drift: account value in USD",
        "withdrawable": "equity: USD free to withdraw",
        "margin_used": "equity, margin_usage: margin in use, USD",
        "total_notional": "equity: sum of position notionals, USD",
        "unrealized_pnl": "pnl: unrealized P&L of the open positions, USD",
        "realized_pnl_today": "pnl: closed P&L minus fees of today's fills (UTC day), USD",
        "pnl_today": "pnl: realized_pnl_today + unrealized_pnl, USD",
        "pnl_daily_percent": "pnl: pnl_today as % of (account_value - pnl_today); positions held overnight "
                             "count their whole unrealized P&L",
        "largest_realized_loss": "pnl: the largest loss (positive USD) realized by one order within window",
        "largest_realized_loss_percent": "pnl: largest_realized_loss as % of account_value",
        "count": "positions: open positions; orders: resting orders",
        "positions": "positions: [{coin, side, size, entry_px, notional, unrealized_pnl, percent_of_balance, "
                     "age_s}]",
        "largest_percent": "positions: largest position notional as % of account value (0 when flat)",
        "oldest_age_s": "positions: seconds since the oldest position was opened (from fills; 0 when flat)",
        "orders": "orders: [{coin, side, size, price, oid, reduce_only, trigger_px, order_type}]",
        "margin_usage_percent": "margin_usage: margin used as % of account value",
        "maintenance_margin": "margin_usage: maintenance margin, USD",
        "latency_ms": "api_latency, auth: milliseconds of the request",
        "auth_ok": "auth: true when a signed no-op (cancel of order id 0) was accepted, false when the "
                   "exchange refused the signer",
        "auth_error": "auth: the exchange's refusal text, else None",
        "refused": "auth: None when accepted; 'api_wallet' when the signer is an API wallet the exchange no longer "
                   "lists as an agent of the account (revoked, expired, pruned) while the account is still a user: "
                   "approve a new API wallet, the account is fine; 'account' otherwise (the account's own key "
                   "refused, an unknown account, or an approved key refused anyway)",
        "signer": "auth: the address that signed (the API wallet's, or the account's own; never the key)",
        "api_wallet": "auth: whether the signer is an API wallet acting for the account",
        "signer_role": "auth: on a refusal, what the exchange's userRole says of the signer (missing, user, "
                       "agent of 0x...), else None",
        "protection": "auth: on a refusal, each open position and whether a resting stop-loss covers it "
                      "(read without signing), else None",
        "requests_used": "rate_limit: address-based requests used (userRateLimit)",
        "requests_cap": "rate_limit: address-based request cap",
        "headroom": "rate_limit: requests_cap - requests_used",
        "headroom_percent": "rate_limit: headroom as % of requests_cap",
        "cum_volume": "rate_limit: cumulative traded volume, USD",
        "exchange_equity": "equity_drift: account value on the exchange, USD",
        "bot_equity": "equity_drift: trading_equity_usd from the bot's /metrics",
        "drift_usd": "equity_drift: absolute difference of exchange_equity and bot_equity, USD",
        "drift_percent": "equity_drift: drift_usd as % of exchange_equity",
        "last_fill_age_s": "last_fill_age: seconds since the account's last fill, None when it never traded",
        "has_fills": "last_fill_age: whether the account has any fill",
        "bot_status": "last_fill_age: the bot's /health status (healthy, degraded, halted) or 'unreachable'",
    }

    async def run(self, params: ExchangeCheckParams, ctx: RunContext) -> CheckResult:
        target = await ctx.run_blocking(hl.resolve_target, ctx, params.url, params.account_address)
        timeout = ctx.timeout
        facts: dict[str, Any] = {"address": target.address}
        if params.metric == "auth":
            facts.update(await _auth(target, timeout))
        else:
            reader = _READERS[params.metric]
            facts.update(await reader(hl.InfoReader(target.url), target, params, ctx, timeout))
        value = facts.get(DEFAULT_VALUE[params.metric])
        facts["value"] = value
        return CheckResult(facts=facts, value=value, summary=_summary(params.metric, facts))


# --- one reader per metric ---------------------------------------------------------------------
async def _api_latency(info: hl.InfoReader, target: hl.Target, params: ExchangeCheckParams, ctx: RunContext,
                       timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    # exchangeStatus: one of the cheapest /info requests (weight 2), no account data.
    await info.post({"type": "exchangeStatus"}, what="api_latency", timeout=timeout)
    return {"latency_ms": round((time.perf_counter() - started) * 1000.0, 3)}


async def _equity(info: hl.InfoReader, target: hl.Target, params: ExchangeCheckParams, ctx: RunContext,
                  timeout: float) -> dict[str, Any]:
    acct = await info.user_state(target.address, what="equity", timeout=timeout)
    return {"account_value": acct.account_value, "withdrawable": acct.withdrawable,
            "margin_used": acct.margin_used, "total_notional": acct.total_notional}


async def _margin(info: hl.InfoReader, target: hl.Target, params: ExchangeCheckParams, ctx: RunContext,
                  timeout: float) -> dict[str, Any]:
    acct = await info.user_state(target.address, what="margin_usage", timeout=timeout)
    pct = acct.margin_used / acct.account_value * 100.0 if acct.account_value > 0 else 0.0
    return {"account_value": acct.account_value, "margin_used": acct.margin_used,
            "maintenance_margin": acct.maintenance_margin, "margin_usage_percent": round(pct, 4)}


async def _pnl(info: hl.InfoReader, target: hl.Target, params: ExchangeCheckParams, ctx: RunContext,
               timeout: float) -> dict[str, Any]:
    now_ms = int(time.time() * 1000)
    day_start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    since_ms = min(int(day_start.timestamp() * 1000), now_ms - int(params.window * 1000))

    acct, fills = await asyncio.gather(info.user_state(target.address, what="pnl", timeout=timeout),
                                       info.fills(target.address, what="pnl", timeout=timeout, since_ms=since_ms))
    day_ms = int(day_start.timestamp() * 1000)
    window_ms = now_ms - int(params.window * 1000)
    realized_today = sum(_f(f.get("closedPnl")) - _f(f.get("fee")) for f in fills if int(f["time"]) >= day_ms)
    per_order: dict[Any, float] = defaultdict(float)
    for f in fills:
        if int(f["time"]) >= window_ms:
            per_order[f.get("oid")] += _f(f.get("closedPnl")) - _f(f.get("fee"))
    largest_loss = max([0.0, *(-v for v in per_order.values())])
    unrealized = sum(p.unrealized_pnl for p in acct.positions)
    pnl_today = realized_today + unrealized
    start_equity = acct.account_value - pnl_today
    return {
        "account_value": acct.account_value, "unrealized_pnl": round(unrealized, 6),
        "realized_pnl_today": round(realized_today, 6), "pnl_today": round(pnl_today, 6),
        "pnl_daily_percent": round(pnl_today / start_equity * 100.0, 6) if start_equity > 0 else 0.0,
        "largest_realized_loss": round(largest_loss, 6),
        "largest_realized_loss_percent": round(largest_loss / acct.account_value * 100.0, 4)
        if acct.account_value > 0 else 0.0,
    }


async def _positions(info: hl.InfoReader, target: hl.Target, params: ExchangeCheckParams, ctx: RunContext,
                     timeout: float) -> dict[str, Any]:
    acct = await info.user_state(target.address, what="positions", timeout=timeout)
    fills = await info.fills(target.address, what="positions", timeout=timeout) if acct.positions else []
    now_ms = int(time.time() * 1000)
    rows = []
    for p in acct.positions:
        opened = position_opened_ms(p, fills)
        pct = abs(p.notional) / acct.account_value * 100.0 if acct.account_value > 0 else 0.0
        rows.append({**p.as_fact(), "percent_of_balance": round(pct, 4),
                     "age_s": round((now_ms - opened) / 1000.0, 3) if opened is not None else None})
    return {"account_value": acct.account_value, "count": len(rows), "positions": rows,
            "largest_percent": max([0.0, *(r["percent_of_balance"] for r in rows)]),
            "oldest_age_s": max([0.0, *(r["age_s"] or 0.0 for r in rows)])}


def position_opened_ms(position: hl.Position, fills: list[dict[str, Any]]) -> int | None:
    """When ``position`` was opened: the time of the latest fill of its coin that started from
    flat (or from the other side). None when no fill says (older than the fills the exchange
    returns): then the oldest fill of the coin is the best lower bound."""
    own = sorted((f for f in fills if f.get("coin") == position.coin), key=lambda f: int(f["time"]), reverse=True)
    for f in own:
        start = _f(f.get("startPosition"))
        if abs(start) < 1e-12 or (start > 0) != (position.size > 0):
            return int(f["time"])
    return int(own[-1]["time"]) if own else None


async def _orders(info: hl.InfoReader, target: hl.Target, params: ExchangeCheckParams, ctx: RunContext,
                  timeout: float) -> dict[str, Any]:
    orders = await info.open_orders(target.address, what="orders", timeout=timeout)
    return {"count": len(orders), "orders": [o.as_fact() for o in orders]}


async def _auth(target: hl.Target, timeout: float) -> dict[str, Any]:
    """The signed probe, in a child interpreter (:mod:`agent.modules.checks.exchange_auth_probe`):
    the resident agent keeps neither the SDK nor eth_account in memory for it."""
    request = json.dumps({"url": target.url, "key": target.key, "account_address": target.account_address,
                          "timeout": timeout})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.modules.checks.exchange_auth_probe", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        out, _ = await proc.communicate(request.encode())
    except asyncio.CancelledError:  # the check timed out: the child must not outlive it
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    try:
        answer = json.loads(out.decode() or "{}")
    except ValueError:
        answer = {}
    if not isinstance(answer, dict) or ("error" not in answer and "auth_ok" not in answer):
        raise ModuleError(f"auth: the probe process ended without an answer (exit code {proc.returncode})")
    if "error" in answer:
        raise ModuleError(str(answer["error"])[:300])
    return {"auth_ok": bool(answer["auth_ok"]), "auth_error": answer.get("auth_error"),
            "refused": answer.get("refused"), "signer": answer.get("signer"),
            "api_wallet": bool(answer.get("api_wallet")), "signer_role": answer.get("signer_role"),
            "protection": answer.get("protection"), "latency_ms": answer.get("latency_ms")}


async def _rate_limit(info: hl.InfoReader, target: hl.Target, params: ExchangeCheckParams, ctx: RunContext,
                      timeout: float) -> dict[str, Any]:
    raw = await info.post({"type": "userRateLimit", "user": target.address}, what="rate_limit", timeout=timeout)
    if not isinstance(raw, dict):
        raise ModuleError(f"rate_limit: unexpected answer from exchange {target.url}")
    used, cap = int(raw.get("nRequestsUsed", 0)), int(raw.get("nRequestsCap", 0))
    headroom = cap - used
    return {"requests_used": used, "requests_cap": cap, "headroom": headroom,
            "headroom_percent": round(headroom / cap * 100.0, 4) if cap > 0 else 0.0,
            "cum_volume": _f(raw.get("cumVlm"))}


async def _equity_drift(info: hl.InfoReader, target: hl.Target, params: ExchangeCheckParams, ctx: RunContext,
                        timeout: float) -> dict[str, Any]:
    acct = await info.user_state(target.address, what="equity_drift", timeout=timeout)
    url = f"{_bot_url(params, ctx)}/metrics"
    text = await _bot_get(url, timeout)  # capped by the transport
    try:
        samples = await read_samples(text, ("trading_equity_usd",))  # parsed off the event loop
    except (ValueError, IndexError, KeyError) as exc:
        raise ModuleError(f"{safe_url(url)} is not Prometheus exposition text: {exc}") from None
    if not samples:
        raise ModuleError(f"trading_equity_usd not found at {safe_url(url)}")
    bot_equity = samples[-1].value
    if math.isnan(bot_equity):
        raise ModuleError("the bot does not know its equity yet (trading_equity_usd is NaN: not connected)")
    drift = abs(acct.account_value - bot_equity)
    pct = drift / acct.account_value * 100.0 if acct.account_value > 0 else 0.0
    return {"account_value": acct.account_value, "exchange_equity": acct.account_value, "bot_equity": bot_equity,
            "drift_usd": round(drift, 6), "drift_percent": round(pct, 4)}


async def _last_fill_age(info: hl.InfoReader, target: hl.Target, params: ExchangeCheckParams,
                         ctx: RunContext, timeout: float) -> dict[str, Any]:
    fills = await info.fills(target.address, what="last_fill_age", timeout=timeout)
    last = max((int(f["time"]) for f in fills), default=None)
    age = None if last is None else round(max(0.0, time.time() - last / 1000.0), 3)
    bot_status = "unreachable"
    try:
        bot_status = str(parse_json(await _bot_get(f"{_bot_url(params, ctx)}/health", timeout)).get("status"))
    except (ModuleError, ValueError, AttributeError):
        pass  # "unreachable": the bot-health play alerts on that; here it only qualifies the age
    return {"last_fill_age_s": age, "has_fills": last is not None, "bot_status": bot_status}


def _bot_url(params: ExchangeCheckParams, ctx: RunContext) -> str:
    bot = ctx.host.vars.get("bot") or {}
    url = params.bot_url or (bot.get("url") if isinstance(bot, dict) else None)
    if not url:
        raise ModuleError("no bot URL: give bot_url or define bot.url for the host")
    return str(url).rstrip("/")


async def _bot_get(url: str, timeout: float) -> str:
    try:
        return (await get_ok(url, timeout=timeout)).text
    except RequestFailed as exc:
        raise ModuleError(str(exc)) from None


_READERS = {"api_latency": _api_latency, "equity": _equity, "pnl": _pnl, "positions": _positions, "orders": _orders,
            "margin_usage": _margin, "rate_limit": _rate_limit, "equity_drift": _equity_drift,
            "last_fill_age": _last_fill_age}


def _f(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _auth_summary(facts: dict[str, Any]) -> str:
    """What an operator reads in the alert: a lapsed API wallet is not a compromised account."""
    if facts["auth_ok"]:
        return "credentials accepted"
    positions = facts.get("protection") or "positions not read"
    if facts.get("refused") == "api_wallet":
        said = str(facts["auth_error"]).rstrip(". ")
        return (f"API wallet {facts.get('signer')} (the key this check signs with: the agent's own, which its "
                f"exchange actions and the emergency's close use) is no longer approved for account "
                f"{facts['address']} (revoked, expired or pruned; userRole: {facts.get('signer_role')}); the "
                f"exchange says: {said}. The account and its key are fine, so this alert starts no emergency "
                f"response of its own (by itself it halts, closes and stops nothing; an emergency or a halt "
                f"under way for another cause goes on and reports in its own messages): approve a new API wallet from the account (approveAgent; paper: `bot drill approve "
                f"agent`) and give its key to the agent. Until then the agent cannot cancel, close or place "
                f"stops (`agent run-playbook emergency` would halt the bot but not flatten: close from the "
                f"exchange's app if you must); what protects the positions meanwhile is what rests on the "
                f"exchange: {positions}")
    return f"credentials REFUSED: {facts['auth_error']} (positions: {positions})"


def _summary(metric: str, facts: dict[str, Any]) -> str:
    v = facts.get("value")
    if metric == "auth":
        return _auth_summary(facts)
    if metric == "positions":
        return f"{facts['count']} position(s), largest {facts['largest_percent']:.1f}% of balance, " \
               f"oldest {facts['oldest_age_s']:.0f}s"
    if metric == "orders":
        return f"{facts['count']} resting order(s)"
    if metric == "last_fill_age":
        return "no fill yet" if v is None else f"last fill {v:.0f}s ago (bot {facts['bot_status']})"
    if metric == "equity_drift":
        return f"exchange {facts['exchange_equity']:.2f} vs bot {facts['bot_equity']:.2f} USD ({v:.3f}%)"
    return f"{metric} = {v}"
