"""The trading engine against a real paper exchange (in-process server, real HTTP and SQLite)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from bot.trading.store import utc_day


def exchange_orders(engine: Any) -> list[Any]:
    return engine.gw.open_orders()


def fills_by_oid(engine: Any) -> Counter[int]:
    return Counter(int(f["oid"]) for f in engine.gw.fills())


def test_enters_with_a_resting_reduce_only_stop_and_never_repeats(make_engine: Callable[..., Any]) -> None:
    engine = make_engine()
    engine.reconcile()
    engine.iterate()
    positions = engine.gw.account().positions
    assert set(positions) == {"BTC", "ETH"}  # trend entry right after start-up
    stops = exchange_orders(engine)
    assert len(stops) == 2
    for s in stops:
        pos = positions[s.coin]
        assert s.is_trigger and s.reduce_only and s.is_buy == (pos.size < 0) and s.size == abs(pos.size)
    equity = engine.gw.account().equity
    cap = engine.bot.risk.max_position_pct / 100
    for pos in positions.values():  # at most max_position_pct of equity (1 % for price rounding)
        assert abs(pos.size) * pos.entry_px <= cap * equity * 1.01
    sent = len(engine.store.all_orders())
    for _ in range(3):
        engine.iterate()
    assert len(engine.store.all_orders()) == sent
    assert len(exchange_orders(engine)) == 2


def test_an_interim_bot_keeps_positions_and_stops_but_opens_nothing(make_engine: Callable[..., Any]) -> None:
    """The warm spare that took over after a crash is nobody's supervised process: it manages
    what is open but takes no new entry (the same start as the test above enters BTC and ETH)."""
    engine = make_engine()
    engine.status.role = "interim"
    engine.reconcile()
    for _ in range(2):
        engine.iterate()
    assert engine.gw.account().positions == {}
    assert engine.store.all_orders() == []
    assert not engine.entries_allowed()
    engine.status.role = "active"  # relieved: the supervised bot trades as always
    engine.iterate()
    assert set(engine.gw.account().positions) == {"BTC", "ETH"}


def test_daily_loss_limit_halts_new_entries(make_engine: Callable[..., Any]) -> None:
    engine = make_engine()
    equity = engine.gw.account().equity
    engine.store.snapshot_equity(equity * 1.10)  # the day started 10 % higher: limit is 5 %
    engine.iterate()
    assert engine.status.halted_reason and engine.status.halted_reason.startswith("daily_loss")
    assert engine.gw.account().positions == {}
    assert engine.store.all_orders() == []
    assert engine.metrics.registry.get_sample_value("trading_halted") == 1
    assert [(h.kind, h.day) for h in engine.halts.active()] == [("daily_loss", utc_day())]


def test_dropped_order_response_is_looked_up_not_resent(make_engine: Callable[..., Any], paper_exchange: Any) -> None:
    engine = make_engine(coins=["BTC"])
    engine.reconcile()
    paper_exchange.admin("POST", "/admin/faults", {"drop_responses": 1})
    engine.iterate()
    paper_exchange.admin("DELETE", "/admin/faults")
    entries = [o for o in engine.store.all_orders() if o.intent.startswith("open_")]
    assert len(entries) == 1 and entries[0].status == "filled"
    assert engine.metrics.registry.get_sample_value("trading_duplicate_orders_avoided_total") == 1
    assert len(engine.gw.fills()) == 1  # one entry fill: the order was applied exactly once
    assert len(exchange_orders(engine)) == 1  # and its stop-loss rests


def test_restart_with_a_lost_database_adopts_and_places_nothing(make_engine: Callable[..., Any]) -> None:
    first = make_engine(db="first.db")
    first.reconcile()
    first.iterate()
    before_orders = {o.oid for o in exchange_orders(first)}
    before_fills = len(first.gw.fills())
    second = make_engine(db="second.db", reconcile_policy="adopt")
    report = second.reconcile()
    assert sorted((r["kind"], r["action"]) for r in report) == [("order", "adopt")] * 2 + [("position", "adopt")] * 2
    for _ in range(2):
        second.iterate()
    assert {o.oid for o in exchange_orders(second)} == before_orders  # no second stop-loss
    assert len(second.gw.fills()) == before_fills  # no second entry
    assert {t.coin for t in second.store.open_trades()} == {"BTC", "ETH"}


def test_restart_with_the_same_database_keeps_everything(make_engine: Callable[..., Any]) -> None:
    first = make_engine()
    first.reconcile()
    first.iterate()
    before = {o.oid for o in exchange_orders(first)}
    second = make_engine()
    report = second.reconcile()
    assert {r["action"] for r in report} == {"keep"}
    second.iterate()
    assert {o.oid for o in exchange_orders(second)} == before


def test_cancel_policy_cancels_unknown_orders_and_closes_unknown_positions(make_engine: Callable[..., Any]) -> None:
    first = make_engine(db="first.db")
    first.reconcile()
    first.iterate()
    second = make_engine(db="second.db", reconcile_policy="cancel")
    report = second.reconcile()
    assert sorted((r["kind"], r["action"]) for r in report) == [("order", "cancel")] * 2 + [("position", "close")] * 2
    assert second.gw.account().positions == {}


def test_halt_policy_halts_on_unknown_exchange_state(make_engine: Callable[..., Any]) -> None:
    first = make_engine(db="first.db")
    first.reconcile()
    first.iterate()
    second = make_engine(db="second.db", reconcile_policy="halt")
    second.reconcile()
    assert second.status.halted_reason and second.status.halted_reason.startswith("reconcile")
    assert len(exchange_orders(second)) == 2  # nothing touched: a human decides


@pytest.mark.parametrize("shock", [-10.0])
def test_stop_loss_closes_the_trade_and_it_is_accounted(make_engine: Callable[..., Any], paper_exchange: Any,
                                                        shock: float) -> None:
    engine = make_engine(coins=["ETH"])
    engine.reconcile()
    engine.iterate()
    pos = engine.gw.account().positions["ETH"]
    paper_exchange.admin("POST", "/admin/shock", {"coin": "ETH", "pct": shock if pos.size > 0 else -shock})
    engine.iterate()
    closed = engine.store.closed_trades(5)
    assert len(closed) == 1 and closed[0].pnl < 0 and closed[0].close_reason == "stop_or_external"
    assert engine.metrics.registry.get_sample_value("trading_win_rate") == 0.0
