"""restore action, configuration files: real archives written by the backup code, real files.

Verified first, unchanged files left alone, the current copy kept aside, permission bits of a
private file kept, check mode touches nothing, unknown names fail before anything is replaced."""
from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.modules import _sqlite_backup as bk
from agent.modules.actions.restore import RestoreAction, RestoreActionParams
from agent.modules.base import HostContext, RunContext
from tests.agent.modules._sqlite_fixtures import count, make_db

ORIGINAL = {
    "settings.yaml": "bot:\n  risk: {daily_loss_limit_pct: 5}\n",
    "inventory.yaml": "version: 1\n",
    "playbooks/bot-health.yaml": "version: 1\nname: bot-health\n",
    "playbooks/weekly.yaml": "version: 1\nname: weekly\n",
    "secrets.env": "BOTWARDEN_BOT_TOKEN=abc\n",
}


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "root"
    var = root / "var"
    var.mkdir(parents=True)
    for rel, text in ORIGINAL.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "secrets.env").chmod(0o600)
    bot = make_db(var / "bot.db", rows=30)
    files = bk.expand_files(["settings.yaml", "inventory.yaml", "playbooks", "secrets.env"], root)
    info, _ = bk.create_archive(var / "backups", "botwarden", {"bot": bot}, files,
                                now=datetime(2025, 1, 1, 2, tzinfo=UTC), timeout=10)
    return {"root": root, "var": var, "bot": bot, "backups": var / "backups", "archive": info.path}


def ctx(w: dict[str, Path], check_mode: bool = False) -> RunContext:
    """The host vars of a stack: var_dir under the root the backup stored files relative to."""
    return RunContext(host=HostContext("box1", {"var_dir": str(w["var"])}), check_mode=check_mode, timeout=10)


def params(w: dict[str, Path], **kw: object) -> RestoreActionParams:
    return RestoreActionParams.model_validate({"source": str(w["backups"]), **kw})


async def test_a_wrongly_edited_file_is_restored_and_kept_aside(world) -> None:
    settings = world["root"] / "settings.yaml"
    settings.write_text("bot:\n  risk: {daily_loss_limit_pct: 50}\n")  # the bad edit
    inventory_before = (world["root"] / "inventory.yaml").stat().st_mtime_ns
    result = await RestoreAction().run(params(world, files=["settings.yaml"]), ctx(world))
    assert (result.failed, result.changed) == (False, True), result.msg
    assert settings.read_text() == ORIGINAL["settings.yaml"]
    [aside] = [Path(p) for p in result.data["moved_aside"]]
    assert aside.name.startswith("settings.yaml.replaced-") and "50" in aside.read_text()
    assert (world["root"] / "inventory.yaml").stat().st_mtime_ns == inventory_before
    assert result.msg.startswith("restored 1 file(s) (settings.yaml) from botwarden-20250101T020000Z")
    assert not list(world["root"].glob(".*.restoring"))


async def test_a_directory_restores_what_differs_and_recreates_what_is_gone(world) -> None:
    playbooks = world["root"] / "playbooks"
    (playbooks / "bot-health.yaml").unlink()
    (playbooks / "weekly.yaml").write_text("edited\n")
    result = await RestoreAction().run(params(world, files=["playbooks/"]), ctx(world))
    assert not result.failed, result.msg
    assert (playbooks / "bot-health.yaml").read_text() == ORIGINAL["playbooks/bot-health.yaml"]
    assert (playbooks / "weekly.yaml").read_text() == ORIGINAL["playbooks/weekly.yaml"]
    assert [Path(p).name.split(".replaced-")[0] for p in result.data["moved_aside"]] == ["weekly.yaml"]
    again = await RestoreAction().run(params(world, files=["playbooks"]), ctx(world))
    assert (again.failed, again.changed) == (False, False)
    assert again.msg == "2 file(s) already as in botwarden-20250101T020000Z; nothing to restore"


async def test_a_private_file_stays_private(world) -> None:
    secrets = world["root"] / "secrets.env"
    secrets.write_text("BOTWARDEN_BOT_TOKEN=changed\n")
    secrets.chmod(0o600)
    result = await RestoreAction().run(params(world, files=["secrets.env"]), ctx(world))
    assert not result.failed, result.msg
    assert secrets.read_text() == ORIGINAL["secrets.env"]
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    secrets.unlink()  # gone: the mode recorded in the archive (0600 when it was taken)
    result = await RestoreAction().run(params(world, files=["secrets.env"]), ctx(world))
    assert not result.failed and stat.S_IMODE(secrets.stat().st_mode) == 0o600


async def test_check_mode_says_what_would_change_and_touches_nothing(world) -> None:
    settings = world["root"] / "settings.yaml"
    settings.write_text("edited\n")
    result = await RestoreAction().run(params(world, files=["settings.yaml", "inventory.yaml"]),
                                       ctx(world, check_mode=True))
    assert (result.failed, result.changed) == (False, True)
    assert result.msg.startswith("would restore 1 file(s) (settings.yaml) from botwarden-20250101T020000Z")
    assert [(f["file"], f["unchanged"]) for f in result.data["files"]] == [
        ("settings.yaml", False), ("inventory.yaml", True)]
    assert settings.read_text() == "edited\n" and not list(world["root"].glob("*.replaced-*"))


async def test_an_unknown_file_fails_before_anything_is_replaced(world) -> None:
    (world["root"] / "settings.yaml").write_text("edited\n")
    db_before = world["bot"].read_bytes()
    result = await RestoreAction().run(
        params(world, files=["settings.yaml", "nginx.conf"], databases={"bot": str(world["bot"])}), ctx(world))
    assert result.failed and "has no file 'nginx.conf' (it has inventory.yaml, playbooks/" in result.msg
    assert (world["root"] / "settings.yaml").read_text() == "edited\n"
    assert world["bot"].read_bytes() == db_before


async def test_files_and_databases_together(world) -> None:
    make_db(world["bot"], rows=5)  # more rows after the backup
    (world["root"] / "settings.yaml").write_text("edited\n")
    result = await RestoreAction().run(
        params(world, files=["settings.yaml"], databases={"bot": str(world["bot"])}), ctx(world))
    assert not result.failed, result.msg
    assert count(world["bot"]) == 30 and (world["root"] / "settings.yaml").read_text() == ORIGINAL["settings.yaml"]
    assert result.msg.startswith("restored bot, 1 file(s) (settings.yaml) from")


async def test_an_explicit_root(world, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    result = await RestoreAction().run(params(world, files=["inventory.yaml"], root=str(elsewhere)), ctx(world))
    assert not result.failed and (elsewhere / "inventory.yaml").read_text() == ORIGINAL["inventory.yaml"]


async def test_a_damaged_archive_restores_no_file(world) -> None:
    data = bytearray(world["archive"].read_bytes())
    data[len(data) // 2] ^= 0xFF
    world["archive"].write_bytes(bytes(data))
    (world["root"] / "settings.yaml").write_text("edited\n")
    result = await RestoreAction().run(params(world, files=["settings.yaml"]), ctx(world))
    assert result.failed and "does not verify; nothing was replaced" in result.msg
    assert (world["root"] / "settings.yaml").read_text() == "edited\n"


@pytest.mark.parametrize(("kw", "error"), [
    ({}, "give databases or files"),
    ({"files": ["../etc/passwd"]}, "without '..'"),
    ({"files": ["/etc/passwd"]}, "relative to the backup's root"),
])
def test_bad_parameters_are_refused_at_load(kw, error) -> None:
    with pytest.raises(ValidationError, match=error):
        RestoreActionParams.model_validate({"source": "/x", **kw})
