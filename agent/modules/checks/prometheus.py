"""Check: one metric from a Prometheus exposition endpoint, selected by name and labels.

The scrape is capped (``max_body_bytes``, compressed and decoded alike: a longer body is an
UNKNOWN, never read further) and parsed off the event loop (:mod:`agent.exposition`), so a
huge or hostile ``/metrics`` costs the agent at most one cap of memory and never delays the
other checks.
"""
from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from agent.core.values import Timeout
from agent.exposition import read_samples
from agent.http import RequestFailed, get_ok, safe_url
from agent.modules.base import CheckModule, CheckResult, Params, RunContext

Aggregate = Literal["sum", "max", "min", "avg", "count"]

_AGGREGATES: dict[str, Callable[[Sequence[float]], float]] = {
    "sum": math.fsum,
    "max": max,
    "min": min,
    "avg": statistics.fmean,
    "count": len,
}


class PrometheusCheckParams(Params):
    url: str = Field(description="exposition endpoint, e.g. {{ bot.metrics_url }}")
    metric: str = Field(
        description="sample name as exposed, e.g. bot_equity_usd or bot_orders_total (counters: with _total)"
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="label values a series must have (others are ignored)"
    )
    aggregate: Aggregate | None = Field(
        None, description="how to combine several matching series; unset: more than one match is an error"
    )
    timeout: Timeout | None = Field(None, description="scrape timeout; default and upper bound: the check's timeout")
    verify_tls: bool = Field(True, description="verify the server's TLS certificate")
    max_body_bytes: int = Field(
        1_048_576, gt=0, le=64 * 1_048_576,
        description="largest scrape read (compressed and decoded); a longer body is an error, not read further")


class PrometheusCheck(CheckModule):
    """Scrapes the endpoint through the shared session and parses it with prometheus_client."""

    name: ClassVar[str] = "prometheus"
    Params: ClassVar[type[PrometheusCheckParams]] = PrometheusCheckParams
    description: ClassVar[str] = "Value of a Prometheus metric (by name and labels) scraped over HTTP"
    default_value: ClassVar[str | None] = "value"
    facts: ClassVar[dict[str, str]] = {
        "value": "the selected sample's value, or the aggregate of the matching series",
        "series": "every matching series as {labels, value}",
        "latency_ms": "milliseconds the scrape took",
    }

    async def run(self, params: PrometheusCheckParams, ctx: RunContext) -> CheckResult:
        timeout = min(params.timeout or ctx.timeout, ctx.timeout)
        where = safe_url(params.url)
        started = time.perf_counter()
        try:
            response = await get_ok(params.url, timeout=timeout, verify_tls=params.verify_tls,
                                    max_body_bytes=params.max_body_bytes)
        except RequestFailed as exc:
            if exc.status is None:  # no response, no latency
                return CheckResult.failed(str(exc))
            return CheckResult.failed(str(exc), latency_ms=_ms_since(started))
        latency_ms = _ms_since(started)
        try:
            series, seen_metric = await _select(response.text, params.metric, params.labels)
        except (ValueError, IndexError, KeyError) as exc:  # what the parser raises on malformed text
            return CheckResult.failed(f"{where} is not Prometheus exposition text: {exc}", latency_ms=latency_ms)

        facts: dict[str, Any] = {"value": None, "series": series, "latency_ms": latency_ms}
        if not seen_metric:
            return CheckResult(facts=facts, error=f"metric {params.metric!r} not found at {where}")
        if not series:
            return CheckResult(
                facts=facts, error=f"no series of {params.metric!r} has labels {params.labels} at {where}"
            )
        if len(series) > 1 and params.aggregate is None:
            return CheckResult(
                facts=facts,
                error=f"{len(series)} series of {params.metric!r} match; narrow labels or set aggregate",
            )
        values = [s["value"] for s in series]
        value = _AGGREGATES[params.aggregate or "sum"](values)
        facts["value"] = value
        return CheckResult(facts=facts, value=value, summary=f"{params.metric} = {value:g}")


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


async def _select(text: str, metric: str, labels: dict[str, str]) -> tuple[list[dict[str, Any]], bool]:
    """Series of ``metric`` whose labels include ``labels``, and whether the metric exists."""
    samples = await read_samples(text, (metric,))
    series = [{"labels": s.labels, "value": s.value} for s in samples
              if all(s.labels.get(k) == v for k, v in labels.items())]
    return series, bool(samples)
