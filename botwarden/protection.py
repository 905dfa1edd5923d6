"""When an open position is protected by a stop-loss: the one rule the bot and the agent share.

A position of signed size ``szi`` (long > 0, short < 0) is *protected* when the resting orders on
its coin hold stop-losses that together cover its whole size. An order is one of its stop-losses
(:func:`is_stop_loss`) when it is

* a trigger order whose kind is stop-loss (``tpsl == "sl"``; a take-profit closes at a gain and
  protects nothing against a loss),
* reduce-only (it can only shrink the position, never open the other way),
* on the closing side (a sell for a long, a buy for a short), and
* able to fill once triggered: its limit price (a stop-limit's limit, a stop-market's slippage
  bound) at or beyond the trigger on the closing side (a sell's limit at or below its trigger, a
  buy's at or above). A stop-limit whose limit is far on the other side turns into a resting
  limit order when it triggers and closes nothing while the price runs away.

A stop-loss of size 0 is Hyperliquid's position TP/SL for the whole position (``positionTpsl``
with size 0, the only order Hyperliquid takes with size 0): it covers the position whatever its
size.

Where its trigger sits against the entry does not matter: a stop-loss fires when the price moves
against the position (a long's sell stop when the price falls to it), so one above a long's entry
locks in a gain and still closes the position on a fall; the emergency places its stops from the
current price, and a position in profit gets one there.

Sizes are summed as the decimals the exchange sent (``Decimal(repr(size))``), so three 0.1
stops cover a 0.3 position exactly and 0.7 + 0.1 covers 0.8 (binary floats would miss both).

Hyperliquid's ``frontendOpenOrders`` does not carry ``tpsl``; its ``orderType`` does
("Stop Market", "Take Profit Limit", ...): :func:`tpsl_of` reads it.

Only the standard library: the bot and the agent both import this module.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Protocol, TypeVar


class TriggerOrder(Protocol):
    """What the rule reads of a resting order (the bot's and the page's order types have it)."""

    @property
    def is_buy(self) -> bool: ...
    @property
    def size(self) -> float: ...
    @property
    def trigger_px(self) -> float | None: ...
    @property
    def limit_px(self) -> float: ...
    @property
    def reduce_only(self) -> bool: ...
    @property
    def tpsl(self) -> str | None: ...


Order = TypeVar("Order", bound=TriggerOrder)


def tpsl_of(order_type: str | None, *, is_trigger: bool = True) -> str | None:
    """``"sl"`` for Hyperliquid's "Stop Market"/"Stop Limit", ``"tp"`` for "Take Profit ...",
    None for anything else (a plain limit, a trigger of an unknown kind)."""
    if not is_trigger or not order_type:
        return None
    kind = order_type.strip().lower()
    if kind.startswith("take profit"):
        return "tp"
    if kind.startswith("stop"):
        return "sl"
    return None


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def is_stop_loss(order: TriggerOrder, szi: float) -> bool:
    """``order`` is a stop-loss of the position ``szi`` (module docstring)."""
    if szi == 0 or not math.isfinite(szi):
        return False
    trigger = order.trigger_px
    if trigger is None or not math.isfinite(trigger):
        return False
    limit = order.limit_px
    if not math.isfinite(limit) or limit <= 0:
        return False
    fills = limit >= trigger if order.is_buy else limit <= trigger
    return (order.tpsl == "sl" and bool(order.reduce_only) and order.is_buy != (szi > 0) and fills
            and math.isfinite(order.size) and order.size >= 0)


def stop_losses(szi: float, orders: Iterable[Order]) -> list[Order]:
    """The orders among ``orders`` (one coin's) that are stop-losses of the position."""
    return [o for o in orders if is_stop_loss(o, szi)]


def is_protected(szi: float, orders: Iterable[TriggerOrder]) -> bool:
    """The position's stop-losses together cover its whole size (a flat position needs none)."""
    if szi == 0:
        return True
    if not math.isfinite(szi):
        return False
    stops = stop_losses(szi, orders)
    if any(o.size == 0 for o in stops):
        return True  # a whole-position stop (module docstring)
    covered = sum((_decimal(o.size) for o in stops), Decimal(0))
    return covered >= _decimal(abs(szi))
