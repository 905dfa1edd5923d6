"""The agent's /metrics endpoint: it parses, and carries scheduler lateness and result states."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from agent.engine.metrics import AgentMetrics
from agent.engine.scheduler import CheckScheduler
from agent.modules.base import CheckModule, CheckResult, HostContext, Params, RunContext
from tests.support.promtool import promtool_problems


class _Instant(CheckModule):
    name = "instant"
    Params = Params
    description = "returns at once"

    async def run(self, params: Any, ctx: RunContext) -> CheckResult:
        return CheckResult(value=1)


def _bc(i: int) -> Any:
    return SimpleNamespace(key=f"p/h/c{i}", module=_Instant, params=Params(), interval=0.05, timeout=1.0, vars={},
                           host=HostContext("h"), play=SimpleNamespace(name="p", schedule=None))


async def test_metrics_endpoint_parses_and_has_lateness_and_results() -> None:
    handled: list[str] = []

    async def on_result(bc: Any, result: CheckResult, started: Any, duration_ms: float) -> None:
        handled.append(bc.key)

    scheduler = CheckScheduler(on_result)
    metrics = AgentMetrics()
    metrics.bind_scheduler(scheduler, lambda bc: "OK")
    metrics.set_notification_counts({"sent": 3, "pending": 1})
    port = metrics.serve(0)
    assert port
    scheduler.start([_bc(i) for i in range(3)])
    try:
        while len(handled) < 9:
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    finally:
        await scheduler.shutdown()
        metrics.close()
    assert promtool_problems(text) == []
    families = {f.name: f for f in text_string_to_metric_families(text)}
    lateness = families["botwarden_scheduler_lateness_seconds"]
    assert lateness.type == "histogram"
    count = next(s.value for s in lateness.samples if s.name.endswith("_count"))
    assert count >= 3
    results = {s.labels["state"]: s.value for s in families["botwarden_check_results"].samples
               if s.name.endswith("_total")}
    assert results["OK"] >= 9
    notes = {s.labels["status"]: s.value for s in families["botwarden_notifications"].samples}
    assert notes["sent"] == 3 and notes["dead"] == 0
    assert "botwarden_checks_in_flight" in families
    skipped = families["botwarden_scheduler_skipped_in_flight"]
    assert skipped.type == "counter" and skipped.samples[0].name == "botwarden_scheduler_skipped_in_flight_total"
    assert next(iter(families["process_resident_memory_bytes"].samples)).value > 0
