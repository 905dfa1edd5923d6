"""The halt file: the halts in force, stored outside the bot's database.

A halt stops new entries (stop-losses and exits keep working). The halts in force live in one
small JSON file (``settings.bot.halt_file``, ``var/bot.halt.json``) so that they hold whatever
happens to the bot or its database:

* the agent writes it directly when the bot is dead or hung, and the bot reads it when it
  starts and before every entry order, so a halt taken while the bot was down holds when the
  bot comes back;
* restoring an older bot database (or losing it) never drops a halt;
* only an explicit resume (``agent resume``, ``POST /control/resume``, the ``bot`` action's
  ``resume``) clears one; a ``daily_loss`` halt also ends with its UTC day.

Every change is a read-modify-write under an exclusive ``fcntl`` lock on ``<file>.lock`` (the
bot's threads and the agent's processes serialise on it), written to a temporary file, fsynced
and renamed over the old one, so a reader sees the old or the new document, never a torn one.
A file that exists but cannot be read or parsed counts as a halt (fail closed): trading stays
halted until the file is fixed or an explicit resume rewrites it.

Only the standard library: the agent imports this module to read and write the same file.
Document (version 1)::

    {"version": 1, "halts": [{"id": "9f2c...", "kind": "control", "reason": "...",
                              "by": "agent (emergency)", "at": "2026-01-01T00:00:00+00:00",
                              "day": "2026-01-01"}]}
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

FORMAT_VERSION = 1
EXPIRES_DAILY = "daily_loss"
"""The one kind that ends by itself: at the end of the UTC day it was taken."""
UNREADABLE = "unreadable"
"""The kind of the synthetic halt reported for a halt file that cannot be read."""


def utc_day(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Halt:
    """One halt in force. ``kind``: control (an operator or the agent), daily_loss, reconcile,
    error, or :data:`UNREADABLE`; ``by``: who took it; ``at``: ISO time (UTC)."""

    id: str
    kind: str
    reason: str
    by: str
    at: str
    day: str

    def describe(self) -> str:
        return f"{self.kind}: {self.reason}"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class HaltFileError(OSError):
    """The halt file could not be written (the message names the file and why)."""


class HaltFile:
    """The halts in force at ``path``. Cheap to create; every call reads the file again."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    # --- reading ------------------------------------------------------------------------
    def active(self, today: str | None = None) -> list[Halt]:
        """Every halt in force, oldest first. A daily_loss halt of an earlier UTC day is over.
        An unreadable file is one halt of kind :data:`UNREADABLE` (fail closed)."""
        halts, problem = self._read()
        if problem is not None:
            return [Halt(id="unreadable", kind=UNREADABLE, by="bot", at="", day="",
                         reason=f"the halt file {self.path} cannot be read ({problem}): trading stays halted "
                                "until it is fixed or a resume rewrites it")]
        return _in_force(halts, today or utc_day())

    def _read(self) -> tuple[list[Halt], str | None]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return [], None
        except OSError as exc:
            return [], exc.strerror or type(exc).__name__
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
                raise ValueError(f"not a version {FORMAT_VERSION} halt document")
            if not isinstance(doc["halts"], list):  # {} read as no halt: fail closed like any other damage
                raise TypeError("'halts' is not a list")
            return [_halt(h) for h in doc["halts"]], None
        except (ValueError, KeyError, TypeError, RecursionError) as exc:  # nested past what JSON reads: damage too
            return [], f"{type(exc).__name__}: {exc}"[:200]

    # --- writing ------------------------------------------------------------------------
    def add(self, kind: str, reason: str, *, by: str, same: Literal["kind", "reason"] = "kind") -> tuple[Halt, bool]:
        """Put a halt in force; return (the halt in force, whether it is new).

        A halt already in force with the same ``kind`` (``same="kind"``, the default) or the
        same kind and reason (``same="reason"``) is kept and nothing is added: taking a halt
        twice is one halt. Raises :class:`HaltFileError` when the file cannot be written.
        """
        today = utc_day()
        with self._locked():
            halts, _problem = self._read()  # an unreadable file is replaced: the new halt holds
            current = _in_force(halts, today)
            for h in current:
                if h.kind == kind and (same == "kind" or h.reason == reason):
                    return h, False
            halt = Halt(id=secrets.token_hex(4), kind=kind, reason=reason, by=by,
                        at=datetime.now(UTC).isoformat(timespec="seconds"), day=today)
            self._write([*current, halt])
        return halt, True

    def clear(self, ids: Iterable[str] | None = None) -> list[Halt]:
        """End the halts ``ids`` (default: every halt in force, an unreadable file included);
        return those ended. Raises :class:`HaltFileError` when the file cannot be written."""
        wanted = None if ids is None else set(ids)
        with self._locked():
            halts, problem = self._read()
            if problem is not None:  # the synthetic halt of active(); rewriting the file ends it
                unreadable = self.active()
                if wanted is None or unreadable[0].id in wanted:
                    self._write([])
                    return unreadable
                return []
            current = _in_force(halts, utc_day())
            ended = [h for h in current if wanted is None or h.id in wanted]
            kept = [h for h in current if h not in ended]
            if len(kept) != len(halts):  # some ended now, or daily halts of past days pruned
                self._write(kept)
        return ended

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise HaltFileError(f"cannot lock the halt file {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _write(self, halts: list[Halt]) -> None:
        doc: dict[str, Any] = {"version": FORMAT_VERSION, "halts": [h.as_dict() for h in halts]}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, indent=1)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise HaltFileError(f"cannot write the halt file {self.path}: {exc.strerror or exc}") from None


def _halt(raw: Any) -> Halt:
    if not isinstance(raw, dict):
        raise TypeError("a halt is not an object")
    return Halt(**{k: str(raw[k]) for k in ("id", "kind", "reason", "by", "at", "day")})


def _in_force(halts: list[Halt], today: str) -> list[Halt]:
    return [h for h in halts if not (h.kind == EXPIRES_DAILY and h.day < today)]
