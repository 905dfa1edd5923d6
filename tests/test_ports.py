"""The tests' loopback ports: one port is never handed to two callers of one test run (CI once
gave the bot and the web page of one stack the same port)."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests.support.ports import _ephemeral_range

REPO = Path(__file__).resolve().parents[1]


def _take(run: str, n: int) -> list[int]:
    code = ("from tests.support.ports import free_port\n"
            f"print(' '.join(str(free_port()) for _ in range({n})))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTEST_XDIST_TESTRUNUID": run}, cwd=REPO)
    return [int(p) for p in out.stdout.split()]


def test_ports_are_handed_out_once_per_run_across_processes_and_never_from_the_ephemeral_range() -> None:
    run = f"test-{uuid.uuid4().hex}"
    first, second = _take(run, 300), _take(run, 300)
    every = first + second
    assert len(set(every)) == len(every), "a port was handed out twice in one run"
    lo, hi = _ephemeral_range()
    assert not [p for p in every if lo <= p <= hi], "a port-0 bind or an outgoing connection could take these"
