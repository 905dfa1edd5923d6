"""Delivery receipts: the answers an outbox got, written down before the store records them.

The outbox is at-least-once in one window: a message its target accepted, whose row is not yet
marked sent when the outbox's process dies (SIGKILL, the OOM killer), is sent again by the next
outbox, saying so. Most of that window is not the delivery but the wait for the store: the
answer is in, and marking the row waits its turn behind the other writers (measured on a loaded
two-core machine right after an agent start: 25-93 ms after the answer, where the answer itself
came 30-660 ms after the request; agent-killed-mid-remediation sent 3 of 20 crash alerts twice).

So the outbox appends ``ID TIME`` to a small file of its own the moment a target accepts a
message (one ``write`` on an ``O_APPEND`` descriptor: no lock, no fsync), then marks the row. The
outbox that finds a dead owner's claims (:meth:`agent.notify.outbox.Outbox.run`) reads that
owner's receipts first: the rows listed were accepted, and are marked sent instead of being sent
again; only the others are sent again, with the repeat note. The file is emptied whenever every
answer in it is recorded, and removed when its outbox stops. A message whose answer had not come
back when the process died (the target holding its answer, agent-killed-mid-delivery) is still
sent again: that window cannot be closed from this side.

The receipts live in ``outbox-receipts/`` beside the agent's database (``var/``, mode 0700), one
file per owner, named by a hash of the owner (outboxes of other databases in the same directory
have other owners). Only row ids and times are written: nothing of a
message. Writing is best effort: a receipt that cannot be written costs what it did before.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

STALE_AFTER_S = 86400.0
"""A receipts file not written for a day belongs to no claim any more (claims expire long before)."""


def receipts_dir(store_url: str) -> Path | None:
    """Where the receipts of a store's outboxes go; ``None`` for a store without a file."""
    prefix = "sqlite:///"
    if not store_url.startswith(prefix) or ":memory:" in store_url:
        return None
    return Path(store_url[len(prefix):]).parent / "outbox-receipts"


class DeliveryReceipts:
    """The receipts of one outbox (``owner``), and the reading of a dead owner's."""

    def __init__(self, directory: Path | None, owner: str) -> None:
        self.directory = directory
        self.owner = owner
        self._fd: int | None = None
        self._unrecorded: set[int] = set()

    def path(self, owner: str) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / hashlib.sha256(owner.encode()).hexdigest()[:24]

    def accepted(self, row_id: int, at: datetime) -> None:
        """A target accepted row ``row_id`` at ``at``; call before marking it sent."""
        path = self.path(self.owner)
        if path is None:
            return
        try:
            if self._fd is None:
                path.parent.mkdir(mode=0o700, exist_ok=True)
                self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            # each receipt opens with a newline too: one cut short by a full disk ("12") is ended by
            # the next one instead of running into it ("12" + "7 T" read as row 127)
            os.write(self._fd, f"\n{row_id} {at.timestamp():.6f}\n".encode())
            self._unrecorded.add(row_id)
        except OSError as exc:
            log.debug("delivery receipt of notification %d not written: %s", row_id, exc)

    def recorded(self, row_id: int) -> None:
        """Row ``row_id`` is marked sent in the store: its receipt is no longer needed."""
        self._unrecorded.discard(row_id)
        if not self._unrecorded and self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)  # O_APPEND: the next receipt starts the file again
            except OSError:
                pass

    def close(self) -> None:
        """The outbox stops: its file goes, unless an answer in it is still unrecorded."""
        if self._fd is None:
            return
        os.close(self._fd)
        self._fd = None
        path = self.path(self.owner)
        if path is not None and not self._unrecorded:
            _remove(path)

    def of(self, owner: str) -> dict[int, datetime]:
        """The receipts a (dead) ``owner`` left: row id -> when its target accepted it. A line
        cut off by the kill (no newline) is ignored."""
        path = self.path(owner)
        if path is None:
            return {}
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return {}
        found: dict[int, datetime] = {}
        for line in text.split("\n")[:-1]:  # a last line without its newline was cut off: not read
            parts = line.split()
            if len(parts) != 2 or not parts[0].isdigit():
                continue
            try:
                found[int(parts[0])] = datetime.fromtimestamp(float(parts[1]), UTC)
            except (ValueError, OverflowError, OSError):
                continue
        return found

    def sweep(self, older_than: float = STALE_AFTER_S) -> None:
        """Remove the files of outboxes that died with nothing left to claim (their rows were all
        recorded, or their database was replaced): not written for ``older_than`` seconds."""
        if self.directory is None:
            return
        mine = self.path(self.owner)
        try:
            files = list(self.directory.iterdir())
        except OSError:
            return
        now = time.time()
        for path in files:
            try:
                if path != mine and now - path.stat().st_mtime > older_than:
                    path.unlink()
            except OSError:
                continue

    def forget(self, owner: str) -> None:
        path = self.path(owner)
        if path is not None:
            _remove(path)


def _remove(path: Path) -> None:
    """Remove a receipts file, best effort like every write here: a directory that is a file, or
    one this user may not write, never stops the outbox (it died at start, delivering nothing)."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.debug("delivery receipts %s not removed: %s", path.name, exc)
