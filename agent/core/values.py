"""Value types shared by the playbook language and the modules."""
from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

MAX_DURATION = 3650 * 86400.0
"""Longest duration accepted (ten years): longer ones are mistakes, and past a few thousand
years they overflow the scheduler's date arithmetic."""
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_COMPOUND_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: Any) -> float:
    """Parse ``15s``, ``5m``, ``2h``, ``1d``, ``1h30m``, ``250ms`` or a number of seconds.

    Returns seconds as a float. Raises ``ValueError`` with an example of the accepted
    forms, so a playbook error can say what to write instead.
    """
    return _bounded(_seconds(value))


def _seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 15s, 5m, 2h or 1d, not a boolean")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        m = _DURATION_RE.match(text)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
        parts = _COMPOUND_RE.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            return sum(float(n) * _UNITS[u] for n, u in parts)
    raise ValueError(f"{value!r} is not a duration; write it like 15s, 5m, 2h, 1d or 1h30m")


def _bounded(seconds: float) -> float:
    if math.isnan(seconds):
        raise ValueError("a duration must be a number of seconds or like 15s, 5m, 2h")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_DURATION:
        raise ValueError(f"{format_duration(seconds) if math.isfinite(seconds) else 'infinity'} is longer than "
                         f"the longest duration accepted ({format_duration(MAX_DURATION)})")
    return seconds


def format_duration(seconds: float) -> str:
    """Render seconds the way an operator writes them: ``2h5m``, ``45s``, ``250ms``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    total = round(seconds)
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            n, total = divmod(total, size)
            out.append(f"{n}{unit}")
    return "".join(out) or "0s"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
"""A duration in seconds, written in YAML as ``15s``, ``5m``, ``2h``."""


def check_timezone(value: str) -> str:
    """An IANA timezone name, or ValueError saying what to write instead."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {value!r}; use an IANA name such as UTC or Europe/Paris") from None
    return value


Timezone = Annotated[str, AfterValidator(check_timezone)]
"""An IANA timezone name (``UTC``, ``Europe/Paris``), validated."""
