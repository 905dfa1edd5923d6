"""Action: run a command (Ansible ``command`` semantics, including ``creates``)."""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from agent.modules.base import ActionModule, ActionResult, RunContext
from agent.modules.checks._subprocess import CommandParams, run_command
from botwarden.errors import ModuleError


class CommandActionParams(CommandParams):
    creates: str | None = Field(
        None, description="a path; if it exists the command is not run and nothing changes"
    )


class CommandAction(ActionModule):
    """Runs the command; changed unless ``creates`` exists; failed on non-zero rc or timeout."""

    name: ClassVar[str] = "command"
    Params: ClassVar[type[CommandActionParams]] = CommandActionParams
    description: ClassVar[str] = "Run a command; changed unless `creates` exists, failed on non-zero exit"
    supports_check_mode: ClassVar[bool] = True

    async def run(self, params: CommandActionParams, ctx: RunContext) -> ActionResult:
        command = params.display()
        exists = bool(params.creates) and bool(await ctx.run_blocking(Path(params.creates or ".").exists))
        if exists:
            return ActionResult(changed=False, msg=f"skipped, since {params.creates} exists", data={"cmd": command})
        if ctx.check_mode:
            return ActionResult(changed=True, msg=f"would run {command}", data={"cmd": command})

        timeout = min(params.timeout or ctx.timeout, ctx.timeout)
        try:
            outcome = await run_command(params, timeout)
        except ModuleError as exc:
            return ActionResult(failed=True, msg=exc.message, data={"cmd": command})
        data = {"cmd": command, **outcome.facts()}
        if outcome.timed_out:
            return ActionResult(changed=True, failed=True, msg=f"timed out after {timeout:g}s", data=data)
        if outcome.rc != 0:
            return ActionResult(changed=True, failed=True, msg=f"non-zero return code {outcome.rc}", data=data)
        return ActionResult(changed=True, msg=f"ran {command}", data=data)
