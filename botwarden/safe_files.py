"""Reading a file that should be a regular file, safely: never blocking, never raising anything
but :class:`FileProblem`, which says what is at the path and what to do.

A path is looked at with ``stat`` before it is opened (a FIFO or a device is never opened) and
opened non-blocking, then checked again on the open descriptor (something swapped in between is
still refused). A symbolic link that loops, one to nothing, a directory, a named pipe, a
socket, a device, no permission and a file over the size limit each have their own message.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

MAX_BYTES = 1024 * 1024
"""Largest configuration file accepted (1 MiB): playbooks are a few kilobytes."""
NOT_A_FILE_HINT = "a configuration file must be a regular file (or a symbolic link to one)"


class FileProblem(Exception):
    """Why a configuration path cannot be used (``message``), and what to do (``hint``)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def key(path: Path | str) -> str:
    """The name a file is known by in a reader (absolute, symbolic links not followed)."""
    return os.path.abspath(path)


def real_path(path: Path | str) -> Path:
    """``path`` with symbolic links resolved where they resolve; never raises (a loop or a
    dangling link is left as it is: reading the path reports it)."""
    try:
        return Path(os.path.realpath(path))
    except (OSError, RuntimeError, ValueError):
        return Path(os.path.abspath(path))


def kind_of(mode: int) -> str | None:
    """What a file of ``mode`` is when it is not a regular file (None when it is one)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file"


def _not_a_file(kind: str) -> FileProblem:
    return FileProblem(f"{kind}, not a file", NOT_A_FILE_HINT)


def os_problem(path: Path | str, exc: OSError) -> FileProblem:
    """The :class:`FileProblem` for an ``OSError`` raised while looking at or reading ``path``."""
    code = exc.errno
    if code == errno.ELOOP:
        return FileProblem("a symbolic link that loops (following it comes back to itself)",
                           "point the link at the real file, or remove it")
    if code == errno.ENOENT and os.path.islink(path):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return FileProblem(f"a symbolic link to {target}, which does not exist",
                           "point the link at the file, or remove it")
    if code == errno.ENOENT:
        return FileProblem("no such file or directory")
    if code in (errno.EACCES, errno.EPERM):
        return FileProblem(f"cannot read file: {exc.strerror or exc}",
                           "check the file's permissions (and those of the directories above it)")
    if code == errno.ENOTDIR:
        return FileProblem("a part of the path is not a directory")
    return FileProblem(f"cannot read file: {exc.strerror or exc}")


def file_problem(path: Path | str) -> FileProblem | None:
    """What makes ``path`` unusable as a configuration file, or None when it is a readable-looking
    regular file (reading it may still fail: :func:`read_file` says why)."""
    try:
        info = os.stat(path)
    except OSError as exc:
        return os_problem(path, exc)
    except ValueError as exc:  # an embedded NUL byte
        return FileProblem(f"not a usable path: {exc}")
    kind = kind_of(info.st_mode)
    return _not_a_file(kind) if kind else None


def read_file(path: Path | str, limit: int = MAX_BYTES) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``); raises :class:`FileProblem`.

    Never blocks: the path is stat'ed first (a FIFO or a device is never opened), then opened
    non-blocking and checked again on the open descriptor (something swapped in between is
    still refused).
    """
    problem = file_problem(path)
    if problem is not None:
        raise problem
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise os_problem(path, exc) from None
    try:
        info = os.fstat(fd)
        kind = kind_of(info.st_mode)
        if kind:
            raise _not_a_file(kind)
        if info.st_size > limit:
            raise FileProblem(f"file is {info.st_size} bytes; the limit is {limit} bytes ({_size(limit)})",
                              "split it, or check that this is the right file")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 16, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise os_problem(path, exc) from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:  # grew while we looked
        raise FileProblem(f"file is larger than the limit of {limit} bytes")
    return data


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n // 1024} KiB"
