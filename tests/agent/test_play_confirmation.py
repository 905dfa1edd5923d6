"""Which plays `agent run-playbook` and the web page confirm before running: every play that can
reach a destructive module, whichever part of the play holds it (tasks, blocks, handlers)."""
from __future__ import annotations

from pathlib import Path

import pytest

from agent.engine.operator_actions import needs_confirmation
from agent.modules.registry import default_registry
from agent.playbook import load_config

REPO = Path(__file__).resolve().parents[2]

PLAY = """
version: 1
name: sneaky
hosts: bots
tasks:
  - name: something that changes
    command: {{argv: ["true"]}}
    changed_when: true
    notify: [halt it]
handlers:
  - name: halt it
    {module}
"""


@pytest.mark.parametrize(("module", "confirmed"), [("bot: {action: halt}", True),
                                                  ("command: {argv: ['true']}", False)])
def test_a_destructive_module_in_a_handler_is_confirmed(tmp_path: Path, module: str, confirmed: bool) -> None:
    path = tmp_path / "sneaky.yaml"
    path.write_text(PLAY.format(module=module))
    result = load_config(REPO / "inventory.yaml", [REPO / "playbooks" / "emergency.yaml", path], default_registry(),
                         env={})
    assert result.config is not None, "\n".join(map(str, result.diagnostics))
    assert needs_confirmation(result.config.playbooks["sneaky"], result.config) is confirmed
