"""Risk limits: position sizing, leverage cap, daily loss halt, stop-loss prices.

Pure functions over numbers the engine reads from the exchange, so they are tested without it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from botwarden.settings import RiskSettings


def round_price(px: float, sz_decimals: int, *, is_spot: bool = False) -> float:
    """Round to Hyperliquid's price rule: at most 5 significant figures and at most
    ``6 - szDecimals`` decimals (8 for spot)."""
    decimals = (8 if is_spot else 6) - sz_decimals
    return round(float(f"{px:.5g}"), max(decimals, 0))


def floor_size(sz: float, sz_decimals: int) -> float:
    """Round a size *down* to the coin's size step, so sizing never exceeds a limit."""
    step = 10 ** sz_decimals
    return math.floor(sz * step + 1e-9) / step


@dataclass(frozen=True)
class EntryDecision:
    """Outcome of sizing one entry: ``size`` > 0 to trade, else ``reason`` says why not."""

    size: float
    notional: float
    reason: str | None = None


class RiskManager:
    """Applies :class:`~botwarden.settings.RiskSettings` to one account."""

    def __init__(self, settings: RiskSettings, *, min_order_usd: float = 10.0) -> None:
        self.settings = settings
        self.min_order_usd = min_order_usd

    def size_entry(self, *, equity: float, price: float, sz_decimals: int, exposure: float) -> EntryDecision:
        """Size a new position.

        The notional is the smaller of ``max_position_pct`` of equity and what is left under
        ``max_leverage`` given the current total ``exposure`` (sum of |position notional|).
        Below ``min_order_usd`` nothing is traded.
        """
        if equity <= 0 or price <= 0:
            return EntryDecision(0.0, 0.0, "no equity or no price")
        per_position = equity * self.settings.max_position_pct / 100.0
        headroom = equity * self.settings.max_leverage - exposure
        notional = min(per_position, headroom)
        size = floor_size(notional / price, sz_decimals)
        actual = size * price
        if size <= 0 or actual < self.min_order_usd:
            why = "leverage cap reached" if headroom < per_position else "position below exchange minimum"
            return EntryDecision(0.0, actual, why)
        return EntryDecision(size, actual)

    def daily_loss_pct(self, *, day_start_equity: float, equity: float) -> float:
        """Loss since the start of the UTC day as a positive percent (a gain is negative)."""
        if day_start_equity <= 0:
            return 0.0
        return (day_start_equity - equity) / day_start_equity * 100.0

    def daily_loss_breached(self, *, day_start_equity: float, equity: float) -> bool:
        """True when the day's loss reached ``daily_loss_limit_pct``: new entries must stop."""
        loss = self.daily_loss_pct(day_start_equity=day_start_equity, equity=equity)
        return loss >= self.settings.daily_loss_limit_pct

    def stop_price(self, *, entry_px: float, is_long: bool, sz_decimals: int) -> float:
        """Trigger price of the reduce-only stop-loss, ``stop_loss_pct`` away from entry."""
        pct = self.settings.stop_loss_pct / 100.0
        raw = entry_px * (1 - pct) if is_long else entry_px * (1 + pct)
        return round_price(raw, sz_decimals)


def aggressive_price(mid: float, *, is_buy: bool, slippage_pct: float, sz_decimals: int) -> float:
    """Limit price of a marketable (IOC) order: ``slippage_pct`` through the mid."""
    factor = 1 + slippage_pct / 100.0 if is_buy else 1 - slippage_pct / 100.0
    return round_price(mid * factor, sz_decimals)
