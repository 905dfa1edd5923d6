"""The heartbeat check, and its deadline watcher against a real process that beats (then is SIGSTOPped)."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent.engine.watchers.heartbeat import HeartbeatWatcher
from agent.modules.checks.heartbeat import HeartbeatCheck, read_beat

BEATER = """
import os, sys, time
path = sys.argv[1]
while True:
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(f"{time.time():.3f}\\n")
    os.replace(tmp, path)
    time.sleep(0.05)
"""


def params(**kw: Any) -> Any:
    return HeartbeatCheck.Params.model_validate(kw)


@pytest.mark.parametrize(
    ("content", "age", "alive"),
    [
        ("{now}\n", 0.0, True),
        ("{old}\n", 30.0, False),
        ("not a number", None, True),  # falls back to the file's mtime (just written)
    ],
)
async def test_facts(tmp_path: Path, make_ctx, content: str, age: float | None, alive: bool) -> None:
    beat = tmp_path / "hb"
    now = time.time()
    beat.write_text(content.format(now=now, old=now - 30))
    result = await HeartbeatCheck().run(params(file=str(beat), deadline="10s"), make_ctx())
    assert result.error is None
    assert result.facts["alive"] is alive and result.facts["overdue"] is (not alive)
    assert result.facts["deadline_s"] == 10.0
    if age is not None:
        assert result.facts["age_s"] == pytest.approx(age, abs=1.0)
    assert set(result.facts) == set(HeartbeatCheck.facts)


async def test_a_missing_file_is_overdue_once_it_has_been_missing_for_the_deadline(tmp_path: Path, make_ctx) -> None:
    """A program still starting has no heartbeat file yet: not a hang (a fresh `make run` must
    not page) until the file has been missing for the whole deadline; then it is overdue."""
    check = HeartbeatCheck()
    first = await check.run(params(file=str(tmp_path / "nope"), deadline="1s"), make_ctx())
    assert first.facts["overdue"] is False and first.facts["age_s"] is None
    await asyncio.sleep(1.1)
    later = await check.run(params(file=str(tmp_path / "nope"), deadline="1s"), make_ctx())
    assert later.facts["overdue"] is True and later.facts["alive"] is False
    assert "no heartbeat for" in later.summary
    assert read_beat(tmp_path / "nope") is None


@pytest.mark.parametrize(("kw", "message"), [({"file": "x"}, "deadline"), ({"file": "x", "deadline": "0s"}, "too short: it must be at least 1s")])
def test_bad_params(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        params(**kw)


@pytest.mark.slow
async def test_watchdog_fires_on_a_missed_deadline_and_not_before(tmp_path: Path) -> None:
    beat = tmp_path / "bot.heartbeat"
    proc = subprocess.Popen([sys.executable, "-c", BEATER, str(beat)])
    fired: list[tuple[str, float, float | None]] = []
    bc = SimpleNamespace(key="p/h/bot heartbeat", params=params(file=str(beat), deadline="2s"))
    # A generous deadline (beats every 50 ms): a loaded CI machine can starve the beater for a
    # few hundred ms, which must not look like a hang. The behaviour asserted is the same.

    def trigger(_bc: Any, why: str) -> None:
        fired.append((why, time.time(), read_beat(beat)))

    while read_beat(beat) is None:  # no file yet counts as a missed deadline: wait for the first beat
        await asyncio.sleep(0.01)
    watcher = HeartbeatWatcher(bc, trigger)
    task = asyncio.create_task(watcher.run())
    try:
        await asyncio.sleep(3.0)  # more than a deadline's worth of healthy beats
        assert fired == []
        os.kill(proc.pid, signal.SIGSTOP)
        while not fired:
            await asyncio.sleep(0.01)
        why, at, last = fired[0]
        assert why == "heartbeat deadline missed" and last is not None
        assert at >= last + 2.0  # never before the deadline of the last beat
        await asyncio.sleep(1.0)
        assert len(fired) == 1  # one report per missed deadline, not one per poll
        os.kill(proc.pid, signal.SIGCONT)
        while len(fired) < 2:
            await asyncio.sleep(0.01)
        assert fired[1][0] == "heartbeat resumed"
        assert watcher.missed == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait()


async def test_the_watcher_gives_a_program_that_has_not_beaten_yet_the_whole_deadline(tmp_path: Path) -> None:
    """Started before the program's first beat (a fresh stack): nothing is reported while the
    file is missing for less than the deadline, and the first beat starts the usual watch."""
    from agent.engine.watchers.heartbeat import HeartbeatWatcher

    beat = tmp_path / "bot.heartbeat"
    bc = SimpleNamespace(key="p/h/bot heartbeat", params=params(file=str(beat), deadline="1s"))
    fired: list[str] = []
    watcher = HeartbeatWatcher(bc, lambda _bc, why: fired.append(why), overdue_poll=0.05)
    task = asyncio.create_task(watcher.run())
    try:
        await asyncio.sleep(0.5)
        beat.write_text(str(time.time()))  # the first beat, half a deadline after watching began
        await asyncio.sleep(0.4)
        assert fired == []
        await asyncio.sleep(1.2)  # no second beat: now it is a hang
        assert fired == ["heartbeat deadline missed"]
    finally:
        task.cancel()
