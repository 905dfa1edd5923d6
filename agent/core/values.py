"""Value types shared by the playbook language and the modules.

Scalars are taken as written (the models validate in pydantic's strict mode: ``"2"`` is not
2, ``true`` is not 1) and every number has a range that says what makes sense: a duration field
is one of the ranged types below (:class:`Between`), an integer or float field carries
``ge``/``gt`` and ``le``/``lt``. ``tests/agent/playbook/test_scalar_fields.py`` walks every
model (playbook, inventory, stack settings, every module's parameters) and fails on a numeric
field without both bounds or a scalar that accepts a value of another type.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, GetCoreSchemaHandler, PlainSerializer
from pydantic_core import core_schema

MAX_DURATION = 3650 * 86400.0
"""Longest duration accepted (ten years): longer ones are mistakes, and past a few thousand
years they overflow the scheduler's date arithmetic."""
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_COMPOUND_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


class ParamProblem(ValueError):
    """A model validator's refusal about one of the model's values, ``at`` the keys below the
    model (``"patterns", "secret"``): load-time validation points at that value, not at the
    mapping (a validator that reads several fields at once would otherwise be reported at the
    first key of the module's parameters, lines away from the mistake)."""

    def __init__(self, message: str, *at: str | int) -> None:
        super().__init__(message)
        self.at = at


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
        try:
            return float(value)
        except OverflowError:  # an integer of hundreds of digits: too long, said as such by _bounded
            return math.inf
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
"""A duration in seconds, written in YAML as ``15s``, ``5m``, ``2h``, without a range of its own
(only the ten-year cap): fields use a ranged type (:class:`Between`)."""


@dataclass(frozen=True)
class Between:
    """A duration field with a range: ``Annotated[float, Between(0.1, 3600)]`` is written like
    ``15s``, ``5m``, ``2h`` (:func:`parse_duration`), must lie within ``lo``..``hi`` seconds
    (``lo_open``: longer than ``lo``) and is serialized as written (:func:`format_duration`).
    Read by the module reference and the tests of the models."""

    lo: float
    hi: float
    lo_open: bool = False
    why: str = ""
    """Said when a value is refused: what the bound protects."""

    def __call__(self, seconds: float) -> float:
        reason = f" ({self.why})" if self.why else ""
        if seconds < self.lo or (self.lo_open and seconds == self.lo):
            shortest = f"longer than {format_duration(self.lo)}" if self.lo_open else f"at least {format_duration(self.lo)}"
            raise ValueError(f"{format_duration(seconds)} is too short: it must be {shortest}{reason}")
        if seconds > self.hi:
            raise ValueError(f"{format_duration(seconds)} is too long: at most {format_duration(self.hi)} is "
                             f"accepted here{reason}")
        return seconds

    def __str__(self) -> str:
        lo = f"more than {format_duration(self.lo)}" if self.lo_open else format_duration(self.lo)
        return f"{lo} to {format_duration(self.hi)}"

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(
            parse_duration, core_schema.no_info_after_validator_function(self, handler(source)),
            serialization=core_schema.plain_serializer_function_ser_schema(
                format_duration, return_schema=core_schema.str_schema()))


MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
MIN_INTERVAL = 0.1
"""The shortest interval a check, a play or a heartbeat may run at: more often measures the
scheduler (its p99 lateness is ~25 ms), not the bot."""
HARD_WITHIN_MAX = DAY
"""Longest time a problem may take to become hard (``for``, or ``after`` results at the check's
interval): an alert that cannot fire within a day is not an alert."""

Interval = Annotated[float, Between(MIN_INTERVAL, 7 * DAY, why="100ms to a week; a cron schedule runs rarer")]
"""How often something runs (``every``)."""
Timeout = Annotated[float, Between(MIN_INTERVAL, HOUR, why="below 100ms it always fires, above an hour it hides a hang")]
"""How long one probe, request or task may take."""
DEFAULT_TASK_TIMEOUT = 60.0
"""How long a task may take when it says nothing (``timeout:``); a module's own request timeout
is bounded by it."""
HoldFor = Annotated[float, Between(0.0, HARD_WITHIN_MAX, lo_open=True, why="a problem must become hard within a day")]
"""How long a problem lasts before it is hard (``for``)."""
Pause = Annotated[float, Between(0.0, HOUR)]
"""A pause between two attempts."""
Grace = Annotated[float, Between(0.0, DAY, why="a wait longer than a day delays an alert or a fix by more than a day")]
"""A wait that may be 0 (cooldowns, grace periods, group waits)."""
Lookback = Annotated[float, Between(1.0, 31 * DAY)]
"""A window read backwards from now (logs, fills)."""


def check_timezone(value: str) -> str:
    """An IANA timezone name, or ValueError saying what to write instead."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {value!r}; use an IANA name such as UTC or Europe/Paris") from None
    return value


Timezone = Annotated[str, AfterValidator(check_timezone)]
"""An IANA timezone name (``UTC``, ``Europe/Paris``), validated."""
