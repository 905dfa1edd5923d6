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
    info_error,
    multicall,
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
            if params.action != "signal" and not ctx.check_mode:
                return await self._in_one_request(params, url, ctx.timeout)
            before = await process_info(url, program, timeout=ctx.timeout)
        except ModuleError as exc:
            return ActionResult(failed=True, msg=exc.message, data={"program": program})
        data: dict[str, Any] = {"program": program, "state_before": before["statename"]}
        running = before["statename"] in RUNNING_STATES
        # Decide first (what would change), then guard only the side effect.
        if (nothing := _nothing_to_do(params, before, data)) is not None:
            return nothing
        if params.action == "signal" and not running:
            return _result(False, f"cannot signal {_describe(program, before)}: not running", data, before,
                           failed=True)
        verb = f"signal {params.signal} to" if params.action == "signal" else params.action
        if ctx.check_mode:
            return _result(True, f"would {verb} {_describe(program, before)}", data, before)

        try:  # a signal (start, stop and restart went by _in_one_request)
            await call(url, "signalProcess", program, params.signal, timeout=ctx.timeout)
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

    async def _in_one_request(self, params: SupervisorActionParams, url: str, timeout: float) -> ActionResult:
        """start, stop or restart as one ``system.multicall``: the state before, the calls, the
        state after, in one turn of supervisord's loop, so nothing can come between the state
        read and the act (a restart on the crash -> alert path made three round trips). The act
        is sent whatever the state: supervisord refuses one with nothing to do
        (``ALREADY_STARTED``, ``NOT_RUNNING``), and the state before says what it meant."""
        program, action = params.program, params.action
        acts: list[tuple[str, list[Any]]] = []
        if action in ("stop", "restart"):
            acts.append(("stopProcess", [program, params.wait if action == "stop" else True]))
        if action in ("start", "restart"):
            acts.append(("startProcess", [program, params.wait]))
        info = ("getProcessInfo", [program])
        before, *answers, after = await multicall(url, [info, *acts, info], timeout=timeout)
        if isinstance(before, xmlrpc.client.Fault):
            return ActionResult(failed=True, msg=info_error(program, before).message, data={"program": program})
        running = before["statename"] in RUNNING_STATES
        data: dict[str, Any] = {"program": program, "state_before": before["statename"]}
        if (nothing := _nothing_to_do(params, before, data)) is not None:
            return nothing
        for (method, _args), answer in zip(acts, answers, strict=True):
            if not isinstance(answer, xmlrpc.client.Fault):
                continue
            if method == "stopProcess" and action == "restart" and not running and answer.faultCode == Faults.NOT_RUNNING:
                continue  # a restart of a stopped program is its start
            return await self._fault_result(answer, params, url, data, timeout)
        if isinstance(after, xmlrpc.client.Fault):
            return ActionResult(changed=True, failed=True,
                                msg=f"{action} {program} sent, then {info_error(program, after).message}", data=data)
        done = {"start": "started", "stop": "stopped"}.get(action, "restarted")
        return _result(True, f"{done} {_describe(program, after)}", data, after)

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


def _nothing_to_do(params: SupervisorActionParams, before: dict[str, Any], data: dict[str, Any]) -> ActionResult | None:
    """The answer when the state before leaves a start or a stop nothing to do."""
    running = before["statename"] in RUNNING_STATES
    if params.action == "start" and running:
        return _result(False, f"{_describe(params.program, before)} is already started", data, before)
    if params.action == "stop" and not running:
        return _result(False, f"{_describe(params.program, before)} is already stopped", data, before)
    return None


def _result(
    changed: bool, msg: str, data: dict[str, Any], info: dict[str, Any] | None, *, failed: bool = False
) -> ActionResult:
    out = dict(data)
    out["state_after"] = info["statename"] if info else None
    out["pid"] = (info["pid"] or None) if info else None
    return ActionResult(changed=changed, failed=failed, msg=msg, data=out)
