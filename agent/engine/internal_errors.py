"""The agent's own failures are told to the operator, not only logged.

The resident agent survives an unexpected exception in its loops: handling one check's result,
handing a decision on, an alert lifecycle pass, an exit handler, a remediation run. It logs the
traceback and goes on. That keeps it running, but what failed is then not done (the result of
that check is not acted on: no alert, no remediation), and a log nobody reads is a silent guard.

A place that catches such an exception says what its failure costs the operator, with
``log.exception(..., extra=costs("..."))``. :class:`InternalErrors`, a logging handler on the
``agent`` logger while the resident agent runs, tells each kind of failure (its logger and
message template) through :class:`~agent.engine.direct_alerts.DirectAlerts` (straight through
apprise: the store may be what fails), at once the first time and then at most once an hour
with how many more there were: a failure in a loop that runs every second is one message, not
an alert storm. The message has the exception's type and text (redacted, like every direct
message) and where it was raised; the traceback stays in the log. The database refusing
(locked, full, deleted) is not told here: the store's own path tells it.
"""
from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.engine.direct_alerts import DirectAlerts

COSTS = "botwarden_costs"
"""The ``extra`` key of a log record whose failure is told (see :func:`costs`)."""
TELL_EVERY_S = 3600.0
"""A kind of failure told again at most this often (with the count of those in between)."""


def costs(what: str) -> dict[str, str]:
    """``extra`` for ``log.exception``: ``what`` the failure leaves undone, as the operator reads it."""
    return {COSTS: what}


@dataclass
class _Kind:
    told_at: float
    since: int = 0
    """Failures of this kind since it was last told."""


class InternalErrors(logging.Handler):
    """Tells the failures logged with :func:`costs` (see the module docstring). Records may come
    from any thread; delivery is handed to the agent's event loop."""

    def __init__(self, direct: DirectAlerts, loop: asyncio.AbstractEventLoop, *,
                 every: float = TELL_EVERY_S) -> None:
        super().__init__(logging.ERROR)
        self._direct, self._loop, self._every = direct, loop, every
        self._kinds: dict[tuple[str, str], _Kind] = {}
        self.told = 0
        """Messages handed to delivery (for tests and the log)."""

    def emit(self, record: logging.LogRecord) -> None:
        what = getattr(record, COSTS, None)
        if not what:
            return
        try:
            if _store_trouble(record):
                return
            now = time.monotonic()
            key = (record.name, str(record.msg))
            kind = self._kinds.get(key)
            if kind is not None and now - kind.told_at < self._every:
                kind.since += 1
                return
            more = kind.since if kind is not None else 0
            self._kinds[key] = _Kind(told_at=now)
            title, body = _message(record, what, more)
            self._loop.call_soon_threadsafe(self._deliver, title, body)
        except Exception:  # noqa: BLE001 - logging must never raise into the code that logs
            self.handleError(record)

    def _deliver(self, title: str, body: str) -> None:
        from agent.notify.routing import RoutedMessage

        self.told += 1
        self._direct.deliver(title, body, "critical", RoutedMessage("critical", tags=("p0",)))


def _store_trouble(record: logging.LogRecord) -> bool:
    """The database refused (locked, full, gone): not a bug, and told by the store's own path
    (decisions kept and sent directly past the grace, the lost database told as it goes)."""
    import sqlalchemy.exc  # here: `costs` is imported by the light commands (events-listener)

    exc: BaseException | None = record.exc_info[1] if record.exc_info else None
    seen = 0
    while exc is not None and seen < 10:  # wrapped too (raise ... from, or during the handling of)
        if isinstance(exc, (sqlite3.OperationalError, sqlalchemy.exc.OperationalError)) \
                or type(exc) in (sqlite3.DatabaseError, sqlalchemy.exc.DatabaseError):  # "malformed"
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _message(record: logging.LogRecord, what: str, more: int) -> tuple[str, str]:
    summary = record.getMessage()
    error, where = "", ""
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        error = f": {type(exc).__name__}: {exc}"
        frames = traceback.extract_tb(exc.__traceback__)
        if frames:
            last = frames[-1]
            where = f" Raised at {os.path.basename(last.filename)}:{last.lineno} ({last.name})."
    title = f"[AGENT] internal error: {summary}"
    body = (f"The resident agent failed: {summary}{error}.\n\nWhat it costs: {what}.\n\n"
            f"The agent keeps running and tries again.{where} The agent's log has the traceback. "
            "This is a bug: please report it.")
    if more:
        body += f"\n\n{more} more failure(s) of this kind since it was last told."
    return title, body
