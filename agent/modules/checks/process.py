"""Check: resources of one process (a supervisord program, a pid or a pidfile) via psutil."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated, Any, ClassVar

import psutil
from pydantic import Field, model_validator

from agent.core.values import Between
from agent.modules.base import CheckModule, CheckResult, Params, RunContext
from agent.modules.checks._supervisor_rpc import SupervisorUrl, process_info, resolve_url
from botwarden.errors import ModuleError

_MIB = 1024.0 * 1024.0


class ProcessCheckParams(Params):
    program: str | None = Field(None, description="supervisord program whose pid to inspect, e.g. bot")
    pid: int | None = Field(None, gt=0, le=4_194_304, description="a process id (instead of program)")
    pidfile: str | None = Field(None, description="a file holding the process id (instead of program)")
    url: SupervisorUrl | None = Field(
        None, description="supervisord URL for program; default: the host's supervisor.url"
    )
    sample_interval: Annotated[float, Between(0.01, 60.0)] = Field(
        0.25, description="CPU usage is measured over this interval (capped at half the timeout)"
    )

    @model_validator(mode="after")
    def _exactly_one_target(self) -> ProcessCheckParams:
        given = [k for k in ("program", "pid", "pidfile") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of program, pid or pidfile (got {', '.join(given) or 'none'})")
        return self


class ProcessCheck(CheckModule):
    """Finds the pid, samples CPU without blocking the loop, reads memory, threads and fds."""

    name: ClassVar[str] = "process"
    Params: ClassVar[type[ProcessCheckParams]] = ProcessCheckParams
    description: ClassVar[str] = "CPU, memory, threads and fds of a supervisord program or pid (psutil)"
    default_value: ClassVar[str | None] = "memory_percent"
    facts: ClassVar[dict[str, str]] = {
        "pid": "the process id inspected (None if there is none)",
        "running": "true while the process exists and is not a zombie",
        "cpu_percent": "CPU use over sample_interval, % of one core (may exceed 100 with threads)",
        "memory_percent": "resident memory as % of total RAM",
        "rss_mb": "resident memory in MiB",
        "num_threads": "number of threads",
        "num_fds": "open file descriptors (None if not permitted)",
        "uptime_s": "seconds since the process started",
    }

    async def run(self, params: ProcessCheckParams, ctx: RunContext) -> CheckResult:
        pid: int | None = None
        try:
            pid = await _target_pid(params, ctx)
            interval = min(params.sample_interval, ctx.timeout / 2)
            # Two cpu_percent(None) calls on one Process object measure the interval between
            # them; sleeping on the loop (not in a thread) keeps no worker busy meanwhile.
            proc = await ctx.run_blocking(_prime_cpu, pid)
            await asyncio.sleep(interval)
            facts = await ctx.run_blocking(_measure, proc)
        except ModuleError as exc:
            return CheckResult.failed(exc.message, running=False, pid=None)
        except psutil.NoSuchProcess:
            return CheckResult.failed(f"process {pid} does not exist", running=False, pid=pid)
        except psutil.AccessDenied:
            return CheckResult.failed(f"not permitted to inspect process {pid}", pid=pid)
        return CheckResult(
            facts=facts,
            value=facts["memory_percent"],
            summary=f"pid {pid}: cpu {facts['cpu_percent']:.1f}%, mem {facts['memory_percent']:.1f}%",
        )


async def _target_pid(params: ProcessCheckParams, ctx: RunContext) -> int:
    if params.pid is not None:
        return params.pid
    if params.pidfile is not None:
        return await ctx.run_blocking(_read_pidfile, params.pidfile)
    assert params.program is not None  # the validator guarantees one target
    info = await process_info(resolve_url(params.url, ctx), params.program, timeout=ctx.timeout)
    if not info["pid"]:
        raise ModuleError(f"program {params.program!r} is not running ({info['statename']})")
    return int(info["pid"])


def _read_pidfile(path: str) -> int:
    try:
        text = Path(path).read_text().strip()
    except FileNotFoundError:
        raise ModuleError(f"pidfile {path} does not exist") from None
    except OSError as exc:
        raise ModuleError(f"cannot read pidfile {path}: {exc.strerror}") from None
    if not text.isdigit() or int(text) <= 0:
        raise ModuleError(f"pidfile {path} does not hold a pid")
    return int(text)


def _prime_cpu(pid: int) -> psutil.Process:
    proc = psutil.Process(pid)
    proc.cpu_percent(None)
    return proc


def _measure(proc: psutil.Process) -> dict[str, Any]:
    with proc.oneshot():
        status = proc.status()
        try:
            num_fds: int | None = proc.num_fds()
        except (psutil.AccessDenied, AttributeError):  # AttributeError: not on this platform
            num_fds = None
        return {
            "pid": proc.pid,
            "running": status != psutil.STATUS_ZOMBIE,
            "cpu_percent": proc.cpu_percent(None),
            "memory_percent": round(proc.memory_percent(), 3),
            "rss_mb": round(proc.memory_info().rss / _MIB, 3),
            "num_threads": proc.num_threads(),
            "num_fds": num_fds,
            "uptime_s": round(max(0.0, time.time() - proc.create_time()), 3),
        }
