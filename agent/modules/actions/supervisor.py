"""Action: start, stop, restart or signal a supervisord program."""
from __future__ import annotations

import xmlrpc.client
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator
from supervisor.xmlrpc import Faults

from agent.modules.base import ActionModule, ActionResult, Params, RunContext
from agent.modules.checks._supervisor_rpc import (
    RUNNING_STATES,
    SupervisorUrl,
    call,
    process_info,
    resolve_url,
)
from botwarden.errors import ModuleError

SupervisorVerb = Literal["start", "stop", "restart", "signal"]


class SupervisorActionParams(Params):
    action: SupervisorVerb = Field(description="start, stop, restart or signal")
    program: str = Field(description="supervisord program name (or group:name), e.g. bot")
    signal: str | None = Field(None, description="signal name for action signal, e.g. HUP or USR1")
    url: SupervisorUrl | None = Field(
        None, description="supervisord URL (unix:///abs/path.sock); default: the host's supervisor.url"
    )
    wait: bool = Field(True, description="wait until supervisord reports the program started or stopped")

    @model_validator(mode="after")
    def _signal_when_signalling(self) -> SupervisorActionParams:
        if (self.action == "signal") != (self.signal is not None):
            raise ValueError("signal is required for action signal, and only for it")
        return self


def _describe(program: str, info: dict[str, Any]) -> str:
    state = info["statename"]
    return f"{program} ({state}, pid {info['pid']})" if info.get("pid") and state in RUNNING_STATES else (
        f"{program} ({state})"
    )


class SupervisorAction(ActionModule):
    """Decides from the current state whether anything changes, then acts over XML-RPC."""

    name: ClassVar[str] = "supervisor"
    Params: ClassVar[type[SupervisorActionParams]] = SupervisorActionParams
    description: ClassVar[str] = "Start, stop, restart or signal a supervisord program"
    supports_check_mode: ClassVar[bool] = True

    async def run(self, params: SupervisorActionParams, ctx: RunContext) -> ActionResult:
        program = params.program
        try:
            url = resolve_url(params.url, ctx)
            before = await process_info(url, program, timeout=ctx.timeout)
        except ModuleError as exc:
            return ActionResult(failed=True, msg=exc.message, data={"program": program})
        state_before = before["statename"]
        running = state_before in RUNNING_STATES
        data: dict[str, Any] = {"program": program, "state_before": state_before}

        # Decide first (what would change), then guard only the side effect.
        if params.action == "start" and running:
            return _result(False, f"{_describe(program, before)} is already started", data, before)
        if params.action == "stop" and not running:
            return _result(False, f"{_describe(program, before)} is already stopped", data, before)
        if params.action == "signal" and not running:
            return _result(False, f"cannot signal {_describe(program, before)}: not running", data, before,
                           failed=True)
        verb = f"signal {params.signal} to" if params.action == "signal" else params.action
        if ctx.check_mode:
            return _result(True, f"would {verb} {_describe(program, before)}", data, before)

        try:
            await self._act(params, url, running, ctx.timeout)
        except xmlrpc.client.Fault as fault:
            return await self._fault_result(fault, params, url, data, ctx.timeout)
        except ModuleError as exc:
            return ActionResult(changed=True, failed=True, msg=exc.message, data=data)
        try:
            after = await process_info(url, program, timeout=ctx.timeout)
        except ModuleError as exc:
            return ActionResult(changed=True, failed=True, msg=f"{verb} {program} sent, then {exc.message}",
                                data=data)
        done = {"start": "started", "stop": "stopped", "restart": "restarted"}.get(params.action, f"signalled {params.signal}")
        return _result(True, f"{done} {_describe(program, after)}", data, after)

    async def _act(self, params: SupervisorActionParams, url: str, running: bool, timeout: float) -> None:
        name, wait = params.program, params.wait
        if params.action == "signal":
            await call(url, "signalProcess", name, params.signal, timeout=timeout)
            return
        if params.action in ("stop", "restart") and running:
            await call(url, "stopProcess", name, wait if params.action == "stop" else True, timeout=timeout)
        if params.action in ("start", "restart"):
            await call(url, "startProcess", name, wait, timeout=timeout)

    async def _fault_result(
        self, fault: xmlrpc.client.Fault, params: SupervisorActionParams, url: str, data: dict[str, Any],
        timeout: float,
    ) -> ActionResult:
        program = params.program
        try:
            info: dict[str, Any] | None = await process_info(url, program, timeout=timeout)
        except ModuleError:
            info = None
        code = fault.faultCode
        # A race with supervisord's own autorestart or a person at supervisorctl: the goal
        # state was reached anyway, so nothing changed and nothing failed.
        if code == Faults.ALREADY_STARTED and params.action == "start":
            return _result(False, f"{program} was already started", data, info)
        if code == Faults.NOT_RUNNING and params.action == "stop":
            return _result(False, f"{program} was already stopped", data, info)
        spawnerr = (info or {}).get("spawnerr") or ""
        messages = {
            Faults.BAD_NAME: f"no such program {program!r}",
            Faults.SPAWN_ERROR: f"{program} could not be spawned" + (f": {spawnerr}" if spawnerr else ""),
            Faults.ABNORMAL_TERMINATION: f"{program} exited before it was up (see its log)",
            Faults.NOT_RUNNING: f"{program} is not running",
            Faults.ALREADY_STARTED: f"{program} is already started",
            Faults.BAD_SIGNAL: f"bad signal {params.signal!r}",
            Faults.NO_FILE: f"{program}'s command was not found",
            Faults.NOT_EXECUTABLE: f"{program}'s command is not executable",
        }
        msg = messages.get(code, f"supervisord refused: {fault.faultString}")
        return _result(code not in (Faults.BAD_NAME, Faults.BAD_SIGNAL), msg, data, info, failed=True)


def _result(
    changed: bool, msg: str, data: dict[str, Any], info: dict[str, Any] | None, *, failed: bool = False
) -> ActionResult:
    out = dict(data)
    out["state_after"] = info["statename"] if info else None
    out["pid"] = (info["pid"] or None) if info else None
    return ActionResult(changed=changed, failed=failed, msg=msg, data=out)
