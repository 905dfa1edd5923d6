"""Hyperliquid's order rules and error strings, in one place.

Error texts are Hyperliquid's own (its error-responses page and live answers quoted in public
SDK issues); order-level errors end in `` asset=N`` like the live API. The few marked
``# paper`` have no published wording and are this exchange's own.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

MIN_NOTIONAL = 10.0
TAKER_FEE = 0.00045  # base tier, perps
MAKER_FEE = 0.00015
NONCE_SET_SIZE = 100
NONCE_PAST_MS = 2 * 86_400_000  # nonce must be > now - 2 days
NONCE_FUTURE_MS = 86_400_000  # and < now + 1 day
SCHEDULE_CANCEL_MIN_DELAY_MS = 5_000
MARKET_TRIGGER_SLIPPAGE = 0.10  # a triggered market order crosses up to 10% from the mark
REFERENCE_BAND = 0.80  # an order (limit or trigger price) at most 80% away from the reference price (mark)


def err_ioc_no_match(asset: int) -> str:
    return f"Order could not immediately match against any resting orders. asset={asset}"


def err_reduce_only(asset: int) -> str:
    return f"Reduce only order would increase position. asset={asset}"


def err_min_notional(asset: int) -> str:
    return f"Order must have minimum value of $10. asset={asset}"


def err_invalid_price(asset: int) -> str:
    return f"Order has invalid price. asset={asset}"


def err_tick_size(asset: int) -> str:
    return f"Price must be divisible by tick size. asset={asset}"


def err_invalid_size(asset: int) -> str:
    return f"Order has invalid size. asset={asset}"


def err_insufficient_margin(asset: int) -> str:
    return f"Insufficient margin to place order. asset={asset}"


def err_post_only(bid: str, ask: str, asset: int) -> str:
    return f"Post only order would have immediately matched, bbo was {bid}@{ask}. asset={asset}"


def err_cancel_missing(asset: int) -> str:
    return f"Order was never placed, already canceled, or filled. asset={asset}"


def err_far_from_reference() -> str:
    return "Order price cannot be more than 80% away from the reference price"


def err_duplicate_cloid(cloid: str, asset: int) -> str:
    return f"Duplicate cloid {cloid}: an order of this account already has it. asset={asset}"  # paper


def err_modify_asset(coin: str) -> str:
    return f"Cannot modify an order of {coin} into an order of another asset."  # paper


def err_invalid_tpsl(asset: int) -> str:
    return f"Invalid TP/SL price. asset={asset}"


def err_unknown_user(address: str) -> str:
    return f"User or API Wallet {address} does not exist."


def err_duplicate_nonce(nonce: int) -> str:
    return f"Invalid nonce: duplicate nonce {nonce}"


def err_nonce_too_low(nonce: int, least: int) -> str:
    return f"Invalid nonce: nonce too low {nonce} < {least}"


def err_nonce_too_high(nonce: int, most: int) -> str:
    return f"Invalid nonce: nonce too high {nonce} > {most}"  # paper


def err_schedule_cancel_volume(required: float, traded: float) -> str:
    return (f"Cannot set scheduled cancel time until enough volume traded. "
            f"Required: ${required:.0f}. Traded: ${traded:.2f}.")


def err_schedule_cancel_too_soon() -> str:
    return "Scheduled cancel time too soon. It must be at least 5 seconds in the future."  # paper


def err_schedule_cancel_daily_limit(limit: int) -> str:
    return f"Too many scheduled cancel triggers today (max {limit})."  # paper


def err_builder_not_approved() -> str:
    return "Builder fee has not been approved."  # Hyperliquid's words; the final period is paper


def err_action_expired(expires_after: int, now: int) -> str:
    return f"Action expired: expiresAfter {expires_after} is before now {now}."  # paper


def err_expires_after_user_signed(kind: str) -> str:
    return f"expiresAfter is not supported for user-signed action {kind}."  # paper: documented rule


def err_action_nonce_mismatch(field: str, value: object, nonce: int) -> str:
    return f"Action {field} {value} must match the request nonce {nonce}."  # paper


def err_unsupported(what: str, why: str) -> str:
    return f"Unsupported by the paper exchange: {what} ({why})."  # paper: Hyperliquid supports it


def err_agent_is_user(agent: str) -> str:
    return f"Cannot approve {agent} as an API wallet: it is a user."  # paper


def err_agent_of_other(agent: str) -> str:
    return f"API wallet {agent} is already approved for another account."  # paper


def err_too_many_agents(limit: int) -> str:
    return f"Too many named API wallets (max {limit}); re-approve an existing name to replace it."  # paper


def err_agent_valid_until(valid_until: int, now: int) -> str:
    return f"Invalid valid_until {valid_until}: must be after now {now}."  # paper


def err_send_to_agent(address: str) -> str:
    return f"Cannot send to {address}: it is an API wallet, which signs for its master and holds no funds."  # paper


def err_insufficient_balance(amount: float, available: float) -> str:
    return f"Insufficient balance: {amount:.6f} requested, {available:.6f} withdrawable."  # paper


def err_bad_amount(value: object) -> str:
    return f"Invalid amount {value!r}."  # paper


def err_isolated_margin(reason: str) -> str:
    return f"Cannot update isolated margin: {reason}."  # paper


def err_leverage_type_with_position() -> str:
    return "Cannot switch leverage type with open position."  # paper


def err_leverage_insufficient_margin(leverage: int, required: float, account_value: float) -> str:
    return (f"Insufficient margin to set leverage {leverage}x: the open position and orders need "
            f"{required:.2f} USDC of margin, the account is worth {account_value:.2f}.")  # paper


def err_builder_too_small(builder: str, least: float, value: float) -> str:
    return (f"Builder {builder} must have at least {least:.0f} USDC in perps account value "
            f"(has {value:.2f}).")  # paper wording of Hyperliquid's documented rule


def err_builder_fee_too_high(rate: str) -> str:
    return f"Builder fee rate {rate} is above the maximum of 0.1%."  # paper


def err_too_many_requests(used: int, cap: int, volume: float) -> str:
    return (f"Too many cumulative requests sent ({used} > {cap}) for cumulative volume traded "
            f"${volume:.2f}. Place taker orders to free up 1 request per USDC traded.")


def parse_decimal(wire: object) -> Decimal | None:
    """A wire number ("60123.5" or a JSON number) as Decimal, None when malformed."""
    try:
        d = Decimal(str(wire))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def _decimals(d: Decimal) -> int:
    exp = d.normalize().as_tuple().exponent
    return max(0, -int(exp))


def valid_perp_price(px: Decimal, sz_decimals: int) -> bool:
    """Hyperliquid's tick rule: > 0, at most 5 significant figures (integers always allowed),
    and at most ``6 - szDecimals`` decimals."""
    return px > 0 and on_tick(px, sz_decimals)


def on_tick(px: Decimal, sz_decimals: int) -> bool:
    """Whether a positive ``px`` lies on the tick grid: at most 5 significant figures (integers
    always allowed) and at most ``6 - szDecimals`` decimals. Off the grid, Hyperliquid answers
    "Price must be divisible by tick size."; a price <= 0 is "Order has invalid price."."""
    if _decimals(px) > 6 - sz_decimals:
        return False
    if px == px.to_integral_value():
        return True
    digits = px.normalize().as_tuple().digits
    return len(digits) <= 5


def valid_size(sz: Decimal, sz_decimals: int) -> bool:
    """Lot rule: > 0 and at most ``szDecimals`` decimals."""
    return sz > 0 and _decimals(sz) <= sz_decimals


def wire(x: float, decimals: int = 8) -> str:
    """A float as Hyperliquid's string-encoded number ("60123.0", "0.0015")."""
    s = f"{x:.{decimals}f}".rstrip("0")
    if s.endswith("."):
        s += "0"
    if s in ("-0.0", ""):
        s = "0.0"
    return s
