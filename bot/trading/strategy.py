"""MACD strategy on closed candles (pandas).

A *regime* is the sign of the MACD histogram (MACD line minus signal line): positive means
long, negative short. The strategy reports the regime of the last closed candle and the open
time of the candle on which that regime began (the crossover). That start time is the
idempotency key of the entry: one entry per regime, however often the loop runs.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

Direction = Literal["long", "short", "flat"]


@dataclass(frozen=True)
class MacdParams:
    fast: int = 3
    slow: int = 8
    signal: int = 3

    def __post_init__(self) -> None:
        if not (0 < self.fast < self.slow) or self.signal < 1:
            raise ValueError(f"MACD periods must satisfy 0 < fast < slow and signal >= 1: {self}")


@dataclass(frozen=True)
class Signal:
    """What the strategy wants for one coin after the last closed candle.

    ``regime_start_ms`` is the open time of the candle where the current regime began, or None
    when the window holds no crossover (then the regime's start is unknown and no entry is made).
    ``fresh`` is True when that crossover happened on the last closed candle.
    """

    direction: Direction
    regime_start_ms: int | None
    last_candle_ms: int | None
    fresh: bool
    histogram: float | None


FLAT = Signal("flat", None, None, False, None)


def candles_to_frame(candles: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Turn Info.candles_snapshot rows (``t``, ``T``, ``o``, ``h``, ``l``, ``c``, ``v`` as
    strings) into a float frame indexed by open time (ms), sorted, duplicates dropped."""
    if not candles:
        return pd.DataFrame(columns=["T", "open", "high", "low", "close", "volume"])
    frame = pd.DataFrame.from_records(candles)
    out = pd.DataFrame(
        {
            "T": frame["T"].astype("int64"),
            "open": frame["o"].astype(float),
            "high": frame["h"].astype(float),
            "low": frame["l"].astype(float),
            "close": frame["c"].astype(float),
            "volume": frame["v"].astype(float),
        }
    )
    out.index = frame["t"].astype("int64")
    out.index.name = "t"
    out = out[~out.index.duplicated(keep="last")].sort_index()
    return out


def closed_only(frame: pd.DataFrame, now_ms: int) -> pd.DataFrame:
    """Drop the still-forming candle: a candle is closed once its close time ``T`` has passed."""
    return frame[frame["T"] < now_ms]


def macd_histogram(close: pd.Series, params: MacdParams) -> pd.Series:
    """MACD histogram with standard (adjust=False) EMAs."""
    fast = close.ewm(span=params.fast, adjust=False).mean()
    slow = close.ewm(span=params.slow, adjust=False).mean()
    macd = fast - slow
    signal = macd.ewm(span=params.signal, adjust=False).mean()
    return macd - signal


def evaluate(frame: pd.DataFrame, params: MacdParams) -> Signal:
    """Compute the :class:`Signal` of a frame of *closed* candles.

    Fewer than ``slow + signal`` candles is not enough history: the result is flat.
    """
    if len(frame) < params.slow + params.signal:
        return FLAT
    hist = macd_histogram(frame["close"], params)
    sign = hist.apply(lambda v: 1 if v > 0 else (-1 if v < 0 else 0))
    last_sign = int(sign.iloc[-1])
    last_t = int(frame.index[-1])
    if last_sign == 0:
        return Signal("flat", None, last_t, False, float(hist.iloc[-1]))
    direction: Direction = "long" if last_sign > 0 else "short"
    # The regime began on the first candle of the trailing run of equal signs, provided a
    # candle of a different sign precedes it inside the window (else the start is unknown).
    differs = sign.ne(last_sign).to_numpy()
    start: int | None = None
    for i in range(len(differs) - 1, -1, -1):
        if differs[i]:
            start = i + 1
            break
    # Skip the warm-up region: EMAs need ``slow`` candles before a sign means anything.
    if start is None or start < params.slow:
        return Signal(direction, None, last_t, False, float(hist.iloc[-1]))
    start_ms = int(frame.index[start])
    return Signal(direction, start_ms, last_t, start == len(frame) - 1, float(hist.iloc[-1]))
