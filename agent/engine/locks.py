"""Single flight across processes: one ``fcntl`` lock file per remediation target.

The resident agent and an operator's ``agent run-playbook`` are different processes; an
``asyncio.Lock`` cannot keep them from restarting the same program at once. Each target
(``local/program:bot``, ``local/account:exchange``: the host, then what is acted on) has a file
under ``var/locks``; holding an exclusive ``flock`` on it means "I am acting on that target". The kernel drops the lock when the holder
exits, even on SIGKILL, so a crashed holder never leaves a stale lock behind.

Targets are always locked in sorted order, so two holders of overlapping sets cannot deadlock.
"""
from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.playbook.loader import Config

POLL_SECONDS = 0.1


class LockTimeout(TimeoutError):
    """Another process held a target lock for longer than we were willing to wait."""


def _file_name(target: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", target)[:120] + ".lock"


def holder_of(lock_dir: Path, target: str) -> str | None:
    """Who holds ``target`` (``pid NNN: what``), or ``None`` when it is free. Diagnostic only."""
    path = lock_dir / _file_name(target)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return path.read_text(errors="replace").strip() or "another process"
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextlib.asynccontextmanager
async def target_locks(lock_dir: Path, targets: Iterable[str], *, owner: str,
                       timeout: float = 300.0) -> AsyncIterator[None]:
    """Hold an exclusive lock on every target (sorted) for the block; wait up to ``timeout``.

    Raises :class:`LockTimeout` naming the holder when a lock cannot be had in time.
    """
    await asyncio.to_thread(lock_dir.mkdir, parents=True, exist_ok=True)
    held: list[int] = []
    deadline = time.monotonic() + timeout
    try:
        for target in sorted(set(targets)):
            path = lock_dir / _file_name(target)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        who = path.read_text(errors="replace").strip() or "another process"
                        os.close(fd)
                        raise LockTimeout(f"{target} is busy ({who}) for more than {timeout:g}s") from None
                    await asyncio.sleep(POLL_SECONDS)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}: {owner}\n".encode(), 0)
            held.append(fd)
        yield
    finally:
        for fd in reversed(held):
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def targets_of_tasks(tasks: Iterable[object]) -> list[str]:
    """What a list of tasks acts on, for locking: ``program:NAME`` for each literal program,
    ``account:exchange`` for exchange actions and ``program:*bot*`` for bot control actions.

    Templated names (``{{ bot.program }}``) are rendered by the caller beforehand when it can;
    an unrendered template is locked by its text, which still serialises identical plays.
    """
    out: list[str] = []
    for task in tasks:
        module = getattr(task, "module", None)
        params = getattr(task, "params", None) or {}
        if isinstance(params, dict) and params.get("program"):
            out.append(f"program:{params['program']}")
        elif module == "exchange":
            out.append("account:exchange")
        for key in ("block", "rescue", "always"):
            out += targets_of_tasks(getattr(task, key, None) or [])
    return sorted(set(out))


def operator_lock_targets(config: Config, play: object, hosts: Iterable[object]) -> list[str]:
    """The lock targets of an operator's play on ``hosts`` (``host/program:NAME``...), rendered
    with each host's vars the way the resident agent renders its remediations'."""
    templating = config.templating
    out: list[str] = []
    tasks = [*getattr(play, "tasks", []), *getattr(play, "handlers", [])]
    for host in hosts:
        for target in targets_of_tasks(tasks):
            if "{{" in target:
                try:
                    target = templating.render_str(target, {**getattr(host, "vars", {}), **getattr(play, "vars", {})})
                except Exception:  # noqa: BLE001 - run-time vars: lock by the text
                    pass
            out.append(f"{getattr(host, 'name', host)}/{target}")
    return out
