"""``promtool check metrics``: Prometheus' own linter for an exposition (`make test` installs it)."""
from __future__ import annotations

import shutil
import subprocess

import pytest


def promtool_problems(text: str | bytes) -> list[str]:
    """The problems promtool reports for an exposition; ``[]`` when it accepts it."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (`make test` installs Debian's prometheus package)")
    data = text.encode() if isinstance(text, str) else text
    proc = subprocess.run([promtool, "check", "metrics"], input=data, capture_output=True, timeout=30, check=False)
    lines = (proc.stdout + proc.stderr).decode(errors="replace").splitlines()
    problems = [line for line in lines if line.strip()]
    if proc.returncode != 0 and not problems:
        problems = [f"promtool exited {proc.returncode}"]
    return problems
