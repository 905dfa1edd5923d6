"""file check on real files: existence, age, size, mode, owner, newest glob match."""
from __future__ import annotations

import os
import pwd
import time

import pytest

from agent.modules.checks.file import FileCheck, FileCheckParams


async def run(make_ctx, path, **kw):
    return await FileCheck().run(FileCheckParams(path=str(path), **kw), make_ctx())


async def test_facts_of_a_secret_file(tmp_path, make_ctx):
    secret = tmp_path / "secrets.env"
    secret.write_text("TOKEN=x\n")
    os.chmod(secret, 0o600)
    os.utime(secret, (time.time() - 3600, time.time() - 3600))
    result = await run(make_ctx, secret)
    f = result.facts
    assert f["exists"] is True and f["size"] == 8 and f["mode"] == "0600"
    assert f["group_or_other_access"] is False and f["world_readable"] is False
    assert f["owner"] == pwd.getpwuid(os.getuid()).pw_name
    assert 3590 < result.value < 3700 and result.value == f["age_s"]


@pytest.mark.parametrize(("mode", "text", "loose", "world"), [
    (0o700, "0700", False, False), (0o640, "0640", True, False), (0o644, "0644", True, True), (0o400, "0400", False, False),
])
async def test_permission_facts(tmp_path, make_ctx, mode, text, loose, world):
    p = tmp_path / "f"
    p.write_text("x")
    os.chmod(p, mode)
    f = (await run(make_ctx, p)).facts
    assert (f["mode"], f["group_or_other_access"], f["world_readable"]) == (text, loose, world)


async def test_directory(tmp_path, make_ctx):
    d = tmp_path / "var"
    d.mkdir(mode=0o700)
    os.chmod(d, 0o700)
    f = (await run(make_ctx, d)).facts
    assert f["is_dir"] is True and f["mode"] == "0700"


async def test_missing_is_a_fact_not_an_error(tmp_path, make_ctx):
    result = await run(make_ctx, tmp_path / "nope")
    assert result.error is None and result.value is None
    assert result.facts["exists"] is False and result.facts["age_s"] is None


async def test_glob_picks_the_newest_match(tmp_path, make_ctx):
    now = time.time()
    for i, age in enumerate([7200, 60, 86400]):
        p = tmp_path / f"botwarden-{i}.tar.gz"
        p.write_text("x" * (i + 1))
        os.utime(p, (now - age, now - age))
    result = await run(make_ctx, f"{tmp_path}/*.tar.gz")
    assert result.facts["path"].endswith("botwarden-1.tar.gz") and result.facts["matches"] == 3
    assert 50 < result.value < 200
    none = await run(make_ctx, f"{tmp_path}/*.zip")
    assert none.facts["exists"] is False and none.facts["matches"] == 0


async def test_dangling_symlink(tmp_path, make_ctx):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "gone")
    assert (await run(make_ctx, link)).facts["exists"] is False
    assert (await run(make_ctx, link, follow_symlinks=False)).facts["exists"] is True
