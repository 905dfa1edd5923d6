"""Check: run a command and report its exit code and output."""
from __future__ import annotations

from typing import ClassVar

from agent.modules.base import CheckModule, CheckResult, RunContext
from agent.modules.checks._subprocess import CommandParams, run_command
from botwarden.errors import ModuleError


class CommandCheckParams(CommandParams):
    pass


class CommandCheck(CheckModule):
    """Runs argv (or cmd) without a shell unless asked; a non-zero rc is a fact, not an error."""

    name: ClassVar[str] = "command"
    Params: ClassVar[type[CommandCheckParams]] = CommandCheckParams
    description: ClassVar[str] = "Run a command; exit code, stdout and stderr are the facts"
    default_value: ClassVar[str | None] = "rc"
    facts: ClassVar[dict[str, str]] = {
        "rc": "exit code (negative: killed by that signal; None: timed out)",
        "stdout": "standard output, at most max_output_bytes",
        "stderr": "standard error, at most max_output_bytes",
        "duration_ms": "milliseconds from start to exit",
        "truncated": "true when stdout or stderr was longer than max_output_bytes",
    }

    async def run(self, params: CommandCheckParams, ctx: RunContext) -> CheckResult:
        timeout = min(params.timeout or ctx.timeout, ctx.timeout)
        try:
            outcome = await run_command(params, timeout)
        except ModuleError as exc:
            return CheckResult.failed(exc.message)
        if outcome.timed_out:
            return CheckResult(facts=outcome.facts(), error=f"timed out after {timeout:g}s")
        return CheckResult(
            facts=outcome.facts(), value=outcome.rc, summary=f"rc={outcome.rc} in {outcome.duration_ms:.0f}ms"
        )
