"""Notice the agent's database file being deleted or replaced under the running agent.

SQLite keeps writing to an unlinked file: a deleted ``agent.db`` would swallow every write while
``agent status``, ``agent ack`` and the web page read (or create) a different, empty file, so
acknowledgements and silences would go where the agent never looks. The watch compares the
file's identity (device and inode) with the one the agent opened, every :data:`POLL_SECONDS`; on
a difference it says so loudly (log and a message sent directly through apprise) and asks the
agent to stop with :data:`EXIT_STORE_LOST`, so supervisord starts it again on a fresh file
(whose first results decide again whatever is still wrong).
"""
from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from agent.engine.waits import stopped_within
from botwarden.errors import ExitCode

log = logging.getLogger("agent")

POLL_SECONDS = 1.0
EXIT_STORE_LOST = ExitCode.OPERATIONAL


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite store URL (None for another database or an in-memory one)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database or parsed.database == ":memory:":
        return None
    database = parsed.database.removeprefix("file:").split("?", 1)[0]
    return Path(database)


def file_identity(path: Path) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of ``path``, or None when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


class StoreFileWatch:
    """Calls ``on_lost(reason)`` once when the database file is gone or is another file."""

    def __init__(self, path: Path, on_lost: Callable[[str], None], *, poll: float = POLL_SECONDS) -> None:
        self.path = path
        self._on_lost = on_lost
        self._poll = poll
        self._identity: tuple[int, int] | None = None

    async def start(self) -> None:
        """Remember the identity of the file the agent opened (call after the store opened it)."""
        self._identity = await asyncio.to_thread(file_identity, self.path)

    async def run(self, stop: asyncio.Event) -> None:
        if self._identity is None:
            await self.start()
        while not await stopped_within(stop, self._poll):
            try:
                now = await asyncio.to_thread(file_identity, self.path)
            except OSError as exc:  # unreadable directory: say it, keep watching
                log.warning("cannot look at the agent database %s: %s", self.path, exc)
                continue
            if now == self._identity:
                continue
            reason = (f"the agent database {self.path} was deleted" if now is None else
                      f"the agent database {self.path} was replaced by another file")
            log.critical("%s while the agent was using it: stopping so that supervisord restarts the agent "
                         "on the database that is there now", reason)
            self._on_lost(reason)
            await stop.wait()  # the agent stops in a moment: ending first would read as a failed task
            return
