"""Files written so that a crash or a power cut leaves either the old content or the new one."""
from __future__ import annotations

import os
from pathlib import Path


def write_durably(path: Path, data: bytes, *, mode: int = 0o600, temp: Path | None = None) -> None:
    """Replace ``path`` with ``data``: a temporary file beside it (``temp``, by default
    ``.NAME.PID.tmp``; ``mode`` from its first byte), fsync, rename over ``path``, fsync of the
    folder (the rename itself survives a power cut). A failure before the rename leaves ``path``
    as it was and no temporary file; a process killed before it leaves the temporary file."""
    temp = temp or path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
