"""Cross-process single flight: an fcntl lock per target, held by another process, waits."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.engine.locks import LockTimeout, holder_of, target_locks, targets_of_tasks


def _hold_in_child(lock_dir: Path, target: str, seconds: float) -> subprocess.Popen[bytes]:
    code = (
        "import asyncio, sys, time\n"
        "from pathlib import Path\n"
        "from agent.engine.locks import target_locks\n"
        "async def main():\n"
        f"    async with target_locks(Path({str(lock_dir)!r}), [{target!r}], owner='child'):\n"
        "        print('held', flush=True)\n"
        f"        await asyncio.sleep({seconds})\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"held"
    return proc


def test_a_target_held_by_another_process_is_waited_for(tmp_path: Path) -> None:
    child = _hold_in_child(tmp_path, "local/program:bot", 1.5)
    try:
        assert "child" in (holder_of(tmp_path, "local/program:bot") or "")

        async def take() -> float:
            start = time.monotonic()
            async with target_locks(tmp_path, ["local/program:bot"], owner="test", timeout=10):
                return time.monotonic() - start

        waited = asyncio.run(take())
        assert waited > 0.5  # it really waited for the child's lock
        assert child.wait(5) == 0
    finally:
        child.kill()


def test_a_lock_that_stays_busy_times_out_naming_the_holder(tmp_path: Path) -> None:
    child = _hold_in_child(tmp_path, "local/program:bot", 10)
    try:
        async def take() -> None:
            async with target_locks(tmp_path, ["local/program:bot"], owner="test", timeout=0.3):
                pass

        with pytest.raises(LockTimeout, match="child"):
            asyncio.run(take())
    finally:
        child.kill()
        child.wait()
    assert holder_of(tmp_path, "local/program:bot") is None  # a killed holder leaves no stale lock


def test_targets_of_tasks_names_programs_and_the_account() -> None:
    from types import SimpleNamespace as NS

    tasks = [NS(module="supervisor", params={"program": "bot"}), NS(module="exchange", params={"action": "x"}),
             NS(module=None, params={}, block=[NS(module="supervisor", params={"program": "exchange"})])]
    assert targets_of_tasks(tasks) == ["account:exchange", "program:bot", "program:exchange"]
