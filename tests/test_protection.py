"""When a position counts as protected (:mod:`botwarden.protection`), over arbitrary sets of
resting orders, as the bot parses them (``parse_open_order``) and as the page does (``Order``)."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agent.web.trading import Order, stop_for
from bot.trading.gateway import parse_open_order
from botwarden.protection import is_protected, tpsl_of

KINDS = ("Stop Market", "Stop Limit", "Take Profit Market", "Take Profit Limit", "Limit")
UNIT = Decimal("0.00001")  # sizes are whole multiples of the coin's size step


@dataclass(frozen=True)
class Raw:
    """One resting order as the exchange sends it in ``frontendOpenOrders``."""

    side: str
    units: int
    trigger_offset: int | None
    """Trigger price minus the entry, in ticks (None: not a trigger order)."""
    reduce_only: bool
    kind: str
    limit_offset: int = 0
    """A trigger order's limit price minus its trigger, in ticks."""

    def row(self, entry: Decimal, oid: int) -> dict[str, Any]:
        trigger = None if self.trigger_offset is None else entry + self.trigger_offset
        is_trigger = trigger is not None and self.kind != "Limit"
        limit = trigger + self.limit_offset if is_trigger and trigger is not None else entry
        return {"coin": "BTC", "side": self.side, "sz": str(self.units * UNIT), "limitPx": str(limit), "oid": oid,
                "isTrigger": is_trigger, "triggerPx": str(trigger) if is_trigger else "0.0",
                "reduceOnly": self.reduce_only, "orderType": self.kind if is_trigger else "Limit"}

    def page_order(self, entry: Decimal, oid: int) -> Order:
        r = self.row(entry, oid)
        return Order("BTC", r["side"], float(r["sz"]), float(r["limitPx"]),
                     float(r["triggerPx"]) if r["isTrigger"] else None, r["reduceOnly"], r["orderType"], oid)


def stop_loss_of(raw: Raw, long: bool) -> bool:
    """The rule, written out once more from its statement: a reduce-only stop-loss trigger on the
    closing side (wherever its trigger sits against the entry) whose limit lets it fill once
    triggered (a sell's at or below the trigger, a buy's at or above)."""
    return (raw.trigger_offset is not None and raw.kind.startswith("Stop") and raw.reduce_only
            and raw.side == ("A" if long else "B")
            and (raw.limit_offset <= 0 if raw.side == "A" else raw.limit_offset >= 0))


raws = st.builds(Raw, side=st.sampled_from("AB"), units=st.integers(1, 300_000),
                 trigger_offset=st.none() | st.integers(-500, 500), reduce_only=st.booleans(),
                 kind=st.sampled_from(KINDS), limit_offset=st.integers(-400, 400))
positions = st.tuples(st.integers(1, 300_000), st.booleans(), st.integers(1_000, 100_000))


def verdicts(units: int, long: bool, entry_px: int, orders: list[Raw]) -> tuple[bool, bool]:
    """(the bot's verdict, the page's verdict) on the position and the orders."""
    entry = Decimal(entry_px)
    szi = float(units * UNIT) * (1 if long else -1)
    bot = is_protected(szi, [parse_open_order(o.row(entry, i)) for i, o in enumerate(orders)])
    page = stop_for(szi, float(entry), [o.page_order(entry, i) for i, o in enumerate(orders)])
    return bot, page.protected


@given(positions, st.lists(raws, max_size=8))
def test_protected_exactly_when_stop_losses_cover_the_whole_size(position: tuple[int, bool, int],
                                                                orders: list[Raw]) -> None:
    units, long, entry = position
    covered = sum(o.units for o in orders if stop_loss_of(o, long))
    assert verdicts(units, long, entry, orders) == (covered >= units,) * 2


@given(positions, st.lists(raws, max_size=6), st.lists(raws, min_size=1, max_size=6))
def test_orders_that_are_not_stop_losses_change_nothing(position: tuple[int, bool, int], orders: list[Raw],
                                                        extra: list[Raw]) -> None:
    """Take-profits, plain limits, orders that are not reduce-only or on the opening side never
    make a position protected, whatever their size."""
    units, long, entry = position
    others = [o for o in extra if not stop_loss_of(o, long)]
    assert verdicts(units, long, entry, orders + others) == verdicts(units, long, entry, orders)


@given(positions, st.integers(1, 8), st.data())
def test_a_stop_split_in_parts_covers_only_with_every_part(position: tuple[int, bool, int], parts: int,
                                                           data: st.DataObject) -> None:
    units, long, entry = position
    parts = min(parts, units)
    cuts = sorted(data.draw(st.sets(st.integers(1, units - 1), min_size=parts - 1, max_size=parts - 1))
                  if units > 1 else set())
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, units], strict=True)]
    offset = data.draw(st.integers(1, 500))
    stops = [Raw("A" if long else "B", s, -offset if long else offset, True,
                 data.draw(st.sampled_from(KINDS[:2])), data.draw(st.integers(-400, 0)) * (1 if long else -1))
             for s in sizes]
    assert verdicts(units, long, entry, stops) == (True, True)
    for i in range(len(stops)):
        assert verdicts(units, long, entry, stops[:i] + stops[i + 1:]) == (False, False)


def test_order_kinds_name_stop_loss_and_take_profit() -> None:
    assert [tpsl_of(k) for k in KINDS] == ["sl", "sl", "tp", "tp", None]
    assert tpsl_of("Stop Market", is_trigger=False) is None and tpsl_of(None) is None


@given(positions, st.sampled_from(KINDS[:2]), st.integers(1, 500), st.lists(raws, max_size=4))
def test_a_whole_position_stop_of_size_zero_covers_any_size(position: tuple[int, bool, int], kind: str,
                                                            offset: int, others: list[Raw]) -> None:
    """Hyperliquid's position TP/SL sent with size 0 closes the whole position when it fires: the
    bot and the page count it as covering the position, whatever its size and other orders."""
    units, long, entry = position
    whole = Raw("A" if long else "B", 0, -offset if long else offset, True, kind)
    assert verdicts(units, long, entry, [*others, whole]) == (True, True)
    # a take-profit of size 0, or one on the opening side, protects nothing
    for not_a_stop in (Raw(whole.side, 0, whole.trigger_offset, True, "Take Profit Market"),
                       Raw("B" if long else "A", 0, -whole.trigger_offset, True, kind)):  # type: ignore[operator]
        assert verdicts(units, long, entry, [*others, not_a_stop]) == verdicts(units, long, entry, others)
