"""Deterministic client order ids: the idempotency key of every order the bot sends.

The same (strategy, coin, candle time, intent, generation) always yields the same
:class:`~hyperliquid.utils.types.Cloid`, so a restarted or retrying bot recomputes the id of an
order it may already have sent and can ask the exchange about it instead of sending it twice.
"""
from __future__ import annotations

import hashlib

from hyperliquid.utils.types import Cloid

# Intents the engine uses; part of the hashed key, so renaming one changes every id.
OPEN_LONG = "open_long"
OPEN_SHORT = "open_short"
CLOSE = "close"
STOP = "stop"


def make_cloid(strategy: str, coin: str, candle_time_ms: int, intent: str, generation: int = 0) -> Cloid:
    """Return the 16-byte client order id for one intended order.

    ``generation`` distinguishes deliberate re-sends of the same intent (a stop-loss replaced
    after it vanished, a second close attempt); it is 0 for the first order of an intent.
    """
    key = f"{strategy}|{coin}|{int(candle_time_ms)}|{intent}|{int(generation)}"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return Cloid.from_str("0x" + digest)
