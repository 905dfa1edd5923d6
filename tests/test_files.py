"""botwarden.files.write_durably: old content or new, never a mix, private from the first byte."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from botwarden.files import write_durably


def test_the_new_content_replaces_the_old_privately_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    write_durably(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_failed_write_leaves_the_old_content_and_no_temporary_file(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        write_durably(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_named_temporary_file_is_used(tmp_path: Path) -> None:
    target, temp = tmp_path / "h.json", tmp_path / "h.json.tmp-1"
    write_durably(target, b"x", temp=temp)
    assert target.read_bytes() == b"x" and not temp.exists()
