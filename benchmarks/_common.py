"""Shared helpers of the benchmark suite: statistics, the machine, receivers, worlds on disk.

Every figure the suite prints comes from a measurement in this run; nothing is assumed.
Times are wall-clock (``time.time()`` where two processes must agree, ``perf_counter``
otherwise) on 127.0.0.1 only.
"""
from __future__ import annotations

import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass
class Series:
    """Samples of one measured quantity (milliseconds unless ``unit`` says otherwise)."""

    name: str
    unit: str = "ms"
    samples: list[float] = field(default_factory=list)
    note: str = ""

    def add(self, value: float | None) -> None:
        if value is not None:
            self.samples.append(value)

    def q(self, p: float) -> float | None:
        if not self.samples:
            return None
        data = sorted(self.samples)
        return data[min(len(data) - 1, max(0, round(p * (len(data) - 1))))]

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    def row(self) -> list[str]:
        return [self.name, str(len(self.samples)), fmt(self.median), fmt(self.q(0.9)), fmt(self.q(0.99)),
                fmt(max(self.samples) if self.samples else None), self.unit, self.note]


def fmt(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or theirs == 0:
        return "n/a"
    return f"{ours / theirs:.2f}"


def table(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


SERIES_HEADER = ["measure", "n", "median", "p90", "p99", "max", "unit", "note"]


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    monit = shutil.which("monit")
    monit_version = ""
    if monit:
        out = subprocess.run([monit, "-V"], capture_output=True, text=True).stdout
        monit_version = out.splitlines()[0] if out else ""
    import supervisor

    return {
        "nproc": str(os.cpu_count()),
        "CPU": cpu,
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "Python": platform.python_version(),
        "kernel": platform.release(),
        "supervisor": getattr(supervisor, "__version__", "") or _dist_version("supervisor"),
        "superlance": _dist_version("superlance"),
        "monit": monit_version or "not installed",
    }


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def short_tmp(prefix: str = "bwb") -> Path:
    """A short directory under /tmp (unix socket paths are limited to ~107 bytes)."""
    return Path(tempfile.mkdtemp(prefix=prefix))


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.002) -> Any:
    """Poll ``predicate`` until truthy; returns its value, or None after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def rss_mb(pid: int, *, tree: bool = False) -> float:
    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)] if tree else [proc]
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def log(msg: str) -> None:
    print(msg, flush=True)
