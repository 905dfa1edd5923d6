"""MACD signals on known series."""
from __future__ import annotations

import pandas as pd
import pytest

from bot.trading.strategy import MacdParams, candles_to_frame, closed_only, evaluate, macd_histogram

MIN = 60_000
P = MacdParams(fast=3, slow=8, signal=3)


def frame_of(closes: list[float]) -> pd.DataFrame:
    rows = [
        {"t": i * MIN, "T": (i + 1) * MIN - 1, "o": str(c), "h": str(c), "l": str(c), "c": str(c), "v": "1"}
        for i, c in enumerate(closes)
    ]
    return candles_to_frame(rows)


def test_histogram_matches_hand_computed_emas() -> None:
    close = pd.Series([1.0, 2.0, 3.0, 4.0])
    hist = macd_histogram(close, MacdParams(fast=1, slow=3, signal=1))
    # fast EMA(span=1) is the series; signal(span=1) of MACD is MACD itself -> histogram 0
    assert hist.abs().max() == pytest.approx(0.0)
    h2 = macd_histogram(close, MacdParams(fast=1, slow=3, signal=3))
    slow = [1.0, 1.5, 2.25, 3.125]  # alpha = 0.5
    macd = [c - s for c, s in zip([1, 2, 3, 4], slow, strict=True)]
    sig = [macd[0]]
    for m in macd[1:]:
        sig.append(0.5 * m + 0.5 * sig[-1])
    assert list(h2) == pytest.approx([m - s for m, s in zip(macd, sig, strict=True)])


def test_falling_then_rising_series_is_long_with_regime_start_at_the_cross() -> None:
    closes = [100 - i for i in range(20)] + [80 + 2 * i for i in range(10)]
    sig = evaluate(frame_of(closes), P)
    assert sig.direction == "long"
    hist = macd_histogram(frame_of(closes)["close"], P)
    first_positive = next(i for i in range(20, 30) if hist.iloc[i] > 0)
    assert sig.regime_start_ms == first_positive * MIN
    assert sig.last_candle_ms == 29 * MIN
    assert not sig.fresh


def test_rising_then_falling_series_is_short_and_fresh_on_the_crossing_candle() -> None:
    closes = [100 + i for i in range(20)] + [119.0]
    hist = macd_histogram(frame_of(closes)["close"], P)
    assert hist.iloc[-1] < 0 < hist.iloc[-2]
    sig = evaluate(frame_of(closes), P)
    assert (sig.direction, sig.fresh, sig.regime_start_ms) == ("short", True, 20 * MIN)


def test_regime_start_is_stable_as_candles_are_added() -> None:
    base = [100 - i for i in range(20)] + [80 + 2 * i for i in range(6)]
    a = evaluate(frame_of(base), P)
    b = evaluate(frame_of([*base, 93.0, 95.0]), P)
    assert a.direction == b.direction == "long"
    assert a.regime_start_ms == b.regime_start_ms is not None


def test_no_cross_in_window_means_no_known_regime_start() -> None:
    sig = evaluate(frame_of([100 + i * i for i in range(30)]), P)
    assert sig.direction == "long" and sig.regime_start_ms is None


def test_too_little_history_is_flat() -> None:
    assert evaluate(frame_of([1.0, 2.0, 3.0]), P).direction == "flat"


def test_closed_only_drops_the_forming_candle() -> None:
    f = frame_of([1.0, 2.0, 3.0])
    assert list(closed_only(f, now_ms=2 * MIN + 10).index) == [0, MIN]


def test_invalid_periods_are_refused() -> None:
    with pytest.raises(ValueError):
        MacdParams(fast=8, slow=3, signal=3)
