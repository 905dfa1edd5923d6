"""API call volume for a report, from the bot's Prometheus ``/metrics`` at report time.

What it covers, exactly: the bot counts every exchange API call it makes in
``api_requests_total{method, status}`` (``status`` ``ok`` or ``error``; ``bot.trading.metrics``).
A Prometheus counter lives as long as the bot process, so the figures are **the calls since the
bot process started** (``process_start_time_seconds``), read when the report is made: not the
calls of the report's window (a restart inside the window resets them). The report says so,
and shows the volume only for windows that end now (a report of a past day gets none).

:func:`parse_api_calls` is pure; :func:`fetch_api_calls` reads the endpoint (a coroutine: it goes
through the agent's shared HTTP session, :mod:`agent.http`, capped) and parses it in a worker thread.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from agent.exposition import relevant_text
from agent.http import RequestFailed, get_ok

REQUESTS_SAMPLE = "api_requests_total"
START_SAMPLE = "process_start_time_seconds"


@dataclass(frozen=True)
class MethodCalls:
    method: str
    calls: int
    failed: int


@dataclass(frozen=True)
class ApiCallVolume:
    """Exchange API calls of the bot process, as of ``as_of`` (see the module docstring)."""

    calls: int
    failed: int
    by_method: tuple[MethodCalls, ...]
    as_of: datetime
    process_started_at: datetime | None

    @property
    def failed_pct(self) -> float | None:
        return self.failed / self.calls * 100.0 if self.calls else None


def parse_api_calls(metrics_text: str, as_of: datetime) -> ApiCallVolume:
    """Read ``api_requests_total`` and ``process_start_time_seconds`` from Prometheus text.

    Raises ``ValueError`` when the text is not the Prometheus format or has no
    ``api_requests_total`` family (not the bot's endpoint).
    """
    per_method: dict[str, list[int]] = {}
    started: datetime | None = None
    seen_family = False
    for family in text_string_to_metric_families(relevant_text(metrics_text, (REQUESTS_SAMPLE, START_SAMPLE))):
        if family.name == "api_requests":
            seen_family = True
        for sample in family.samples:
            if sample.name == REQUESTS_SAMPLE:
                entry = per_method.setdefault(sample.labels.get("method", ""), [0, 0])
                entry[0] += int(sample.value)
                if sample.labels.get("status") == "error":
                    entry[1] += int(sample.value)
            elif sample.name == START_SAMPLE:
                started = datetime.fromtimestamp(sample.value, UTC)
    if not seen_family:
        raise ValueError(f"no {REQUESTS_SAMPLE} in the metrics (is this the bot's /metrics?)")
    methods = tuple(MethodCalls(method=m, calls=c[0], failed=c[1])
                    for m, c in sorted(per_method.items(), key=lambda kv: (-kv[1][0], kv[0])))
    return ApiCallVolume(calls=sum(m.calls for m in methods), failed=sum(m.failed for m in methods),
                         by_method=methods, as_of=as_of, process_started_at=started)


async def fetch_api_calls(metrics_url: str, *, timeout: float = 5.0) -> ApiCallVolume:
    """GET ``metrics_url`` and parse it. Raises ``ValueError`` with the reason on any failure."""
    try:
        response = await get_ok(metrics_url, timeout=timeout)
    except RequestFailed as exc:
        raise ValueError(str(exc)) from None
    try:
        return await asyncio.to_thread(parse_api_calls, response.text, datetime.now(UTC))
    except (IndexError, KeyError) as exc:  # what the exposition parser raises on malformed lines
        raise ValueError(f"not Prometheus exposition text: {exc!r}") from None
