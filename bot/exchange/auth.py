"""Who signed an ``/exchange`` request, and is its nonce acceptable - as Hyperliquid decides.

The signer of an L1 action is recovered with the SDK's own helpers (same msgpack action hash,
same phantom agent) and eth_account. The paper exchange signs as a non-mainnet venue, so the
phantom agent source is ``"b"`` (the SDK picks that for any base URL other than mainnet's).
"""
from __future__ import annotations

from typing import Any

from hyperliquid.utils.signing import recover_agent_or_user_from_l1_action

from bot.exchange import rules


def recover_signer(payload: dict[str, Any]) -> str | None:
    """Lower-case address that signed ``payload``'s action, None when it cannot be recovered."""
    try:
        sig = payload["signature"]
        signature = {"r": sig["r"], "s": sig["s"], "v": int(sig["v"])}
        address = recover_agent_or_user_from_l1_action(
            payload["action"], signature, payload.get("vaultAddress"), int(payload["nonce"]),
            payload.get("expiresAfter"), False,
        )
    except Exception:  # any malformed signature/action is "cannot recover", never a 500
        return None
    return str(address).lower()


def nonce_error(nonce: int, seen: list[int], now_ms: int) -> str | None:
    """Hyperliquid's nonce rules: within (now - 2 days, now + 1 day), never reused, and larger
    than the smallest of the last 100 nonces of the signer (``seen``, ascending)."""
    if nonce <= now_ms - rules.NONCE_PAST_MS:
        return rules.err_nonce_too_low(nonce, now_ms - rules.NONCE_PAST_MS)
    if nonce >= now_ms + rules.NONCE_FUTURE_MS:
        return rules.err_nonce_too_high(nonce, now_ms + rules.NONCE_FUTURE_MS)
    if seen and len(seen) >= rules.NONCE_SET_SIZE and nonce <= seen[0]:
        return rules.err_nonce_too_low(nonce, seen[0])
    if nonce in seen:
        return rules.err_duplicate_nonce(nonce)
    return None
