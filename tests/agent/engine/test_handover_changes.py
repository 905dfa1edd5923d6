"""A reload that removes tasks from a hand-over play (``budget.then``, the emergency) is told
(issue 15, F5: ``head -40 emergency.yaml > emergency.yaml`` loaded silently: the emergency then
only halted and stopped, no flatten, no page). Real shipped playbooks, the real loader."""
from __future__ import annotations

from pathlib import Path

from agent.engine.handover_changes import handover_plays, message, removed_handover_tasks
from agent.modules.registry import default_registry
from agent.playbook import load_config
from agent.playbook.rules import iter_tasks
from tests.agent.playbook.conftest import copy_of_the_shipped_configuration


def _load(root: Path) -> dict:  # type: ignore[type-arg]
    result = load_config(root / "inventory.yaml", [root / "playbooks"], default_registry(), env={},
                         templates_dir=root / "templates")
    assert result.config is not None, "\n".join(map(str, result.diagnostics))
    return result.config.playbooks


def test_an_emergency_cut_at_a_task_boundary_loads_and_is_told(tmp_path: Path) -> None:
    root = copy_of_the_shipped_configuration(tmp_path)
    before = _load(root)
    assert "emergency" in handover_plays(before)
    emergency = root / "playbooks" / "emergency.yaml"
    lines = emergency.read_text(encoding="utf-8").split("\n")
    tasks_at = [i for i, line in enumerate(lines) if line.startswith("  - name: ")]
    assert len(tasks_at) >= 3
    emergency.write_text("\n".join(lines[: tasks_at[2]]) + "\n", encoding="utf-8")  # valid YAML, 2 tasks left
    after = _load(root)
    removed = removed_handover_tasks(before, after)
    kept = {task.name for _, task in iter_tasks(after["emergency"].tasks, ("tasks",))}
    lost = sorted(task.name for _, task in iter_tasks(before["emergency"].tasks, ("tasks",)) if task.name not in kept)
    assert lost and removed == {"emergency": lost}
    title, body = message(removed)
    assert title == "[CONFIG] reload removed tasks from 'emergency'" and lost[0] in body
    assert removed_handover_tasks(before, _load(copy_of_the_shipped_configuration(tmp_path / "again"))) == {}
    assert removed_handover_tasks(after, before) == {}, "adding tasks back is not told"
