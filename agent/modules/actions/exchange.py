"""Action: cancel every order, close every position, or arm the dead-man's switch, directly on
the exchange through the SDK. Needs nothing from the bot: the emergency playbook uses it when
the bot is dead or hung.

Every run reads the account first and decides what it would touch; check mode stops there and
lists the exact orders (coin, side, size, price, oid) and positions. After acting it reads the
account again, so ``result.open_orders`` / ``result.open_positions`` are what the exchange holds
*now* (``until: "result.open_positions == 0"`` retries a partial close). In check mode they are
what the account would hold after the action.
"""
from __future__ import annotations

import time
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from agent.core.values import Duration
from agent.modules import _hyperliquid as hl
from agent.modules.base import ActionModule, ActionResult, Params, RunContext

ExchangeVerb = Literal["cancel_all", "close_all", "schedule_cancel"]
MIN_SCHEDULE_CANCEL_S = 5.0  # Hyperliquid: the time must be at least 5 seconds in the future


class ExchangeActionParams(Params):
    action: ExchangeVerb = Field(
        description="cancel_all: every resting order in one bulk cancel; close_all: a reduce-only IOC "
                    "market order per position, in one bulk request; schedule_cancel: the exchange cancels "
                    "every order at now + after unless re-armed (dead-man's switch)")
    url: str | None = Field(None, description="exchange API base URL; default: the host's exchange.url")
    account_address: str | None = Field(
        None, description="account to act on when the key is an API wallet for another address; default: "
                          "the signing key's own address")
    coins: list[str] | None = Field(None, description="only these coins (default: every coin of the account)")
    slippage_pct: float = Field(
        5.0, gt=0, lt=50, description="close_all: limit price this far through the mid, %, so the IOC fills")
    after: Duration | None = Field(
        None, description="schedule_cancel: cancel everything this long from now (>= 5s); unset clears a "
                          "scheduled cancel")

    @model_validator(mode="after")
    def _after_only_for_schedule(self) -> ExchangeActionParams:
        if self.after is not None and self.action != "schedule_cancel":
            raise ValueError("after is only for action schedule_cancel")
        if self.after is not None and self.after < MIN_SCHEDULE_CANCEL_S:
            raise ValueError(f"after must be at least {MIN_SCHEDULE_CANCEL_S:g}s (the exchange's minimum)")
        return self


class ExchangeAction(ActionModule):
    """See the module docstring."""

    name: ClassVar[str] = "exchange"
    Params: ClassVar[type[ExchangeActionParams]] = ExchangeActionParams
    description: ClassVar[str] = ("Directly on the exchange (SDK): cancel all orders, close all positions "
                                  "reduce-only, schedule a cancel-all (dead-man's switch)")
    supports_check_mode: ClassVar[bool] = True
    destructive: ClassVar[bool] = True

    async def run(self, params: ExchangeActionParams, ctx: RunContext) -> ActionResult:
        target = hl.resolve_target(ctx, params.url, params.account_address)
        timeout = ctx.timeout
        client = await hl.call(lambda: hl.client_for(target, timeout), what="connect", url=target.url,
                               timeout=timeout)
        if params.action == "cancel_all":
            return await _cancel_all(client, target, params, ctx)
        if params.action == "close_all":
            return await _close_all(client, target, params, ctx)
        return await _schedule_cancel(client, target, params, ctx)


async def _state(client: hl.ExchangeClient, target: hl.Target, timeout: float,
                 what: str) -> tuple[hl.AccountSnapshot, list[hl.OpenOrder]]:
    def read() -> tuple[hl.AccountSnapshot, list[hl.OpenOrder]]:
        return hl.read_account(client, target.address), hl.read_orders(client, target.address)

    return await hl.call(read, what=what, url=target.url, timeout=timeout)


def _wanted(coin: str, params: ExchangeActionParams) -> bool:
    return params.coins is None or coin in params.coins


def _listing(items: list[Any]) -> str:
    return "; ".join(i.describe() for i in items)


async def _cancel_all(client: hl.ExchangeClient, target: hl.Target, params: ExchangeActionParams,
                      ctx: RunContext) -> ActionResult:
    acct, orders = await _state(client, target, ctx.timeout, "cancel_all")
    todo = [o for o in orders if _wanted(o.coin, params)]
    data: dict[str, Any] = {"address": target.address, "orders": [o.as_fact() for o in todo],
                            "cancelled": [], "errors": []}
    if not todo:
        data.update(open_orders=len(orders), open_positions=len(acct.positions))
        return ActionResult(changed=False, msg="no open orders", data=data)
    if ctx.check_mode:
        data.update(open_orders=len(orders) - len(todo), open_positions=len(acct.positions))
        return ActionResult(changed=True, msg=f"would cancel {len(todo)} order(s): {_listing(todo)}", data=data)

    # ONE signed request for every order: the fewest requests under the rate limit and the
    # shortest window in which some orders are cancelled and others not.
    requests_ = [{"coin": o.coin, "oid": o.oid} for o in todo]
    resp = await hl.call(lambda: client.exchange.bulk_cancel(requests_), what="cancel_all", url=target.url,
                         timeout=ctx.timeout)
    error = hl.response_error(resp)
    after_acct, after_orders = await _state(client, target, ctx.timeout, "cancel_all (verify)")
    data.update(open_orders=len(after_orders), open_positions=len(after_acct.positions))
    if error is not None:
        return ActionResult(changed=False, failed=True, msg=f"the exchange refused the bulk cancel: {error}",
                            data=data)
    for order, status in zip(todo, hl.statuses(resp)):
        if status == "success":
            data["cancelled"].append(order.oid)
        else:  # typically filled or cancelled meanwhile: no longer resting either way
            data["errors"].append({"oid": order.oid, "error": str(status.get("error") if isinstance(status, dict)
                                                                  else status)})
    remaining = [o for o in after_orders if _wanted(o.coin, params)]
    msg = f"cancelled {len(data['cancelled'])} of {len(todo)} order(s)"
    if data["errors"]:
        msg += f"; {len(data['errors'])} were no longer cancellable"
    if remaining:
        return ActionResult(changed=True, failed=True, data=data,
                            msg=f"{msg}; still resting: {_listing(remaining)}")
    return ActionResult(changed=bool(data["cancelled"]), msg=msg, data=data)


async def _close_all(client: hl.ExchangeClient, target: hl.Target, params: ExchangeActionParams,
                     ctx: RunContext) -> ActionResult:
    acct, orders = await _state(client, target, ctx.timeout, "close_all")
    todo = [p for p in acct.positions if _wanted(p.coin, params)]
    data: dict[str, Any] = {"address": target.address, "positions": [p.as_fact() for p in todo],
                            "closed": [], "errors": []}
    if not todo:
        data.update(open_positions=len(acct.positions), open_orders=len(orders))
        return ActionResult(changed=False, msg="no open positions", data=data)
    mids = await hl.call(lambda: client.info.all_mids(), what="close_all (mids)", url=target.url,
                         timeout=ctx.timeout)
    closes = []
    for p in todo:
        is_buy = p.size < 0
        mid = float(mids.get(p.coin) or p.entry_px)
        px = _round_price(mid * (1 + params.slippage_pct / 100.0 if is_buy else 1 - params.slippage_pct / 100.0),
                          client.sz_decimals(p.coin))
        closes.append({"coin": p.coin, "is_buy": is_buy, "sz": abs(p.size), "limit_px": px,
                       "order_type": {"limit": {"tif": "Ioc"}}, "reduce_only": True})
    data["orders"] = [{"coin": c["coin"], "side": "buy" if c["is_buy"] else "sell", "size": c["sz"],
                       "price": c["limit_px"], "reduce_only": True, "tif": "Ioc"} for c in closes]
    if ctx.check_mode:
        data.update(open_positions=len(acct.positions) - len(todo), open_orders=len(orders))
        plan = "; ".join(f"{p.describe()} -> reduce-only IOC {o['side']} {o['size']:g} limit {o['price']:g}"
                         for p, o in zip(todo, data["orders"]))
        return ActionResult(changed=True, msg=f"would close {len(todo)} position(s): {plan}", data=data)

    resp = await hl.call(lambda: client.exchange.bulk_orders(closes), what="close_all", url=target.url,
                         timeout=ctx.timeout)
    error = hl.response_error(resp)
    after, after_orders = await _state(client, target, ctx.timeout, "close_all (verify)")
    data.update(open_positions=len(after.positions), open_orders=len(after_orders))
    if error is not None:
        return ActionResult(changed=False, failed=True, msg=f"the exchange refused the close orders: {error}",
                            data=data)
    for p, status in zip(todo, hl.statuses(resp)):
        if isinstance(status, dict) and "filled" in status:
            data["closed"].append(p.coin)
        else:
            data["errors"].append({"coin": p.coin, "error": str(status.get("error") if isinstance(status, dict)
                                                                else status)})
    remaining = [p for p in after.positions if _wanted(p.coin, params)]
    msg = f"closed {len(todo) - len(remaining)} of {len(todo)} position(s)"
    if remaining:
        why = "; ".join(f"{e['coin']}: {e['error']}" for e in data["errors"])
        return ActionResult(changed=bool(data["closed"]), failed=True, data=data,
                            msg=f"{msg}; still open: {_listing(remaining)}" + (f" ({why})" if why else ""))
    return ActionResult(changed=True, msg=msg, data=data)


async def _schedule_cancel(client: hl.ExchangeClient, target: hl.Target, params: ExchangeActionParams,
                           ctx: RunContext) -> ActionResult:
    acct, orders = await _state(client, target, ctx.timeout, "schedule_cancel")
    at_ms = None if params.after is None else int((time.time() + params.after) * 1000)
    data: dict[str, Any] = {"address": target.address, "time_ms": at_ms, "eligible": None,
                            "open_orders": len(orders), "open_positions": len(acct.positions)}
    what = "clear the scheduled cancel" if at_ms is None else \
        f"schedule a cancel of all {len(orders)} order(s) in {params.after:g}s"
    if ctx.check_mode:
        return ActionResult(changed=True, msg=f"would {what} (the exchange decides whether the account is "
                                              "eligible)", data=data)
    resp = await hl.call(lambda: client.exchange.schedule_cancel(at_ms), what="schedule_cancel", url=target.url,
                         timeout=ctx.timeout)
    error = hl.response_error(resp)
    if error is None:
        data["eligible"] = True
        return ActionResult(changed=True, msg=what.replace("schedule a", "scheduled a").replace(
            "clear the", "cleared the"), data=data)
    if "volume" in error.lower() or "too many scheduled" in error.lower():
        # Not an error of the play: the account cannot use the switch (yet, or today).
        data["eligible"] = False
        return ActionResult(skipped=True, msg=f"account not eligible for a scheduled cancel: {error}", data=data)
    return ActionResult(failed=True, msg=f"the exchange refused the scheduled cancel: {error}", data=data)


def _round_price(px: float, sz_decimals: int) -> float:
    """Hyperliquid's perp price rule: 5 significant figures, at most 6 - szDecimals decimals."""
    return round(float(f"{px:.5g}"), max(6 - sz_decimals, 0))
