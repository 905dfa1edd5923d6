"""Attacks on the re-use of a client order id the exchange refused as a whole for its signer (a
revoked API wallet): the re-sent id is counted as a send after a resume, a bot killed between the
re-send and its answer neither duplicates nor loses the order, and the paper exchange does not
remember the id of a request it refused. A real engine with its own API wallet on the paper
exchange."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from eth_account import Account
from hyperliquid.exchange import Exchange

from bot import api_wallets
from bot.trading import cloid as intents
from bot.trading.engine import MAX_ATTEMPTS, REFUSED, TradingEngine
from bot.trading.gateway import Gateway
from bot.trading.metrics import BotMetrics
from bot.trading.status import RuntimeStatus
from bot.trading.store import Store
from botwarden.settings import PAPER_DEV_PRIVATE_KEY, StackSettings
from tests.bot.trading.api_wallet_engine import DEV, NAME, engine, wallet  # noqa: F401 (fixtures)
from tests.bot.trading.test_engine_attempts import close_halts, closes, position_against_the_signal


def sends(engine: TradingEngine, intent: str) -> int:
    """Orders of ``intent`` the engine sent (every outcome, the refused ones too)."""
    total = 0.0
    for metric in engine.metrics.registry.collect():
        for s in metric.samples:
            if s.name == "trading_orders_total" and s.labels.get("intent") == intent:
                total += s.value
    return int(total)


@contextmanager
def next_life(settings: StackSettings, wallet: Any) -> Iterator[TradingEngine]:
    """The bot started again on the same database: reconciled, then two iterations."""
    metrics = BotMetrics()
    status = RuntimeStatus(loop_seconds=settings.bot.loop_seconds, candle_seconds=3600)
    gw = Gateway(settings.exchange_url, wallet.key.hex(), timeout_s=5, metrics=metrics, account_address=DEV,
                 lookup_backoff_s=0.05)
    again = TradingEngine(settings, gw, Store(settings.path("bot.db")), metrics, status)
    try:
        again.reconcile()
        again.iterate()
        again.iterate()
        yield again
    finally:
        again.store.close()


def test_a_refused_close_sent_again_after_the_resume_counts_as_one_of_its_attempts(
        bot_settings: StackSettings, engine: TradingEngine, wallet: Any, paper_exchange: Any) -> None:
    """Refused for the revoked wallet, halted; approved again and resumed, the close re-sends the
    refused id and the book now finds nothing to match: MAX_ATTEMPTS sends after the resume halt
    again, naming MAX_ATTEMPTS attempts (the re-sent id is one of them, not a free extra send)."""
    position_against_the_signal(engine, bot_settings)
    api_wallets.revoke(bot_settings.exchange_url, PAPER_DEV_PRIVATE_KEY, NAME)
    engine.iterate()
    [refused] = closes(engine)
    assert refused.status == REFUSED and len(close_halts(engine)) == 1
    before = sends(engine, intents.CLOSE)
    api_wallets.approve(bot_settings.exchange_url, PAPER_DEV_PRIVATE_KEY, wallet.address, NAME)
    paper_exchange.admin("POST", "/admin/faults", {"ioc_no_fill": True})
    engine.resume("operator")
    for _ in range(MAX_ATTEMPTS + 2):
        engine.iterate()
    assert sends(engine, intents.CLOSE) - before == MAX_ATTEMPTS
    assert len(closes(engine)) == MAX_ATTEMPTS  # the refused id re-sent, then 4 new ones
    [reason] = close_halts(engine)
    assert f'"; {MAX_ATTEMPTS} attempts' in reason, reason
    paper_exchange.admin("DELETE", "/admin/faults")
    engine.resume("operator")
    engine.iterate()
    assert "BTC" not in engine.gw.account().positions


def _refused_stop(settings: StackSettings, engine: TradingEngine, wallet: Any) -> tuple[str, Any]:
    """A position whose stop-loss the exchange refused (the wallet revoked, the stop cancelled by
    hand); the wallet approved again. Returns the coin and the refused record."""
    engine.reconcile()
    engine.iterate()
    master = Exchange(Account.from_key(PAPER_DEV_PRIVATE_KEY), settings.exchange_url)
    api_wallets.revoke(settings.exchange_url, PAPER_DEV_PRIVATE_KEY, NAME)
    for o in engine.gw.open_orders():
        master.cancel(o.coin, o.oid)
    engine.iterate()
    [rec] = [o for o in engine.store.all_orders() if o.intent == intents.STOP and o.status == REFUSED][:1]
    # the exchange does not remember the id of a request it refused as a whole
    assert engine.gw.order_status(rec.cloid) is None
    api_wallets.approve(settings.exchange_url, PAPER_DEV_PRIVATE_KEY, wallet.address, NAME)
    assert engine.gw.verify_signer() is None
    return rec.coin, rec


def _stops(engine: TradingEngine, coin: str) -> list[Any]:
    return [o for o in engine.gw.open_orders() if o.coin == coin and o.is_trigger and o.reduce_only]


def test_a_bot_killed_after_re_sending_a_refused_stop_keeps_it_once_after_a_restart(
        bot_settings: StackSettings, engine: TradingEngine, wallet: Any) -> None:
    """Killed once the re-sent stop reached the book but before its answer was recorded (the
    record pending): the next life keeps that one stop, places no second."""
    coin, rec = _refused_stop(bot_settings, engine, wallet)
    engine.store.update_order(rec.id, status="pending", error=None)  # what _send records before sending
    pos = engine.gw.account().positions[coin]
    engine.gw.place(coin=coin, is_buy=rec.is_buy, size=abs(pos.size), limit_px=rec.limit_px,
                    order_type={"trigger": {"triggerPx": rec.trigger_px, "isMarket": True, "tpsl": "sl"}},
                    reduce_only=True, cloid=rec.cloid)  # reached the book; then the bot died
    engine.store.close()
    with next_life(bot_settings, wallet) as again:
        assert [o.cloid for o in _stops(again, coin)] == [rec.cloid]
        assert again.store.order_by_cloid(rec.cloid).status == "open"
        # the exchange took the bot's stop: the halt its refusal took (NO STOP-LOSS) ends, as it
        # would have had the answer been read
        assert again.active_halts() == [] and again.status.health()["unprotected"] == []


def test_a_bot_killed_before_the_refused_stop_was_sent_again_places_it_once_after_a_restart(
        bot_settings: StackSettings, engine: TradingEngine, wallet: Any) -> None:
    """Killed after the record was set pending, before the request left: the next life learns the
    exchange does not know the id and places one stop (not none, not two)."""
    coin, rec = _refused_stop(bot_settings, engine, wallet)
    engine.store.update_order(rec.id, status="pending", error=None)
    engine.store.close()
    with next_life(bot_settings, wallet) as again:
        assert len(_stops(again, coin)) == 1
        assert again.store.order_by_cloid(rec.cloid).status == "unknown"
        assert again.active_halts() == []
        assert again.status.health()["unprotected"] == []


def test_a_refused_stop_re_sent_for_a_grown_position_records_what_rests(
        bot_settings: StackSettings, engine: TradingEngine, wallet: Any) -> None:
    """The position grew between the refusal and the re-send: the record is the order that rests
    (its size), one stop under the whole position."""
    coin, rec = _refused_stop(bot_settings, engine, wallet)
    master = Exchange(Account.from_key(PAPER_DEV_PRIVATE_KEY), bot_settings.exchange_url)
    pos = engine.gw.account().positions[coin]
    master.market_open(coin, pos.size > 0, abs(pos.size))
    grown = engine.gw.account().positions[coin]
    assert abs(grown.size) > abs(pos.size)
    for _ in range(6):
        engine.iterate()
    [stop] = _stops(engine, coin)
    assert stop.cloid == rec.cloid and stop.size == abs(grown.size)
    now = engine.store.order_by_cloid(rec.cloid)
    assert now.status == "open" and now.size == abs(grown.size) and now.oid == stop.oid and now.error is None
    assert engine.active_halts() == [] and engine.status.health()["unprotected"] == []


def test_a_stop_placed_by_hand_while_the_wallet_is_revoked_leaves_the_halt_naming_it(
        bot_settings: StackSettings, engine: TradingEngine) -> None:
    """Only the bot's own stop, taken by the exchange, ends the halt its refusals took: one the
    operator placed with the account's key proves nothing about the bot's signer."""
    engine.reconcile()
    engine.iterate()
    master = Exchange(Account.from_key(PAPER_DEV_PRIVATE_KEY), bot_settings.exchange_url)
    api_wallets.revoke(bot_settings.exchange_url, PAPER_DEV_PRIVATE_KEY, NAME)
    stops = {o.coin: o for o in engine.gw.open_orders() if o.is_trigger and o.reduce_only}
    for o in stops.values():
        master.cancel(o.coin, o.oid)
    engine.iterate()
    assert {h.reason.split(" ")[4] for h in engine.active_halts()} == set(stops)
    for o in stops.values():  # placed again by hand
        master.order(o.coin, o.is_buy, o.size, o.limit_px,
                     {"trigger": {"triggerPx": o.trigger_px, "isMarket": True, "tpsl": "sl"}}, reduce_only=True)
    for _ in range(3):
        engine.iterate()
    assert engine.status.health()["unprotected"] == []
    assert {h.reason.split(" ")[4] for h in engine.active_halts()} == set(stops)


def test_a_refused_stop_re_sent_for_a_position_flipped_by_hand_records_its_new_side(
        bot_settings: StackSettings, engine: TradingEngine, wallet: Any, paper_exchange: Any) -> None:
    """The position flipped by hand (never flat: the same trade, so the same id) between the
    refusal and the re-send, and the signal's close of it finds nothing to match: the stop of the
    flipped position re-sends the refused id, and the record says the side of the stop that rests."""
    coin, rec = _refused_stop(bot_settings, engine, wallet)
    master = Exchange(Account.from_key(PAPER_DEV_PRIVATE_KEY), bot_settings.exchange_url)
    pos = engine.gw.account().positions[coin]
    master.market_open(coin, pos.size < 0, abs(pos.size) * 2)
    flipped = engine.gw.account().positions[coin]
    assert (flipped.size > 0) != (pos.size > 0)
    paper_exchange.admin("POST", "/admin/faults", {"ioc_no_fill": True})  # the signal's close finds nothing
    for _ in range(MAX_ATTEMPTS + 1):  # (an iteration that sent a close places no stop)
        engine.iterate()
    [stop] = _stops(engine, coin)
    assert stop.cloid == rec.cloid  # the refused id, re-sent (the same trade)
    now = engine.store.order_by_cloid(stop.cloid)
    assert now is not None and now.status == "open"
    assert now.is_buy == stop.is_buy == (flipped.size < 0) and now.size == stop.size


def test_a_close_refused_for_its_signer_then_resumed_closes_once_on_the_refused_id(
        bot_settings: StackSettings, engine: TradingEngine, wallet: Any, paper_exchange: Any) -> None:
    """Refused for the revoked wallet (the paper exchange's auth_failure too), halted; approved
    again and resumed: one close goes out, on the refused id, its fills matched to it by id, and
    the next iterations send none."""
    flipped = position_against_the_signal(engine, bot_settings)
    paper_exchange.admin("POST", "/admin/faults", {"auth_failure": True})
    engine.iterate()
    [refused] = closes(engine)
    assert refused.status == REFUSED and engine.gw.order_status(refused.cloid) is None
    paper_exchange.admin("DELETE", "/admin/faults")
    engine.resume("operator")
    for _ in range(3):
        engine.iterate()
    assert "BTC" not in engine.gw.account().positions
    [closed] = closes(engine)
    assert closed.cloid == refused.cloid and closed.status == "filled" and closed.error is None
    assert closed.filled_size == pytest.approx(abs(flipped)) and closed.oid is not None
    fills = [f for f in engine.store.fills_since("BTC", 0) if f.cloid == closed.cloid]
    assert sum(f.size for f in fills) == pytest.approx(abs(flipped)) and {f.oid for f in fills} == {closed.oid}
    assert sends(engine, intents.CLOSE) == 2 and engine.active_halts() == []
