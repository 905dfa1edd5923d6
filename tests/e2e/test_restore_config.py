"""restore-config on the running stack: a backup, an edited playbook, preview, restore."""
from __future__ import annotations

import pytest

from tests.support.stack import running_stack  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow


def test_restore_config_previews_then_restores_and_keeps_the_edited_copy(running_stack):
    stack = running_stack(shipped_playbooks=True)
    stack.wait_running()
    r = stack.agent("run-playbook", "backup", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    target = stack.root / "playbooks" / "bot-health.yaml"
    original = target.read_text()
    target.write_text(original + "\n# an edit that must be undone\n")

    r = stack.agent("run-playbook", "restore-config", "--check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "an edit" in target.read_text()  # check mode changed nothing

    r = stack.agent("run-playbook", "restore-config", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "changed: [local] restore settings, inventory and playbooks" in r.stdout
    assert target.read_text() == original
    kept = list(target.parent.glob("bot-health.yaml.replaced-*"))
    assert len(kept) == 1 and "an edit" in kept[0].read_text()
    stack.wait_state("bot", "RUNNING")
