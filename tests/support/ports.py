"""Loopback ports for tests: never the same one twice in a test run.

A port found free by binding port 0 and closing the socket is free *now*; the kernel may hand
it out again before the test's server binds it: to the next ``bind(0)`` in this process, to
another xdist worker, or as the source port of an outgoing connection. Two programs of one
stack then get the same port (CI saw ``bot.port and web.port are both 51249``).

So a port is handed out at most once per test run, and from outside the kernel's ephemeral
range, which port-0 binds and outgoing connections draw from:

- chosen at random in ``LOW..HIGH`` (below Linux's default ephemeral range 32768-60999, and
  above the ranges the project's own live stacks use in docs and examples);
- bound once to see that nothing listens on it now;
- claimed by creating a file named after it, exclusively (``O_EXCL``), in a directory shared by
  every worker of the run (pytest-xdist's ``PYTEST_XDIST_TESTRUNUID``).
"""
from __future__ import annotations

import os
import random
import shutil
import socket
import tempfile
import time
from functools import cache
from pathlib import Path

LOW, HIGH = 23000, 32700
STALE_AFTER_S = 24 * 3600
_rng = random.SystemRandom()


def _ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


@cache
def _candidates() -> tuple[int, ...]:
    eph_lo, eph_hi = _ephemeral_range()
    return tuple(p for p in range(LOW, HIGH) if not eph_lo <= p <= eph_hi)


def _registry() -> Path:
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid{os.getpid()}"
    root = Path(tempfile.gettempdir()) / "botwarden-test-ports"
    root.mkdir(exist_ok=True)
    here = root / run
    if not here.exists():
        for old in root.iterdir():  # runs of yesterday and before
            try:
                if time.time() - old.stat().st_mtime > STALE_AFTER_S:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass
        here.mkdir(exist_ok=True)
    return here


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback TCP port that is free now and that no other caller in this test run gets."""
    candidates = _candidates()
    registry = _registry()
    for _ in range(10 * len(candidates)):
        port = _rng.choice(candidates)
        try:
            os.close(os.open(registry / str(port), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue
        if _bindable(port):
            return port
    raise RuntimeError(f"no free loopback port left in {LOW}-{HIGH} for this test run ({registry})")
