"""Halts as the engine keeps them: in the halt file, read before every entry, answered only once
no entry is in flight, surviving a replaced database; stops kept while a position stays open.
A real engine on a real paper exchange (in-process server, real HTTP, real SQLite and files)."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from botwarden.halts import HaltFile


def entries(engine: Any) -> list[Any]:
    return [o for o in engine.store.all_orders() if o.intent.startswith("open_")]


def test_a_halt_written_while_the_bot_was_down_holds_when_it_starts(make_engine: Callable[..., Any]) -> None:
    first = make_engine()
    HaltFile(first.halts.path).add("control", "emergency playbook", by="agent")  # the agent, bot dead
    engine = make_engine()
    engine.reconcile()
    for _ in range(3):
        engine.iterate()
    assert entries(engine) == [] and engine.gw.account().positions == {}
    assert engine.status.health()["status"] == "halted"
    assert engine.status.halts[0]["by"] == "agent" and "emergency playbook" in (engine.status.halted_reason or "")


def test_a_halt_written_during_an_iteration_stops_its_entries(make_engine: Callable[..., Any],
                                                              paper_exchange: Any) -> None:
    """The agent writes the halt file after the iteration read it and before it trades (every
    request is slowed to open that window): only the read right before each entry sees it."""
    engine = make_engine()
    engine.reconcile()
    paper_exchange.admin("POST", "/admin/faults", {"latency_ms": 1000})
    weight = paper_exchange.admin("GET", "/admin/state")["weight_used"]
    loop = threading.Thread(target=engine.iterate)
    loop.start()
    deadline = time.monotonic() + 60
    while paper_exchange.admin("GET", "/admin/state")["weight_used"] == weight:  # the iteration is reading
        assert time.monotonic() < deadline, "the iteration never reached the exchange"
        time.sleep(0.01)
    assert entries(engine) == [], "too late: an entry was already sent"
    HaltFile(engine.halts.path).add("control", "agent halt", by="agent")
    loop.join(timeout=120)
    paper_exchange.admin("DELETE", "/admin/faults")
    assert entries(engine) == [] and engine.gw.account().positions == {}


def test_the_halt_answer_waits_for_the_entry_being_sent(make_engine: Callable[..., Any], paper_exchange: Any) -> None:
    engine = make_engine()
    engine.reconcile()
    paper_exchange.admin("POST", "/admin/faults", {"latency_ms": 400})  # every request slow: a wide window
    loop = threading.Thread(target=engine.iterate)
    loop.start()
    deadline = time.monotonic() + 60
    while not [o for o in entries(engine) if o.status == "pending"]:  # the first entry is being sent
        assert loop.is_alive() and time.monotonic() < deadline, "no entry was sent"
        time.sleep(0.005)
    _halt, durable = engine.halt("control", "operator", by="test")
    answered_with = [(o.coin, o.status) for o in entries(engine)]
    loop.join(timeout=60)
    paper_exchange.admin("DELETE", "/admin/faults")
    assert durable
    assert [s for _, s in answered_with] != ["pending"]  # the entry in flight had finished
    assert [(o.coin, o.status) for o in entries(engine)] == answered_with  # and none was sent after


def test_a_replaced_database_keeps_the_halts(make_engine: Callable[..., Any]) -> None:
    first = make_engine(db="before.db")
    first.halt("control", "operator", by="test")
    restored = make_engine(db="restored-older.db")  # a restore of an older backup: no halt rows at all
    restored.reconcile()
    restored.iterate()
    assert restored.status.halted_reason and entries(restored) == []
    (ended,) = restored.resume("test")
    assert ended.reason == "operator" and restored.status.halted_reason is None
    restored.iterate()
    assert entries(restored)  # only the explicit resume let it trade


def test_close_all_keeps_the_stop_of_a_position_that_did_not_close(make_engine: Callable[..., Any],
                                                                   paper_exchange: Any) -> None:
    engine = make_engine()
    engine.reconcile()
    engine.iterate()
    positions = engine.gw.account().positions
    stops = {o.oid for o in engine.gw.open_orders() if o.is_trigger and o.reduce_only}
    assert set(positions) == {"BTC", "ETH"} and len(stops) == 2
    paper_exchange.admin("POST", "/admin/faults", {"ioc_no_fill": True})  # the close finds no fill
    result = engine.close_all()
    assert result["still_open"] == ["BTC", "ETH"] and sorted(result["kept"]) == sorted(stops)
    assert set(result["refusals"]) == {"BTC", "ETH"}  # the exchange's refusal is told, not hidden
    assert all("could not immediately match" in r for r in result["refusals"].values()), result["refusals"]
    assert {o.oid for o in engine.gw.open_orders()} == stops
    assert engine.cancel_all()["kept"] and {o.oid for o in engine.gw.open_orders()} == stops
    paper_exchange.admin("DELETE", "/admin/faults")
    done = engine.close_all()
    assert done["still_open"] == [] and done["refusals"] == {} and engine.gw.open_orders() == []  # flat: the stops protect nothing
