"""Check: host resources: CPU, memory, disk and load."""
from __future__ import annotations

import os
from typing import Annotated, Any, ClassVar

import psutil
from pydantic import Field

from agent.core.values import Between
from agent.modules.base import CheckModule, CheckResult, Params, RunContext


class SystemCheckParams(Params):
    path: str = Field("/", description="filesystem whose usage disk_percent reports")
    sample_interval: Annotated[float, Between(0.01, 60.0)] = Field(
        0.25, description="CPU usage is measured over this interval (capped at half the timeout)"
    )


class SystemCheck(CheckModule):
    """Reads psutil's host counters in a worker thread (CPU sampling blocks for the interval)."""

    name: ClassVar[str] = "system"
    Params: ClassVar[type[SystemCheckParams]] = SystemCheckParams
    description: ClassVar[str] = "Host CPU, memory, disk usage and load average; name the fact with value:"
    default_value: ClassVar[str | None] = None
    facts: ClassVar[dict[str, str]] = {
        "cpu_percent": "CPU use over sample_interval, % of all cores",
        "memory_percent": "memory in use (total minus available) as % of total",
        "swap_percent": "swap in use, %",
        "disk_percent": "space used on the filesystem holding path, %",
        "disk_free_gb": "space left on that filesystem, GiB",
        "load1": "1-minute load average",
        "load5": "5-minute load average",
        "load15": "15-minute load average",
        "cpu_count": "logical CPUs",
        "load_per_cpu": "load1 divided by cpu_count",
    }

    async def run(self, params: SystemCheckParams, ctx: RunContext) -> CheckResult:
        interval = min(params.sample_interval, ctx.timeout / 2)
        try:
            facts = await ctx.run_blocking(_sample, params.path, interval)
        except FileNotFoundError:
            return CheckResult.failed(f"no such path {params.path!r} for disk usage")
        except OSError as exc:
            return CheckResult.failed(f"cannot read disk usage of {params.path!r}: {exc.strerror}")
        return CheckResult(
            facts=facts,
            summary=(
                f"cpu {facts['cpu_percent']:.0f}%, mem {facts['memory_percent']:.0f}%, "
                f"disk {facts['disk_percent']:.0f}%, load {facts['load1']:.2f}"
            ),
        )


def _sample(path: str, interval: float) -> dict[str, Any]:
    disk = psutil.disk_usage(path)
    # With an interval psutil compares two local snapshots, so concurrent checks do not
    # disturb each other (interval=None would share one module-global baseline).
    cpu = psutil.cpu_percent(interval=interval)
    load1, load5, load15 = os.getloadavg()
    cpu_count = psutil.cpu_count() or 1
    return {
        "cpu_percent": cpu,
        "memory_percent": psutil.virtual_memory().percent,
        "swap_percent": psutil.swap_memory().percent,
        "disk_percent": disk.percent,
        "disk_free_gb": round(disk.free / 1024**3, 3),
        "load1": load1,
        "load5": load5,
        "load15": load15,
        "cpu_count": cpu_count,
        "load_per_cpu": round(load1 / cpu_count, 3),
    }
