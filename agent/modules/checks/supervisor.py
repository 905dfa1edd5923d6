"""Check: a supervisord program's state, pid, uptime, exit status and spawn error."""
from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from agent.modules.base import CheckModule, CheckResult, Params, RunContext
from agent.modules.checks._supervisor_rpc import (
    RUNNING_STATES,
    SupervisorUrl,
    process_info,
    resolve_url,
    uptime_s,
)
from botwarden.errors import ModuleError

ENDED_STATES = frozenset({"EXITED", "FATAL", "BACKOFF"})
SUPERVISOR_STATES = ("RUNNING", "STARTING", "BACKOFF", "STOPPING", "STOPPED", "EXITED", "FATAL", "UNKNOWN")
"""Every state name supervisord reports (its ``statename``), upper case."""
"""States in which the program's last process has ended on its own (BACKOFF: it died while
starting and supervisord will try again). A stop (STOPPED) is deliberate, not a failure."""


class SupervisorCheckParams(Params):
    program: str = Field(description="supervisord program name (or group:name), e.g. bot")
    url: SupervisorUrl | None = Field(
        None, description="supervisord URL (unix:///abs/path.sock); default: the host's supervisor.url"
    )
    watch: bool = Field(
        True,
        description="the resident agent also watches the process itself (a Linux pidfd) and supervisord's "
        "PROCESS_STATE events, and runs this check the moment the program exits instead of at the next interval",
    )


class SupervisorCheck(CheckModule):
    """Asks supervisord over XML-RPC how a program is doing."""

    name: ClassVar[str] = "supervisor"
    Params: ClassVar[type[SupervisorCheckParams]] = SupervisorCheckParams
    description: ClassVar[str] = "State of a supervisord program (RUNNING, EXITED, FATAL...) via XML-RPC"
    default_value: ClassVar[str | None] = "state"
    fact_values: ClassVar[dict[str, tuple[str, ...]]] = {"state": SUPERVISOR_STATES}
    facts: ClassVar[dict[str, str]] = {
        "state": f"supervisord state name: {', '.join(SUPERVISOR_STATES)}",
        "running": "true when the state is RUNNING",
        "pid": "process id, or None when not running",
        "uptime_s": "seconds since the program started, or None when not running",
        "exitstatus": "exit status of the last exit (0 if it never exited)",
        "spawnerr": "supervisord's spawn error text ('' if none)",
        "description": "supervisorctl's status description, e.g. 'pid 123, uptime 0:01:02'",
        "started_at": "Unix time the program's last process was started (0 if never); a new value while "
        "the program has exited again means it was restarted and died again",
    }

    async def run(self, params: SupervisorCheckParams, ctx: RunContext) -> CheckResult:
        try:
            url = resolve_url(params.url, ctx)
            info = await process_info(url, params.program, timeout=ctx.timeout)
        except ModuleError as exc:
            return CheckResult.failed(exc.message)
        state: str = info["statename"]
        # supervisord reports the last pid of a stopped program as 0; expose None instead.
        pid = info["pid"] if state in RUNNING_STATES and info["pid"] else None
        facts: dict[str, Any] = {
            "state": state,
            "running": state == "RUNNING",
            "pid": pid,
            "uptime_s": uptime_s(info),
            "exitstatus": info["exitstatus"],
            "spawnerr": info["spawnerr"],
            "description": info["description"],
            "started_at": info.get("start") or 0,
        }
        # The occurrence is a process that ended: a program restarted and dead again before any
        # check saw it running looks like the same EXITED, but its start time is new. A process
        # still starting (or running) is no occurrence: the restart under way (the agent's own)
        # is not a failure, and its exit, whenever it comes, must be a new one.
        ended = state in ENDED_STATES and info.get("start")
        occurrence = str(info["start"]) if ended else None
        return CheckResult(facts=facts, value=state, summary=f"{params.program} {state}: {info['description']}",
                           occurrence=occurrence)
