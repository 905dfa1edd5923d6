"""Notice a supervised program's exit the moment it happens, not at supervisord's next tick.

supervisord learns of a child's death only when its select loop wakes (a 1 s timeout; a
SIGCHLD does not wake it): after ``kill -9`` of the bot it reports EXITED, sends its
PROCESS_STATE event and autorestarts about 1-2 s later. A Linux pidfd (``os.pidfd_open``) of the
program's pid becomes readable as soon as that process exits, whoever its parent is; the event
loop watches it with ``add_reader``: no thread, no polling.

Contract of :class:`ProgramWatcher`:

* it asks supervisord (XML-RPC ``getProcessInfo``) for the program's pid and arms a pidfd on
  it; when the pid changes (a restart) it re-arms on the new one. While the program is not
  running it waits for :meth:`ProgramWatcher.nudge` (a PROCESS_STATE_STARTING/RUNNING event) or
  polls supervisord every ``idle_poll`` seconds;
* a process that started and died between two looks (a restart that crashed within
  milliseconds, before a pidfd could be armed on it) is still reported: supervisord's start time
  of the program's last process is compared at every look, and a new one on a program that is
  not running is an exit (source ``poll``);
* on an exit (pidfd readable, or :meth:`ProgramWatcher.exited` called by the event listener)
  it first settles supervisord: any XML-RPC request wakes its loop, which reaps the child, so
  it asks until supervisord no longer reports the dead pid as running (a few ms). The check
  that runs next therefore sees EXITED, and supervisord's own autorestart, if configured,
  happens now. Then it calls ``on_exit(watcher, pid, source)`` once per pid, whichever source
  saw the exit first (``pidfd`` or ``event``); when it finds the program running again after
  it was not, it calls ``on_start(watcher, pid)`` (the checks then see the recovery at once);
* it never raises out of :meth:`run`: an unreachable supervisord or a pidfd that cannot be
  opened (another user's process, a kernel without pidfd) degrades to polling, which the
  check's own interval already covers.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from agent.engine.internal_errors import costs
from agent.modules.checks._supervisor_rpc import RUNNING_STATES, process_info
from botwarden.errors import ModuleError

log = logging.getLogger("agent.watch")

ExitHandler = Callable[["ProgramWatcher", int, str], Awaitable[None]]
StartHandler = Callable[["ProgramWatcher", int], None]

RPC_TIMEOUT_S = 2.0
SETTLE_LIMIT_S = 1.0
"""How long to ask supervisord to notice an exit before running the checks anyway."""


class ProgramWatcher:
    """Watch one supervisord program's process; see the module docstring."""

    def __init__(self, url: str, program: str, on_exit: ExitHandler, *, idle_poll: float = 1.0,
                 on_start: StartHandler | None = None) -> None:
        self.url = url
        self.program = program
        self.pid: int | None = None
        """The pid currently watched (None while the program is not running)."""
        self._on_exit = on_exit
        self._on_start = on_start
        self._idle_poll = idle_poll
        self._nudged = asyncio.Event()
        self._handled: deque[int] = deque(maxlen=16)  # pids whose exit was already reported
        self._last_start: float | None = None  # supervisord's start time of the last process seen

    def nudge(self) -> None:
        """Look at supervisord again now (the program was (re)started, or may have been)."""
        self._nudged.set()

    async def exited(self, pid: int | None, source: str) -> None:
        """An exit learnt elsewhere (the event listener). Reported once per pid."""
        pid = pid or self.pid
        if pid is None or pid in self._handled:
            self.nudge()
            return
        await self._report(pid, source)

    async def run(self) -> None:
        """Watch until cancelled."""
        pidfd_broken = False
        while True:
            pid = await self._running_pid()
            if pid is not None and pid != self.pid and self.pid is None and self._on_start is not None:
                self._on_start(self, pid)  # running again (a restart): its checks see it at once
            self.pid = pid
            if pid is None or pidfd_broken or pid in self._handled:
                await self._wait_nudge(self._idle_poll)
                continue
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:  # died between supervisord's answer and now
                await self._report(pid, "pidfd")
                continue
            except OSError as exc:  # EPERM (not our process), ENOSYS (old kernel)...
                log.warning("cannot watch %s (pid %d) with a pidfd: %s; relying on polling and events",
                            self.program, pid, exc)
                pidfd_broken = True
                continue
            try:
                exited = await self._wait_readable_or_nudge(fd)
            finally:
                os.close(fd)
            if exited:
                await self._report(pid, "pidfd")

    # -- internals ----------------------------------------------------------------------------
    async def _report(self, pid: int, source: str) -> None:
        if pid in self._handled:
            return
        self._handled.append(pid)
        detected = time.monotonic()
        await self._settle(pid)
        log.info("%s (pid %d) exited; seen by %s, supervisord settled in %.1f ms", self.program, pid, source,
                 (time.monotonic() - detected) * 1000)
        try:
            await self._on_exit(self, pid, source)
        except Exception:  # a handler bug must not end the watch
            log.exception("exit handler for %s failed", self.program, extra=costs(
                f"this exit of {self.program} is acted on only when its check runs next"))

    async def _settle(self, pid: int) -> None:
        """Ask supervisord until it has reaped ``pid`` (each request wakes its loop)."""
        deadline = time.monotonic() + SETTLE_LIMIT_S
        while time.monotonic() < deadline:
            try:
                info = await process_info(self.url, self.program, timeout=RPC_TIMEOUT_S)
            except ModuleError:
                return
            if info.get("pid") != pid or info.get("statename") not in RUNNING_STATES:
                return
            # supervisord reaps at the end of the loop pass that read this request, before it
            # writes the answer: the next request, sent at once, finds the child reaped
            await asyncio.sleep(0)

    async def _running_pid(self) -> int | None:
        try:
            info = await process_info(self.url, self.program, timeout=RPC_TIMEOUT_S)
        except ModuleError as exc:
            log.debug("watch %s: %s", self.program, exc.message)
            return None
        pid = info.get("pid") or None
        running = info.get("statename") in RUNNING_STATES
        start = float(info.get("start") or 0) or None
        previous, self._last_start = self._last_start, start
        if not running and start is not None and previous is not None and start != previous:
            # A process we never saw running has come and gone (see the module docstring).
            log.info("%s: a process started at %.3f exited before it could be watched", self.program, start)
            try:
                await self._on_exit(self, 0, "poll")
            except Exception:  # a handler bug must not end the watch
                log.exception("exit handler for %s failed", self.program, extra=costs(
                    f"this exit of {self.program} is acted on only when its check runs next"))
        return pid if running else None

    async def _wait_nudge(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._nudged.wait(), timeout)
        except TimeoutError:
            pass
        self._nudged.clear()

    async def _wait_readable_or_nudge(self, fd: int) -> bool:
        """True when the process behind ``fd`` exited; False when nudged (re-check the pid)."""
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()

        def on_readable() -> None:
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(fd, on_readable)
        nudged = asyncio.ensure_future(self._nudged.wait())
        waiting: set[asyncio.Future[Any]] = {readable, nudged}
        try:
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            loop.remove_reader(fd)
            nudged.cancel()
            if not readable.done():
                readable.cancel()
        self._nudged.clear()
        return readable in done
