"""Running a command for the command check and action: no shell unless asked, bounded
output, and the whole process group killed on timeout or cancellation.

Contract of :func:`run_command`: returns a :class:`CommandOutcome` (a non-zero exit is an
outcome, not an error); raises :class:`botwarden.errors.ModuleError` only when the command
cannot be started (not found, not executable, bad cwd).
"""
from __future__ import annotations

import asyncio
import os
import shlex
import signal
import time
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, model_validator

from agent.core.values import Timeout
from agent.modules.base import Params, Secret
from botwarden.errors import ModuleError

_CHUNK = 65536


class CommandParams(Params):
    """Parameters shared by the command check and the command action."""

    argv: list[str] | None = Field(
        None, min_length=1, description="program and arguments, run without a shell, e.g. [pg_isready, -q]"
    )
    cmd: str | None = Field(
        None, description="command line; split like a shell would but run without one unless shell is true"
    )
    shell: bool = Field(False, description="run cmd through /bin/sh (pipes, globs, $VARS); needs cmd")
    cwd: str | None = Field(None, description="working directory (default: the agent's)")
    env: Annotated[dict[str, str], Secret()] = Field(
        default_factory=dict, repr=False,
        description="variables added to the agent's environment (secret: never stored, shown or logged)"
    )
    timeout: Timeout | None = Field(
        None, description="kill the process group after this long; default and upper bound: the task timeout"
    )
    max_output_bytes: int = Field(65536, gt=0, le=64 * 2**20, description="keep at most this many bytes of stdout and of stderr")

    @model_validator(mode="after")
    def _one_command(self) -> CommandParams:
        if (self.argv is None) == (self.cmd is None):
            raise ValueError("give exactly one of argv (a list) or cmd (a string)")
        if self.shell and self.cmd is None:
            raise ValueError("shell: true needs cmd (a string), not argv")
        return self

    def display(self) -> str:
        """The command as an operator would type it, for messages."""
        text = self.cmd if self.cmd is not None else shlex.join(self.argv or [])
        return text if len(text) <= 200 else text[:197] + "..."


@dataclass(frozen=True)
class CommandOutcome:
    rc: int | None  # None when it was killed on timeout
    stdout: str
    stderr: str
    duration_ms: float
    timed_out: bool
    truncated: bool

    def facts(self) -> dict[str, Any]:
        return {
            "rc": self.rc,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "duration_ms": self.duration_ms,
            "truncated": self.truncated,
        }


async def run_command(params: CommandParams, timeout: float) -> CommandOutcome:
    """Run the command described by ``params`` for at most ``timeout`` seconds."""
    env = {**os.environ, **params.env} if params.env else None
    common: dict[str, Any] = {
        "stdin": asyncio.subprocess.DEVNULL,
        "stdout": asyncio.subprocess.PIPE,
        "stderr": asyncio.subprocess.PIPE,
        "cwd": params.cwd,
        "env": env,
        "start_new_session": True,  # its own process group, so a timeout kills its children too
    }
    started = time.perf_counter()
    try:
        if params.shell:
            proc = await asyncio.create_subprocess_shell(params.cmd or "", **common)
        else:
            argv = params.argv if params.argv is not None else shlex.split(params.cmd or "")
            if not argv:
                raise ModuleError("the command is empty")
            proc = await asyncio.create_subprocess_exec(*argv, **common)
    except FileNotFoundError as exc:
        missing = exc.filename or (params.argv or [""])[0]
        if params.cwd and not await asyncio.to_thread(os.path.isdir, params.cwd):
            raise ModuleError(f"working directory {params.cwd} does not exist") from None
        raise ModuleError(f"command not found: {missing}") from None
    except PermissionError as exc:
        raise ModuleError(f"not permitted to run {exc.filename or params.display()}") from None
    except NotADirectoryError:
        raise ModuleError(f"working directory {params.cwd} is not a directory") from None

    assert proc.stdout is not None and proc.stderr is not None
    out, err = _Capture(params.max_output_bytes), _Capture(params.max_output_bytes)
    drains = asyncio.gather(out.drain(proc.stdout), err.drain(proc.stderr))
    timed_out = False
    try:
        async with asyncio.timeout(timeout):
            await drains
            await proc.wait()
    except TimeoutError:
        timed_out = True
    finally:
        # Runs on timeout and on cancellation from outside alike: never leave the group alive.
        if proc.returncode is None:
            _kill_group(proc.pid)
            await asyncio.shield(proc.wait())
        if not drains.done():
            # The pipes close with the group; a child that escaped it may hold them open.
            try:
                await asyncio.wait_for(asyncio.shield(drains), 1.0)
            except TimeoutError:
                drains.cancel()
    return CommandOutcome(
        rc=None if timed_out else proc.returncode,
        stdout=out.text(),
        stderr=err.text(),
        duration_ms=round((time.perf_counter() - started) * 1000.0, 3),
        timed_out=timed_out,
        truncated=out.truncated or err.truncated,
    )


class _Capture:
    """Keeps the first ``limit`` bytes of a stream; drops the rest so the child never blocks."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept = bytearray()
        self.truncated = False

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(_CHUNK):
            room = self.limit - len(self.kept)
            if room > 0:
                self.kept += chunk[:room]
            if len(chunk) > room:
                self.truncated = True

    def text(self) -> str:
        return self.kept.decode("utf-8", errors="replace")


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # already gone

