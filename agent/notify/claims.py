"""Who holds an outbox row while it is being sent, and whether that holder is still alive.

A claim names its owner ``ROLE@HOST:PID:START:NONCE`` (``START``: the process's start time in
clock ticks since boot, from ``/proc``, so a reused pid is not mistaken for the owner; the nonce
tells two outboxes of one process apart). A claim also has a lease: whoever finds it expired
may take the row. An owner on this host whose process is gone is known dead at once, so its
rows need not wait out the lease (an agent restarted after a crash sends them at start-up).
"""
from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path


def process_start(pid: int) -> str:
    """The start time of ``pid`` (field 22 of ``/proc/PID/stat``); ``""`` where there is no
    ``/proc`` or no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": the comm may hold spaces
    return fields[19] if len(fields) > 19 else ""


@dataclass(frozen=True)
class ClaimOwner:
    role: str
    host: str
    pid: int
    start: str
    nonce: str = ""

    @classmethod
    def current(cls, role: str) -> ClaimOwner:
        """A new owner for this process (each outbox has its own)."""
        pid = os.getpid()
        return cls(role, socket.gethostname(), pid, process_start(pid), uuid.uuid4().hex[:8])

    @classmethod
    def parse(cls, text: str) -> ClaimOwner | None:
        role, at, rest = text.partition("@")
        host, _, tail = rest.rpartition(":")  # ":NONCE"
        host, _, start = host.rpartition(":")
        host, _, pid = host.rpartition(":")
        if not at or not host or not pid.isdigit():
            return None
        return cls(role, host, int(pid), start, tail)

    def __str__(self) -> str:
        return f"{self.role}@{self.host}:{self.pid}:{self.start}:{self.nonce}"

    def alive(self) -> bool | None:
        """``False`` when the owner's process is known to be gone; ``None`` when it cannot be
        told from here (another host: only its lease says)."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # exists, another user's
        start = process_start(self.pid)
        return not (start and self.start and start != self.start)  # the pid was reused
