"""drift action (record) and drift check (compare) on real files."""
from __future__ import annotations

from pathlib import Path

import pytest

from agent.modules.actions.drift import DriftAction, DriftActionParams
from agent.modules.checks.drift import DriftCheck, DriftCheckParams


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "var").mkdir()
    (tmp_path / "playbooks").mkdir()
    for name in ("a", "b"):
        (tmp_path / "playbooks" / f"{name}.yaml").write_text(f"name: {name}\n")
    (tmp_path / "inventory.yaml").write_text("version: 1\n")
    return tmp_path


def common(root: Path, **kw):
    return {"files": ["inventory.yaml", "playbooks/*.yaml"], "settings": {"risk": {"max_position_pct": 10}},
            "root": str(root), "dir": str(root / "var" / "baselines"), **kw}


async def check(root, make_ctx, **kw):
    return await DriftCheck().run(DriftCheckParams(**common(root, **kw)), make_ctx())


async def record(root, make_ctx, check_mode=False, **kw):
    return await DriftAction().run(DriftActionParams(**common(root, record=True, **kw)), make_ctx(check_mode=check_mode))


async def test_no_baseline_is_unknown_with_a_hint(root, make_ctx):
    result = await check(root, make_ctx)
    assert result.error and "no baseline" in result.error and "record" in result.error


async def test_record_then_detect_changed_added_removed_and_settings(root, make_ctx):
    preview = await record(root, make_ctx, check_mode=True)
    assert preview.changed and "would record" in preview.msg
    assert not (root / "var" / "baselines" / "config.json").exists()
    first = await record(root, make_ctx)
    assert first.changed and (root / "var" / "baselines" / "config.json").exists()
    assert (await record(root, make_ctx)).changed is False  # idempotent when nothing drifted

    clean = await check(root, make_ctx)
    assert clean.value == 0 and clean.facts["changed"] == []

    (root / "playbooks" / "a.yaml").write_text("name: a\nchanged: true\n")
    (root / "playbooks" / "c.yaml").write_text("name: c\n")
    (root / "playbooks" / "b.yaml").unlink()
    drifted = await check(root, make_ctx, settings={"risk": {"max_position_pct": 50}})
    f = drifted.facts
    assert (f["changed"], f["added"], f["removed"], f["settings_changed"]) == (
        ["playbooks/a.yaml"], ["playbooks/c.yaml"], ["playbooks/b.yaml"], ["risk"])
    assert drifted.value == 4


async def test_setting_values_are_stored_only_as_digests(root, make_ctx):
    await record(root, make_ctx, settings={"token": "s3cret-value-123"})
    assert "s3cret-value-123" not in (root / "var" / "baselines" / "config.json").read_text()


async def test_report_mode_and_gates(root, make_ctx):
    report = DriftActionParams(**common(root, fail_on_drift=True))
    assert (await DriftAction().run(report, make_ctx())).failed  # no baseline yet
    await record(root, make_ctx)
    assert not (await DriftAction().run(report, make_ctx())).failed
    (root / "inventory.yaml").write_text("version: 1\nchanged: yes\n")
    result = await DriftAction().run(report, make_ctx())
    assert result.failed and result.data["changed"] == ["inventory.yaml"] and not result.changed
    kept = await record(root, make_ctx, only_if_missing=True)
    assert kept.changed is False
    replaced = await record(root, make_ctx)
    assert replaced.changed and "1 difference" in replaced.msg


@pytest.mark.parametrize("damage", [b"[1, 2]", b"5", b"[" * 100_000, b"\xff\xfe", b'{"format": 1, "files": [1]}',
                                    b'{"format": 1, "settings": "x"}'],
                         ids=["list", "number", "nested", "not-utf8", "files-list", "settings-text"])
async def test_a_damaged_baseline_is_said_damaged_by_check_and_action(root, make_ctx, damage: bytes):
    """A baseline holding JSON that is no baseline (a list, nested past what JSON reads, files: a
    list) raised AttributeError/RecursionError in the check and the action, not 'cannot compare
    with baseline' (r15c)."""
    await record(root, make_ctx)
    (root / "var" / "baselines" / "config.json").write_bytes(damage)
    result = await check(root, make_ctx)
    assert result.error and "cannot compare with baseline" in result.error, result
    acted = await DriftAction().run(DriftActionParams(**common(root)), make_ctx())
    assert acted.failed and "cannot snapshot or read" in acted.msg, acted
