"""Risk sizing, daily loss, stop prices, and cloid determinism."""
from __future__ import annotations

import pytest

from bot.trading.cloid import OPEN_LONG, STOP, make_cloid
from bot.trading.risk import RiskManager, aggressive_price, floor_size, round_price
from botwarden.settings import RiskSettings

RISK = RiskManager(RiskSettings(max_position_pct=10, max_leverage=3, daily_loss_limit_pct=5, stop_loss_pct=2))


@pytest.mark.parametrize(
    "equity, price, decimals, exposure, size, reason",
    [
        (10_000, 50_000, 5, 0, 0.02, None),  # 10% of 10k = 1000 USD / 50k
        (10_000, 3_000, 4, 0, 0.3333, None),  # floored to the size step, never above the limit
        (10_000, 50_000, 5, 29_500, 0.01, None),  # leverage headroom 500 USD < 1000 USD
        (10_000, 50_000, 5, 30_000, 0.0, "leverage cap reached"),
        (50, 50_000, 5, 0, 0.0, "position below exchange minimum"),  # 5 USD < 10 USD minimum
        (0, 50_000, 5, 0, 0.0, "no equity or no price"),
    ],
)
def test_size_entry(equity: float, price: float, decimals: int, exposure: float, size: float,
                    reason: str | None) -> None:
    d = RISK.size_entry(equity=equity, price=price, sz_decimals=decimals, exposure=exposure)
    assert d.size == pytest.approx(size)
    assert d.reason == reason
    if d.size:
        assert d.notional <= equity * 0.10 + 1e-9


@pytest.mark.parametrize(
    "start, now, breached",
    [(10_000, 10_000, False), (10_000, 9_501, False), (10_000, 9_500, True), (10_000, 8_000, True),
     (10_000, 12_000, False)],
)
def test_daily_loss_limit(start: float, now: float, breached: bool) -> None:
    assert RISK.daily_loss_breached(day_start_equity=start, equity=now) is breached


def test_stop_price_is_below_long_entry_and_above_short_entry() -> None:
    assert RISK.stop_price(entry_px=50_000, is_long=True, sz_decimals=5) == 49_000
    assert RISK.stop_price(entry_px=50_000, is_long=False, sz_decimals=5) == 51_000


def test_price_rounding_follows_exchange_rules() -> None:
    assert round_price(123_456.7, 5) == 123_460  # 5 significant figures
    assert round_price(1.2345678, 2) == 1.2346  # 6 - szDecimals decimals, 5 sig figs
    assert floor_size(0.129999, 2) == 0.12
    assert aggressive_price(100.0, is_buy=True, slippage_pct=1, sz_decimals=2) == 101.0
    assert aggressive_price(100.0, is_buy=False, slippage_pct=1, sz_decimals=2) == 99.0


def test_cloid_is_deterministic_and_distinct_per_component() -> None:
    a = make_cloid("macd", "BTC", 1_700_000_000_000, OPEN_LONG)
    assert a.to_raw() == make_cloid("macd", "BTC", 1_700_000_000_000, OPEN_LONG).to_raw()
    assert a.to_raw().startswith("0x") and len(a.to_raw()) == 34
    variants = {
        make_cloid("macd2", "BTC", 1_700_000_000_000, OPEN_LONG).to_raw(),
        make_cloid("macd", "ETH", 1_700_000_000_000, OPEN_LONG).to_raw(),
        make_cloid("macd", "BTC", 1_700_000_060_000, OPEN_LONG).to_raw(),
        make_cloid("macd", "BTC", 1_700_000_000_000, STOP).to_raw(),
        make_cloid("macd", "BTC", 1_700_000_000_000, OPEN_LONG, generation=1).to_raw(),
    }
    assert a.to_raw() not in variants and len(variants) == 5


def test_cloid_value_is_pinned() -> None:
    # Changing the derivation would orphan every order a running bot has in flight.
    assert make_cloid("macd", "BTC", 0, OPEN_LONG).to_raw() == PINNED


# sha256("macd|BTC|0|open_long|0")[:16 bytes]
PINNED = "0x268eaec62451af8792ea74f246c57b01"
