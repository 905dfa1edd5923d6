"""Action: flatten the account, cancel orders, close positions, protect them, or arm the
dead-man's switch, directly on the exchange through the SDK. Needs nothing from the bot: the
emergency playbook uses it when the bot is dead or hung.

No verb ever leaves an open position without its stop: a cancel never takes a reduce-only
order that protects an open position (unless ``keep_protective: false`` says so), and
``flatten`` closes first, cancels only what can add exposure, and if a position is still open
after its attempts, puts a reduce-only stop back (see :mod:`._account_protection`).

Every run reads the account first and decides what it would touch; check mode stops there and
lists the exact orders (coin, side, size, price, oid) and positions. After acting it reads the
account again, so ``result.open_orders`` / ``result.open_positions`` are what the exchange holds
*now* (``until: "result.open_positions == 0"`` retries a partial close). In check mode they are
what the account would hold after the action.
"""
from __future__ import annotations

import time
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from agent.core.values import DAY, Between, ParamProblem, Pause
from agent.modules import _hyperliquid as hl
from agent.modules.actions import _account_protection as guard
from agent.modules.base import ActionModule, ActionResult, Params, RunContext

ExchangeVerb = Literal["flatten", "cancel_all", "close_all", "protect", "schedule_cancel"]
MIN_SCHEDULE_CANCEL_S = 5.0  # Hyperliquid: the time must be at least 5 seconds in the future
DEFAULT_STOP_LOSS_PCT = 2.0


class ExchangeActionParams(Params):
    action: ExchangeVerb = Field(
        description="flatten: close every position (reduce-only IOC), cancel what can add exposure, repeat up to "
                    "`attempts` times, then put a reduce-only stop on any position still open (the emergency's "
                    "order); cancel_all: every resting order in one bulk cancel, except the reduce-only orders "
                    "protecting an open position; close_all: a reduce-only IOC market order per position, in one "
                    "bulk request; protect: a reduce-only stop for every open position without one; "
                    "schedule_cancel: the exchange cancels every order at now + after unless re-armed "
                    "(dead-man's switch)")
    url: str | None = Field(None, description="exchange API base URL; default: the host's exchange.url")
    account_address: str | None = Field(
        None, description="account to act on when the key is an API wallet for another address; default: "
                          "the signing key's own address")
    coins: list[str] | None = Field(None, description="only these coins (default: every coin of the account)")
    slippage_pct: float = Field(
        5.0, gt=0, lt=50, description="close_all, flatten, protect: limit price this far through the mid (closes) "
                                      "or the trigger (stops), %, so the order fills")
    after: Annotated[float, Between(0.0, DAY)] | None = Field(
        None, description="schedule_cancel: cancel everything this long from now (>= 5s); unset clears a "
                          "scheduled cancel")
    keep_protective: bool = Field(
        True, description="cancel_all: keep the reduce-only orders of open positions (their stop-losses); false "
                          "cancels them too and leaves those positions unprotected")
    attempts: int = Field(5, ge=1, le=20, description="flatten: close-and-cancel rounds before protecting what "
                                                     "is left")
    delay: Pause = Field(2.0, description="flatten: pause between rounds")
    stop_loss_pct: float | None = Field(
        None, gt=0, lt=100, description="flatten, protect: distance of a protective stop from the mid, %; default: "
                                        f"the host's bot.risk.stop_loss_pct, else {DEFAULT_STOP_LOSS_PCT:g}")

    @model_validator(mode="after")
    def _after_only_for_schedule(self) -> ExchangeActionParams:
        if self.after is not None and self.action != "schedule_cancel":
            raise ParamProblem("after is only for action schedule_cancel", "after")
        if self.after is not None and self.after < MIN_SCHEDULE_CANCEL_S:
            raise ParamProblem(f"after must be at least {MIN_SCHEDULE_CANCEL_S:g}s (the exchange's minimum)", "after")
        return self


class ExchangeAction(ActionModule):
    """See the module docstring."""

    name: ClassVar[str] = "exchange"
    Params: ClassVar[type[ExchangeActionParams]] = ExchangeActionParams
    description: ClassVar[str] = ("Directly on the exchange (SDK): flatten the account (close first, keep or "
                                  "re-place stops), cancel orders, close positions reduce-only, protect positions "
                                  "with stops, schedule a cancel-all (dead-man's switch)")
    supports_check_mode: ClassVar[bool] = True
    destructive: ClassVar[bool] = True

    async def run(self, params: ExchangeActionParams, ctx: RunContext) -> ActionResult:
        target = await ctx.run_blocking(hl.resolve_target, ctx, params.url, params.account_address)
        if params.action in ("flatten", "protect") and not ctx.check_mode:
            return await _flatten(target, params, ctx)
        timeout = ctx.timeout
        client = await hl.call(lambda: hl.client_for(target, timeout), what="connect", url=target.url,
                               timeout=timeout)
        if params.action in ("flatten", "protect"):
            return await _preview_flatten(client, target, params, ctx)
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
    positions = {p.coin: p for p in acct.positions}
    mine = [o for o in orders if _wanted(o.coin, params)]
    todo = mine if not params.keep_protective else guard.to_cancel(mine, positions)
    kept = [o for o in mine if o not in todo]
    data: dict[str, Any] = {"address": target.address, "orders": [o.as_fact() for o in todo],
                            "kept": [o.as_fact() for o in kept], "cancelled": [], "errors": []}
    kept_note = f"; kept {len(kept)} protecting open positions: {_listing(kept)}" if kept else ""
    if not todo:
        data.update(open_orders=len(orders), open_positions=len(acct.positions))
        still = (f"; {len(acct.positions)} position(s) still open: {_listing(list(acct.positions))}"
                 if acct.positions else "")
        return ActionResult(changed=False, msg=f"no open orders to cancel{kept_note}{still}", data=data)
    if ctx.check_mode:
        data.update(open_orders=len(orders) - len(todo), open_positions=len(acct.positions))
        return ActionResult(changed=True, msg=f"would cancel {len(todo)} order(s): {_listing(todo)}{kept_note}",
                            data=data)

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
    for order, status in zip(todo, hl.statuses(resp), strict=False):
        if status == "success":
            data["cancelled"].append(order.oid)
        else:  # typically filled or cancelled meanwhile: no longer resting either way
            data["errors"].append({"oid": order.oid, "error": str(status.get("error") if isinstance(status, dict)
                                                                  else status)})
    todo_oids = {o.oid for o in todo}
    remaining = [o for o in after_orders if o.oid in todo_oids]
    msg = f"cancelled {len(data['cancelled'])} of {len(todo)} order(s)"
    if data["errors"]:
        msg += f"; {len(data['errors'])} were no longer cancellable"
    if remaining:
        return ActionResult(changed=True, failed=True, data=data,
                            msg=f"{msg}; still resting: {_listing(remaining)}{kept_note}")
    return ActionResult(changed=bool(data["cancelled"]), msg=msg + kept_note, data=data)


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
        px = guard.round_price(mid * (1 + params.slippage_pct / 100.0 if is_buy else 1 - params.slippage_pct / 100.0),
                               client.sz_decimals(p.coin))
        closes.append({"coin": p.coin, "is_buy": is_buy, "sz": abs(p.size), "limit_px": px,
                       "order_type": {"limit": {"tif": "Ioc"}}, "reduce_only": True})
    data["orders"] = [{"coin": c["coin"], "side": "buy" if c["is_buy"] else "sell", "size": c["sz"],
                       "price": c["limit_px"], "reduce_only": True, "tif": "Ioc"} for c in closes]
    if ctx.check_mode:
        data.update(open_positions=len(acct.positions) - len(todo), open_orders=len(orders))
        plan = "; ".join(f"{p.describe()} -> reduce-only IOC {o['side']} {o['size']:g} limit {o['price']:g}"
                         for p, o in zip(todo, data["orders"], strict=True))
        return ActionResult(changed=True, msg=f"would close {len(todo)} position(s): {plan}", data=data)

    resp = await hl.call(lambda: client.exchange.bulk_orders(closes), what="close_all", url=target.url,
                         timeout=ctx.timeout)
    error = hl.response_error(resp)
    after, after_orders = await _state(client, target, ctx.timeout, "close_all (verify)")
    data.update(open_positions=len(after.positions), open_orders=len(after_orders))
    if error is not None:
        return ActionResult(changed=False, failed=True, msg=f"the exchange refused the close orders: {error}",
                            data=data)
    for p, status in zip(todo, hl.statuses(resp), strict=False):
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


def _stop_pct(params: ExchangeActionParams, ctx: RunContext) -> float:
    if params.stop_loss_pct is not None:
        return params.stop_loss_pct
    bot = ctx.host.vars.get("bot")
    risk = bot.get("risk") if isinstance(bot, dict) else None
    try:
        return float(risk["stop_loss_pct"]) if isinstance(risk, dict) else DEFAULT_STOP_LOSS_PCT
    except (KeyError, TypeError, ValueError):
        return DEFAULT_STOP_LOSS_PCT


async def _preview_flatten(client: hl.ExchangeClient, target: hl.Target, params: ExchangeActionParams,
                           ctx: RunContext) -> ActionResult:
    acct, orders = await _state(client, target, ctx.timeout, params.action)
    positions = {p.coin: p for p in acct.positions}
    mine = [p for p in acct.positions if _wanted(p.coin, params)]
    facts = guard.position_facts(mine, orders)
    bare = [p for p, f in zip(mine, facts, strict=True) if not f["protected"]]
    data: dict[str, Any] = {"address": target.address, "positions": facts, "open_orders": len(orders),
                            "open_positions": len(acct.positions), "unprotected": [p.coin for p in bare]}
    stop = f"a reduce-only stop {_stop_pct(params, ctx):g}% beyond the mid"
    if params.action == "protect":
        if not bare:
            return ActionResult(changed=False, data=data, msg=f"every open position has a stop ({len(mine)})")
        return ActionResult(changed=True, data=data, msg=f"would place {stop} for: {_listing(bare)}")
    cancel = guard.to_cancel([o for o in orders if _wanted(o.coin, params)], positions)
    keep = [o for o in orders if _wanted(o.coin, params) and o not in cancel]
    data.update(open_positions=len(acct.positions) - len(mine), open_orders=len(orders) - len(cancel),
                orders=[o.as_fact() for o in cancel], kept=[o.as_fact() for o in keep])
    if not mine and not cancel:
        return ActionResult(changed=False, data=data, msg="flat, no orders to cancel")
    plan = [f"close {len(mine)} position(s) reduce-only: {_listing(mine)}" if mine else "",
            f"cancel {len(cancel)} order(s): {_listing(cancel)}" if cancel else "",
            f"keep {len(keep)} reduce-only order(s) until flat: {_listing(keep)}" if keep else "",
            f"if a position is still open after {params.attempts} attempt(s): keep or place {stop}" if mine else ""]
    return ActionResult(changed=True, data=data, msg="would " + "; ".join(p for p in plan if p))


async def _flatten(target: hl.Target, params: ExchangeActionParams, ctx: RunContext) -> ActionResult:
    """``flatten`` and ``protect`` for real: see :func:`guard.flatten`; never raises on a refused
    request (each failure is in the result), so the stop step always gets its turn."""
    started = time.monotonic()

    async def connect(timeout: float) -> hl.ExchangeClient:
        return await hl.call(lambda: hl.client_for(target, timeout), what="connect", url=target.url,
                             timeout=timeout)

    # Finish inside the task's timeout, which would cancel the run mid-way (stop not placed).
    run = guard.Flattening(target=target, connect=connect, deadline=started + max(1.0, ctx.timeout * 0.95 - 0.5))
    wanted = params.coins.__contains__ if params.coins is not None else (lambda _coin: True)
    stop_pct = _stop_pct(params, ctx)
    if params.action == "protect":
        await guard.ensure_stops(run, stop_pct, params.slippage_pct, wanted)
    else:
        reserve = min(ctx.timeout / 3, 3 * guard.PER_CALL_TIMEOUT_S + 2.0)
        await guard.flatten(run, attempts=params.attempts, delay=params.delay, slippage_pct=params.slippage_pct,
                            stop_pct=stop_pct, reserve=reserve, wanted=wanted)
    return _flatten_result(run, params)


def _flatten_result(run: guard.Flattening, params: ExchangeActionParams) -> ActionResult:
    acct = run.last
    done = [f"closed {', '.join(run.closed)}" if run.closed else "",
            f"cancelled {len(run.cancelled)} order(s)" if run.cancelled else "",
            f"placed {len(run.stops_placed)} stop(s)" if run.stops_placed else ""]
    did = "; ".join(d for d in done if d)
    data: dict[str, Any] = {"address": run.target.address, "closed": run.closed, "cancelled": run.cancelled,
                            "stops_placed": run.stops_placed, "errors": run.errors[-20:], "verified": run.verified}
    changed = bool(run.closed or run.cancelled or run.stops_placed)
    why = f" Errors: {'; '.join(dict.fromkeys(run.errors))[:600]}" if run.errors else ""
    if acct is None:
        data.update(positions=[], open_positions=None, open_orders=None, unprotected=None)
        return ActionResult(failed=True, changed=changed, data=data,
                            msg=f"could not read the account: positions and stops UNKNOWN{'; ' + did if did else ''}."
                                + why)
    mine = [p for p in acct.positions.values() if _wanted(p.coin, params)]
    facts = guard.position_facts(mine, acct.orders)
    bare = [f for f in facts if not f["protected"]]
    data.update(positions=facts, open_positions=len(acct.positions), open_orders=len(acct.orders),
                unprotected=[f["coin"] for f in bare])
    stale = "" if run.verified else " (as last read: the final read failed)"
    if not mine:
        extra = [o for o in acct.orders if _wanted(o.coin, params)]
        msg = f"flat{stale}" + (f": {did}" if did else "") + (f"; {len(extra)} order(s) still resting: "
                                                              f"{_listing(extra)}" if extra else "")
        return ActionResult(changed=changed, failed=bool(extra), data=data, msg=msg + (why if extra else ""))
    listed = "; ".join(_describe_open(f) for f in facts)
    if params.action == "protect":
        head = "every open position has a stop" if not bare else f"{len(bare)} position(s) WITHOUT A STOP"
        return ActionResult(changed=changed, failed=bool(bare), data=data,
                            msg=f"{head}{stale}: {listed}{'; ' + did if did else ''}." + (why if bare else ""))
    head = "POSITION STILL OPEN" if len(mine) == 1 else f"{len(mine)} POSITIONS STILL OPEN"
    return ActionResult(changed=changed, failed=True, data=data,
                        msg=f"{head}{stale}: {listed}{'; ' + did if did else ''}.{why}")


def _describe_open(fact: dict[str, Any]) -> str:
    what = f"{fact['coin']} {fact['side']} {fact['size']:g} @ {fact['entry_px']:g}"
    if fact["protected"]:
        stops = ", ".join(f"trigger {s['trigger_px']:g} (oid {s['oid']})" for s in fact["stops"])
        return f"{what}, protected by a reduce-only stop: {stops}"
    return f"{what}, WITHOUT A STOP"
