"""Who is the active bot, and a warm spare that takes over the moment it dies.

A fresh Python process spends most of a second importing (SQLAlchemy, the SDK and eth_account,
pandas) before it can reconcile; after a crash the account would be unattended that long. So:

* **The active lock.** An exclusive ``flock`` on ``bot.lock_file``: only its holder trades,
  serves HTTP and writes the database; it writes its pid into the file. The kernel releases
  the lock the instant its holder dies, however it dies.
* **The spare.** Right after taking the lock, before it starts any thread, the bot forks a
  copy of itself (imports done). The spare prepares everything that does not need the lock
  (store, exchange metadata, a rehearsal of the strategy and of signing, so no first-use cost
  is left) and waits on the lock. When the active bot dies without stopping (a crash,
  SIGKILL), the spare gets the lock and runs the rest of the start path (reconcile, then
  trade) as an *interim* bot: within milliseconds, not a second.
* **Stopping is not dying.** A bot asked to stop (SIGTERM, SIGINT) kills its spare first, and
  supervisord's stop signals the whole process group (``stopasgroup``); a spare that gets
  SIGTERM while waiting exits at once.
* **Hand-over.** The interim is nobody's supervised process. The bot that supervisord (or the
  agent) starts next finds the lock held, sends the holder ``SIGUSR2``, and waits: the interim
  finishes its iteration, stops and releases the lock; the new bot takes over and forks its own
  spare. An interim nobody relieves stops by itself after ``bot.spare_tenure_s``.
* **Logs.** An interim whose stdout was a pipe to the dead bot's supervisor (gone with it)
  appends to the program's log file instead.

Linux/POSIX only (``fork``, ``flock``).
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import stat
import sys
import time
from pathlib import Path
from types import FrameType

log = logging.getLogger("bot.trading.standby")
HANDOVER_SIGNAL = signal.SIGUSR2


class ActiveLock:
    """The exclusive lock that makes one process the active bot."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def try_acquire(self) -> bool:
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def acquire(self, timeout: float | None) -> bool:
        """Wait for the lock: blocking in the kernel when ``timeout`` is None (signal handlers
        still run: the syscall is resumed after them), else polling until ``timeout``."""
        if timeout is None:
            fd = self._open()
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.fd = fd
            return True
        deadline = time.monotonic() + timeout
        while not self.try_acquire():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)
        return True

    def holder_pid(self) -> int | None:
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def write_pid(self) -> None:
        assert self.fd is not None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def forget_inherited(self) -> None:
        """In a forked child: drop the parent's descriptor without unlocking (the lock belongs
        to the open file description both share; an unlock here would free the parent's)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def take_active(lock: ActiveLock, wait_s: float) -> bool:
    """Become the active bot: take the lock, or ask its holder (an interim) to hand over and
    wait up to ``wait_s`` for it. False when the holder does not let go."""
    if lock.try_acquire():
        return True
    holder = lock.holder_pid()
    log.warning("another bot is active; asking it to hand over",
                extra={"event": "handover_request", "holder_pid": holder})
    if holder is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(holder, HANDOVER_SIGNAL)
    return lock.acquire(wait_s)


def fork_spare(lock: ActiveLock) -> int:
    """Fork the warm spare: the spare's pid in the active bot, 0 in the spare. In the spare, the
    parent's lock descriptor is dropped (without unlocking) and SIGTERM/SIGINT end it at once;
    it then prepares what it can and calls :func:`wait_for_takeover`. Call before any thread."""
    pid = os.fork()
    if pid != 0:
        return pid
    lock.forget_inherited()

    def leave(signum: int, frame: FrameType | None) -> None:
        os._exit(0)  # a spare asked to stop has nothing to finish

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, leave)
    signal.signal(HANDOVER_SIGNAL, signal.SIG_IGN)
    return 0


def wait_for_takeover(lock: ActiveLock, log_file: Path) -> None:
    """In the spare: block until the active bot is gone and the lock is ours."""
    lock.acquire(None)
    _follow_log(log_file)


def stop_spare(pid: int | None) -> None:
    """Stop the spare (the active bot is stopping on purpose: nobody must take over)."""
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _follow_log(log_file: Path) -> None:
    """Once the bot whose stdout we share is dead, a pipe to its supervisor is gone: append to
    the program's log file instead (a file or a terminal is kept as it is)."""
    try:
        if not stat.S_ISFIFO(os.fstat(sys.stdout.fileno()).st_mode):
            return
        log_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    except (OSError, ValueError):
        return
    sys.stdout.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
