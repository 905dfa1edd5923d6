"""Start-up reconciliation: compare what the exchange holds with what the database remembers.

:func:`plan` is pure: it turns the two views and ``reconcile_policy`` into a list of
:class:`Decision` objects. The engine applies them and logs each one.

Rules (``policy`` is adopt | cancel | halt):

* An exchange order the database knows (by cloid or oid): **keep** (mark it open).
* An exchange order the database does not know: adopt (record it), cancel (cancel it on the
  exchange) or halt.
* A database order believed live that the exchange no longer lists: **resolve** under every
  policy: its fate (filled, triggered, canceled, never arrived) is a fact the exchange reports
  by cloid, not a choice.
* An exchange position with no open trade in the database (or a different size or side):
  adopt (record it; the loop then gives it a stop-loss), cancel (close it on the exchange with a
  reduce-only market order) or halt.
* An open trade in the database with no exchange position: adopt and cancel mark it closed
  (accounting from the fills); halt halts and leaves the record for a human.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bot.trading.gateway import ExchangeOrder, ExchangePosition

Policy = Literal["adopt", "cancel", "halt"]
Action = Literal["keep", "adopt", "cancel", "resolve", "close", "mark_closed", "halt"]
# The fate, under each policy, of an order unknown to the database and of a mismatched position.
_ORDER_ACTION: dict[Policy, Action] = {"adopt": "adopt", "cancel": "cancel", "halt": "halt"}
_POSITION_ACTION: dict[Policy, Action] = {"adopt": "adopt", "cancel": "close", "halt": "halt"}


@dataclass(frozen=True)
class KnownOrder:
    """The database's view of a live order."""

    id: int
    cloid: str | None
    oid: int | None
    coin: str
    status: str


@dataclass(frozen=True)
class KnownTrade:
    """The database's view of an open trade (its position)."""

    id: int
    coin: str
    side: str  # long | short
    size: float


@dataclass(frozen=True)
class Decision:
    kind: Literal["order", "position"]
    action: Action
    coin: str
    detail: str
    order: ExchangeOrder | None = None
    known_order: KnownOrder | None = None
    position: ExchangePosition | None = None
    trade: KnownTrade | None = None


def _same_size(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def plan(
    *,
    policy: Policy,
    exchange_orders: Sequence[ExchangeOrder],
    exchange_positions: dict[str, ExchangePosition],
    db_orders: Sequence[KnownOrder],
    db_trades: Sequence[KnownTrade],
) -> list[Decision]:
    """Return one decision per order and per position that needs a look, in a stable order."""
    decisions: list[Decision] = []
    by_cloid = {o.cloid: o for o in db_orders if o.cloid}
    by_oid = {o.oid: o for o in db_orders if o.oid is not None}
    matched: set[int] = set()
    for eo in exchange_orders:
        known = (by_cloid.get(eo.cloid) if eo.cloid else None) or by_oid.get(eo.oid)
        if known is not None:
            matched.add(known.id)
            decisions.append(Decision("order", "keep", eo.coin, f"order {eo.oid} is ours", order=eo,
                                      known_order=known))
            continue
        action = _ORDER_ACTION[policy]
        decisions.append(Decision("order", action, eo.coin, f"order {eo.oid} on the exchange is unknown to the "
                                  f"database (policy {policy})", order=eo))
    for ko in db_orders:
        if ko.id not in matched:
            decisions.append(Decision("order", "resolve", ko.coin, f"order {ko.cloid or ko.oid} ({ko.status}) is "
                                      "not resting on the exchange; asking for its fate", known_order=ko))

    trades = {t.coin: t for t in db_trades}
    for coin in sorted(set(trades) | set(exchange_positions)):
        pos, trade = exchange_positions.get(coin), trades.get(coin)
        if pos is not None and trade is not None:
            same_side = (pos.size > 0) == (trade.side == "long")
            if same_side and _same_size(abs(pos.size), trade.size):
                decisions.append(Decision("position", "keep", coin, "position matches the database",
                                          position=pos, trade=trade))
                continue
            detail = f"position {pos.size} differs from the database ({trade.side} {trade.size})"
        elif pos is not None:
            detail = f"position {pos.size} on the exchange is unknown to the database"
        else:
            assert trade is not None
            decisions.append(Decision(
                "position", "halt" if policy == "halt" else "mark_closed", coin,
                f"database trade {trade.id} ({trade.side} {trade.size}) has no exchange position (policy {policy})",
                trade=trade,
            ))
            continue
        pos_action = _POSITION_ACTION[policy]
        decisions.append(Decision("position", pos_action, coin, f"{detail} (policy {policy})", position=pos,
                                  trade=trade))
    return decisions
