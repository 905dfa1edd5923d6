"""Fault injection for drills and tests (set through ``POST /admin/faults``).

Faults apply to ``/info``, ``/exchange`` and ``/ws`` only (a websocket ``post`` meets the
request faults as HTTP does); ``/admin`` always answers so a drill
can be ended. They live in memory (a restart clears them). Probabilities use a generator seeded from
the market seed, so a drill replays the same way.

Fields (all optional in a POST, which merges into the current set):

``latency_ms``           added delay before every answer (0 to 60000 ms)
``error_rate``           probability of a 500 ("Internal Server Error")
``rate_limit_rate``      probability of a 429 (body ``null``, as the SDK expects)
``weight_per_minute``    IP weight budget per rolling minute (a whole number >= 1, or null for no
                         budget); past it every request gets 429. Off by default: every client of
                         every local stack shares 127.0.0.1, and test stacks run far above an idle
                         stack's ~400-480 (docs/bot-and-exchange.md, "Rate limits")
``auth_failure``         every signed request is rejected as an unknown signer
``outage``               ``"503"``: 503 on everything; ``"refuse"``: the connection is closed at once;
                         either way every websocket connection is dropped and new ones refused
``drop_responses``       the next N (0 to 100) ``/exchange`` requests are applied, then the connection
                         is closed without an answer (the client cannot know the outcome)
``ioc_no_fill``          every new IOC order finds nothing to match inside its limit (a thin or
                         gapped book) and is refused with the exchange's "could not immediately
                         match" error; resting orders and triggers behave as usual
``info_errors``          ``/info`` request types (``userFills``, ``allMids``, ``orderStatus``...) answered
                         500 every time, over HTTP and websocket posts: one read failing while the
                         others answer
``ws_outage``            every websocket connection is dropped and new ones are refused (503)
                         until cleared
``ws_stall``             websocket channels (as named on the wire: ``allMids``, ``l2Book``,
                         ``user``, ``post``...) that stop sending; connections stay up
``ws_delay_ms``          added delay before every websocket message (order is kept; 0 to 60000 ms)

``POST /admin/ws/drop`` (``bot drill ws-drop``) drops every connection once; clients reconnect.
"""
from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Outage = Literal["off", "503", "refuse"]
WS_WIRE_CHANNELS = ("allMids", "l2Book", "trades", "candle", "bbo", "orderUpdates", "userFills", "user",
                    "webData2", "userNonFundingLedgerUpdates", "activeAssetCtx", "clearinghouseState", "openOrders",
                    "post", "pong", "subscriptionResponse")


@dataclass
class Faults:
    latency_ms: float = 0.0
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    weight_per_minute: int | None = None
    auth_failure: bool = False
    outage: Outage = "off"
    drop_responses: int = 0
    ws_outage: bool = False
    ws_stall: list[str] = field(default_factory=list)
    info_errors: list[str] = field(default_factory=list)
    ws_delay_ms: float = 0.0
    ioc_no_fill: bool = False

    def update(self, values: dict[str, Any]) -> None:
        """Merge ``values``; raises ValueError naming an unknown field or a bad value. Every value
        is checked before any is applied: a refused update changes nothing."""
        staged = Faults(**asdict(self))
        staged._apply(values)
        for key in values:
            setattr(self, key, getattr(staged, key))

    def _apply(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if key not in self.__dataclass_fields__:
                raise ValueError(f"unknown fault {key!r}; known: {', '.join(self.__dataclass_fields__)}")
            if key in _FLAGS and not isinstance(value, bool):
                raise ValueError(f"{key} must be true or false, not {value!r}")
            if key in _NUMBERS:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise ValueError(f"{key} must be a number, not {value!r}")
            if key == "weight_per_minute" and value is not None and (
                    isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"weight_per_minute must be a whole number >= 1 (requests' weight allowed per "
                                 f"rolling minute; Hyperliquid's is 1200 per IP), or null for no budget, "
                                 f"not {value!r}")
            if key == "drop_responses" and (isinstance(value, bool) or not isinstance(value, int)
                                            or not 0 <= value <= MAX_DROP_RESPONSES):
                raise ValueError(f"drop_responses must be a whole number from 0 to {MAX_DROP_RESPONSES} (answers "
                                 f"lost, one per request), not {value!r}")
            if key == "outage":
                value = str(value)  # `outage=503` arrives as a number from YAML/JSON callers
            if key == "outage" and value not in ("off", "503", "refuse"):
                raise ValueError("outage must be 'off', '503' or 'refuse'")
            if key in ("error_rate", "rate_limit_rate") and not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{key} must be within [0, 1]")
            if key == "ws_stall":
                value = [value] if isinstance(value, str) else value
                if not isinstance(value, list) or any(c not in WS_WIRE_CHANNELS for c in value):
                    raise ValueError(f"ws_stall takes channel names among {', '.join(WS_WIRE_CHANNELS)}")
            if key == "info_errors":
                value = [value] if isinstance(value, str) else value
                if not isinstance(value, list) or not all(isinstance(t, str) and t for t in value):
                    raise ValueError(f"info_errors takes /info request types (userFills, allMids, orderStatus...), "
                                     f"not {value!r}")
            if key in ("latency_ms", "ws_delay_ms") and not 0 <= float(value) <= MAX_DELAY_MS:
                raise ValueError(f"{key} must be from 0 to {MAX_DELAY_MS} (ms; every client gives up long "
                                 f"before: a longer delay rehearses an outage, `outage=503`), not {value!r}")
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_FLAGS = ("auth_failure", "ws_outage", "ioc_no_fill")
MAX_DELAY_MS = 60_000
"""Bound of ``latency_ms`` and ``ws_delay_ms``: a minute is past every client's timeout (the SDK's
default is none, the bot's 10 s); a mistyped 1500000 would hold every answer for 25 minutes."""
MAX_DROP_RESPONSES = 100
"""Bound of ``drop_responses``: enough for any drill; a mistyped count would lose answers for hours."""
_NUMBERS = ("latency_ms", "error_rate", "rate_limit_rate", "ws_delay_ms")


@dataclass
class WeightMeter:
    """Rolling one-minute IP weight accounting (Hyperliquid: 1200 per minute per IP)."""

    window_s: float = 60.0
    _events: deque[tuple[float, int]] = field(default_factory=deque)
    _total: int = 0

    def add(self, weight: int, now: float | None = None) -> int:
        """Record ``weight`` and return the weight used in the current window, this included."""
        now = time.monotonic() if now is None else now
        self._events.append((now, weight))
        self._total += weight
        while self._events and self._events[0][0] <= now - self.window_s:
            self._total -= self._events.popleft()[1]
        return self._total

    @property
    def used(self) -> int:
        return self._total

    def reset(self) -> None:
        self._events.clear()
        self._total = 0


def seeded_random(seed: int) -> random.Random:
    return random.Random(seed ^ 0x5EED)
