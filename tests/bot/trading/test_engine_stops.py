"""The bot keeps a real stop-loss under every open position: a take-profit or a stop-loss for
part of the size does not count, and the bot places a stop-loss that covers the whole position
(real paper exchange, real SDK, real SQLite)."""
from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.trading.app import _run_loop
from bot.trading.risk import round_price
from botwarden.errors import TransientError
from botwarden.settings import StackSettings
from tests.bot.trading.api_wallet_engine import engine, wallet  # noqa: F401 (fixtures)


def raw_orders(engine: Any, coin: str) -> list[dict[str, Any]]:
    """The exchange's own view (``frontendOpenOrders``), read apart from the bot's parsing."""
    return [o for o in engine.gw.info.frontend_open_orders(engine.gw.address) if o["coin"] == coin]


def stop_loss_cover(engine: Any, coin: str) -> tuple[Decimal, Decimal]:
    """(size covered by reduce-only stop-losses on the closing side, the position's size), from the
    exchange's own order kinds."""
    pos = engine.gw.account().positions[coin]
    closing = "A" if pos.size > 0 else "B"
    covered = Decimal(0)
    for o in raw_orders(engine, coin):
        if o["isTrigger"] and o["orderType"].startswith("Stop") and o["reduceOnly"] and o["side"] == closing:
            covered += Decimal(o["sz"])
    return covered, Decimal(repr(abs(pos.size)))


def replace_stop(engine: Any, coin: str, *, tpsl: str, fraction: float) -> None:
    """Cancel the bot's stop on ``coin`` and rest, instead, a reduce-only trigger of kind ``tpsl``
    for ``fraction`` of the position (a take-profit on the winning side, a stop-loss on the losing)."""
    pos = engine.gw.account().positions[coin]
    for o in raw_orders(engine, coin):
        assert engine.gw.cancel(coin, o["oid"])
    is_long = pos.size > 0
    dec = engine.gw.sz_decimals(coin)
    size = float(Decimal(repr(abs(pos.size) * fraction)).quantize(Decimal(1).scaleb(-dec), rounding="ROUND_DOWN"))
    assert 0 < size <= abs(pos.size)
    away = 1.05 if (tpsl == "tp") == is_long else 0.95
    trigger = round_price(pos.entry_px * away, dec)
    limit = round_price(trigger * (0.9 if is_long else 1.1), dec)
    out = engine.gw.place(coin=coin, is_buy=not is_long, size=size, limit_px=limit,
                          order_type={"trigger": {"triggerPx": trigger, "isMarket": True, "tpsl": tpsl}},
                          reduce_only=True, cloid="0x" + secrets.token_hex(16))
    assert out.status in ("open", "resting"), out


@pytest.mark.parametrize(("tpsl", "fraction"), [("tp", 1.0), ("sl", 0.5)],
                         ids=["take-profit only", "half-size stop-loss"])
def test_only_a_full_size_stop_loss_counts_as_the_stop(make_engine: Callable[..., Any], tpsl: str,
                                                      fraction: float) -> None:
    engine = make_engine()
    engine.reconcile()
    engine.iterate()
    for coin in ("BTC", "ETH"):
        covered, size = stop_loss_cover(engine, coin)
        assert covered >= size, f"{coin}: the bot's own stop covers {covered} of {size}"
        replace_stop(engine, coin, tpsl=tpsl, fraction=fraction)
        covered, size = stop_loss_cover(engine, coin)
        assert covered < size  # the set-up: now only a TP or a partial stop rests
    engine.iterate()
    for coin in ("BTC", "ETH"):
        covered, size = stop_loss_cover(engine, coin)
        assert covered >= size, f"{coin}: after an iteration stop-losses cover {covered} of {size}"
        assert any(o["orderType"].startswith("Take Profit") for o in raw_orders(engine, coin)) == (tpsl == "tp")
    orders = len(engine.gw.open_orders())
    engine.iterate()  # protected now: nothing more is placed
    assert len(engine.gw.open_orders()) == orders


def bare_positions(engine: Any) -> list[str]:
    """Let the bot enter with the signal, then cancel every order it rests: positions without a
    stop. Returns their coins."""
    engine.reconcile()
    engine.iterate()
    coins = sorted(engine.gw.account().positions)
    assert coins, "the set-up: the bot entered with the signal"
    for coin in coins:
        for o in raw_orders(engine, coin):
            assert engine.gw.cancel(coin, o["oid"])
        assert stop_loss_cover(engine, coin)[0] == 0
    return coins


def iterations_failing(engine: Any, paper_exchange: Any, failing: list[str], times: int) -> None:
    """``times`` iterations while the ``/info`` request types ``failing`` answer 500: each ends
    failing (TransientError, as before the stop fixes), the fault cleared after."""
    paper_exchange.admin("POST", "/admin/faults", {"info_errors": failing})
    try:
        for _ in range(times):
            with pytest.raises(TransientError):
                engine.iterate()
    finally:
        paper_exchange.admin("DELETE", "/admin/faults")


@pytest.mark.parametrize("failing", ["userFills", "allMids"])
def test_a_read_failing_after_the_positions_leaves_no_position_without_its_stop(
        make_engine: Callable[..., Any], paper_exchange: Any, failing: str) -> None:
    """The positions and orders are read, then another read of the iteration fails (the fills, the
    mids): the iteration fails as before, but only after every position has its stop-loss (it ended
    with none checked, for as long as that read kept failing)."""
    engine = make_engine()
    coins = bare_positions(engine)
    iterations_failing(engine, paper_exchange, [failing], 1)
    for coin in coins:
        covered, size = stop_loss_cover(engine, coin)
        assert covered >= size, f"{coin}: with {failing} failing, stop-losses cover {covered} of {size}"


def test_a_signer_check_left_unanswered_does_not_keep_the_iteration_from_placing_the_stops(
        bot_settings: StackSettings, engine: Any, paper_exchange: Any, tmp_path: Path) -> None:
    """The bot's loop asks the exchange whether its API wallet is still approved (``userRole``)
    before an iteration: that read failing skipped the iteration, stops included, for as long as it
    failed. The real loop, with the check due at every iteration and every ``userRole`` answered 500."""
    coins = bare_positions(engine)
    paper_exchange.admin("POST", "/admin/faults", {"info_errors": ["userRole"]})
    stop = threading.Event()
    loop = threading.Thread(target=_run_loop, args=(engine, engine.status, engine.metrics, tmp_path / "heartbeat",
                                                    stop, 0.1, 0.0), daemon=True)
    loop.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(
                stop_loss_cover(engine, c)[0] >= stop_loss_cover(engine, c)[1] for c in coins):
            time.sleep(0.1)
    finally:
        stop.set()
        loop.join(10)
        paper_exchange.admin("DELETE", "/admin/faults")
    for coin in coins:
        covered, size = stop_loss_cover(engine, coin)
        assert covered >= size, f"{coin}: with userRole failing, stop-losses cover {covered} of {size}"


@pytest.mark.parametrize("failing", [["orderStatus"], ["orderStatus", "userFills", "allMids"]])
def test_an_order_status_read_failing_does_not_keep_a_position_bare(
        make_engine: Callable[..., Any], paper_exchange: Any, failing: list[str]) -> None:
    """The stop-loss is placed after asking the exchange whether its client order id is known
    (a previous life may have sent it): with ``orderStatus`` answered 500, no stop could be placed
    at all, iteration after iteration, for as long as that read failed (the position bare). A
    reduce-only order can only reduce, and the exchange refuses a client order id it knows: it is
    sent unchecked when the check cannot be made."""
    engine = make_engine()
    coins = bare_positions(engine)
    iterations_failing(engine, paper_exchange, failing, 2)
    for coin in coins:
        covered, size = stop_loss_cover(engine, coin)
        assert size <= covered <= size, f"{coin}: with {failing} failing, stop-losses cover {covered} of {size}"
