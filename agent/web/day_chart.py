"""The trading page's chart: the report's figure (:mod:`agent.reports.charts`) for today, as SVG.

Drawn in a child process (matplotlib never enters the page's process either), at most once per
``MIN_INTERVAL_S`` and only when the data changed; the page shows the last drawing meanwhile
and is told (``on_ready``) when a new one is there.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from agent.reports.charts import ChartData, ChartError, render_in_child_async

log = logging.getLogger("agent.web")
MIN_INTERVAL_S = 30.0
TRADES_DRAWN = 30


def chart_data(snap: Any, host: str) -> ChartData | None:
    """Today's equity (the bot's snapshots), the daily loss limit and the last closed trades."""
    day = snap.day
    if day is None and not snap.trades:
        return None
    return ChartData(
        title=f"{host}: today (UTC)" if day is None else f"{host}: {day.day} (UTC)",
        equity=[(at.isoformat(), eq) for at, eq in day.points] if day else [],
        day_start=day.day_start if day else None, limit_pct=day.limit_pct if day else None,
        trades=[(f"#{t.id} {t.coin}", t.pnl) for t in snap.trades[-TRADES_DRAWN:]],
    )


class DayChart:
    def __init__(self, host: str, on_ready: Callable[[], None] | None = None) -> None:
        self.host = host
        self.on_ready = on_ready
        self._svg: bytes | None = None
        self._version: str | None = None
        self._wanted: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = -MIN_INTERVAL_S

    def svg(self, name: str) -> bytes | None:
        return self._svg if name == "day" else None

    async def ensure(self, snap: Any) -> str | None:
        """The version of the drawing to show now; starts a new drawing when the data changed."""
        data = chart_data(snap, self.host)
        if data is None:
            return self._version
        text = data.to_json()
        key = hashlib.sha256(text.encode()).hexdigest()[:12]
        due = time.monotonic() - self._started >= MIN_INTERVAL_S or self._svg is None
        if key != self._version and key != self._wanted and self._task is None and due:
            self._wanted, self._started = key, time.monotonic()
            self._task = asyncio.get_running_loop().create_task(self._draw(data, key), name="web-chart")
        return self._version

    async def _draw(self, data: ChartData, key: str) -> None:
        try:
            self._svg = await render_in_child_async(data, "svg")
            self._version = key
        except ChartError as exc:
            log.warning("the trading chart was not drawn: %s", exc)
        finally:
            self._task, self._wanted = None, None
        if self.on_ready is not None and self._version == key:
            self.on_ready()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
