"""Check: a liveness heartbeat the watched program writes itself, against a deadline.

The bot proves it is not hung by rewriting its heartbeat file after every loop iteration (the
file holds the Unix time of that iteration; the file's mtime is the fallback), as freqtrade's
sd_notify WATCHDOG does. A beat older than ``deadline`` is a hang.

Polling alone would see a missed deadline up to one interval late. The resident agent
therefore also schedules this check at the deadline of the last beat it saw
(agent/engine/watchers/heartbeat.py), so a hang is reported within milliseconds of the
deadline, whatever the check's ``every``.

No heartbeat file yet (a program that has not finished starting, a fresh install) is not a hang
until ``deadline`` has passed since the agent first found it missing: otherwise every fresh start
of the stack would page.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import Field

from agent.core.causes import HUNG
from agent.core.values import DAY, Between
from agent.modules.base import CheckModule, CheckResult, Params, RunContext


class HeartbeatCheckParams(Params):
    file: str = Field(description="heartbeat file the program rewrites each loop, e.g. {{ bot.heartbeat_path }}")
    deadline: Annotated[float, Between(1.0, DAY)] = Field(
        description="a beat older than this is a hang; the agent runs the check the moment it passes"
    )


def read_beat(path: str | os.PathLike[str]) -> float | None:
    """Unix time of the last beat: the file's number, else its mtime; None if there is no file."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(64).strip()
        try:
            return float(text)
        except ValueError:
            return Path(path).stat().st_mtime
    except OSError:
        return None


class HeartbeatCheck(CheckModule):
    """Reads the heartbeat file and reports how old the last beat is."""

    name: ClassVar[str] = "heartbeat"
    Params: ClassVar[type[HeartbeatCheckParams]] = HeartbeatCheckParams
    description: ClassVar[str] = "Liveness heartbeat file against a deadline (hang detection, event-scheduled)"
    default_value: ClassVar[str | None] = "age_s"
    facts: ClassVar[dict[str, str]] = {
        "alive": "true when the last beat is younger than the deadline",
        "overdue": "true when the deadline passed without a beat (or the file has been missing that long)",
        "age_s": "seconds since the last beat, or None when there is no heartbeat file",
        "last_beat": "Unix time of the last beat, or None",
        "deadline_s": "the deadline in seconds",
    }

    def __init__(self) -> None:
        self._missing_since: dict[str, float] = {}  # file -> when this agent first found it missing

    async def run(self, params: HeartbeatCheckParams, ctx: RunContext) -> CheckResult:
        # A small local file: reading it inline costs microseconds, less than a thread hop.
        beat = read_beat(params.file)
        if beat is None:
            waited = time.monotonic() - self._missing_since.setdefault(params.file, time.monotonic())
            overdue = waited > params.deadline
            facts: dict[str, Any] = {"alive": not overdue, "overdue": overdue, "age_s": None, "last_beat": None,
                                     "deadline_s": params.deadline}
            summary = (f"{HUNG}: no heartbeat for {waited:.0f}s (no heartbeat file {params.file})" if overdue else
                       f"no heartbeat file {params.file} yet (missing for {waited:.1f}s, deadline {params.deadline:g}s)")
            return CheckResult(facts=facts, value=None, summary=summary)
        self._missing_since.pop(params.file, None)
        age = max(0.0, time.time() - beat)
        overdue = age > params.deadline
        facts = {"alive": not overdue, "overdue": overdue, "age_s": round(age, 3), "last_beat": beat,
                 "deadline_s": params.deadline}
        summary = (f"{HUNG}: no heartbeat for {age:.0f}s (deadline {params.deadline:g}s)" if overdue else
                   f"last beat {age:.1f}s ago (alive, deadline {params.deadline:g}s)")
        return CheckResult(facts=facts, value=round(age, 3), summary=summary, seen_at=beat)
