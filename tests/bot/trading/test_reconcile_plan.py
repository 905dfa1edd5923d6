"""Reconciliation decisions for each policy (pure planner)."""
from __future__ import annotations

import pytest

from bot.trading.gateway import ExchangeOrder, ExchangePosition
from bot.trading.reconcile import KnownOrder, KnownTrade, plan


def order(oid: int, cloid: str | None, coin: str = "BTC") -> ExchangeOrder:
    return ExchangeOrder(oid=oid, cloid=cloid, coin=coin, is_buy=False, size=0.1, limit_px=1.0, trigger_px=2.0,
                         reduce_only=True, is_trigger=True)


def position(coin: str, size: float) -> ExchangePosition:
    return ExchangePosition(coin=coin, size=size, entry_px=100.0, unrealized_pnl=0.0, notional=abs(size) * 100)


KNOWN = KnownOrder(id=1, cloid="0xaa", oid=11, coin="BTC", status="open")
GONE = KnownOrder(id=2, cloid="0xbb", oid=None, coin="ETH", status="pending")


def actions(policy: str, **kw: object) -> list[tuple[str, str, str]]:
    args = {"exchange_orders": [], "exchange_positions": {}, "db_orders": [], "db_trades": []}
    args.update(kw)
    return [(d.kind, d.action, d.coin) for d in plan(policy=policy, **args)]  # type: ignore[arg-type]


@pytest.mark.parametrize("policy, expected", [("adopt", "adopt"), ("cancel", "cancel"), ("halt", "halt")])
def test_unknown_exchange_order_follows_policy(policy: str, expected: str) -> None:
    assert actions(policy, exchange_orders=[order(5, "0xcc")]) == [("order", expected, "BTC")]


@pytest.mark.parametrize("policy", ["adopt", "cancel", "halt"])
def test_known_order_is_kept_by_cloid_or_by_oid(policy: str) -> None:
    by_cloid = actions(policy, exchange_orders=[order(99, "0xaa")], db_orders=[KNOWN])
    by_oid = actions(policy, exchange_orders=[order(11, None)], db_orders=[KNOWN])
    assert by_cloid == by_oid == [("order", "keep", "BTC")]


@pytest.mark.parametrize("policy", ["adopt", "cancel", "halt"])
def test_database_order_missing_on_exchange_is_resolved_by_cloid(policy: str) -> None:
    assert actions(policy, db_orders=[GONE]) == [("order", "resolve", "ETH")]


@pytest.mark.parametrize("policy, expected", [("adopt", "adopt"), ("cancel", "close"), ("halt", "halt")])
def test_unknown_exchange_position_follows_policy(policy: str, expected: str) -> None:
    assert actions(policy, exchange_positions={"SOL": position("SOL", 2.0)}) == [("position", expected, "SOL")]


@pytest.mark.parametrize("policy, expected", [("adopt", "adopt"), ("cancel", "close"), ("halt", "halt")])
def test_position_that_differs_from_database_follows_policy(policy: str, expected: str) -> None:
    trade = KnownTrade(id=3, coin="BTC", side="long", size=1.0)
    got = actions(policy, exchange_positions={"BTC": position("BTC", -1.0)}, db_trades=[trade])
    assert got == [("position", expected, "BTC")]


@pytest.mark.parametrize("policy, expected", [("adopt", "mark_closed"), ("cancel", "mark_closed"), ("halt", "halt")])
def test_database_trade_without_exchange_position(policy: str, expected: str) -> None:
    trade = KnownTrade(id=3, coin="ETH", side="short", size=1.0)
    assert actions(policy, db_trades=[trade]) == [("position", expected, "ETH")]


def test_matching_position_is_kept() -> None:
    trade = KnownTrade(id=3, coin="BTC", side="short", size=0.5)
    got = actions("halt", exchange_positions={"BTC": position("BTC", -0.5)}, db_trades=[trade])
    assert got == [("position", "keep", "BTC")]
