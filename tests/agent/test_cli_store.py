"""The CLI never creates the agent's database (issue 14, item 6): `agent status`, `ack`,
`silence`, `history` and `explain` on a database that is not there fail loudly (exit 4, what to
check) instead of writing where the resident agent never reads."""
from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli.main import main
from tests.e2e.harness import AgentWorld


@pytest.mark.parametrize("args", [["status"], ["ack", "1"], ["silence", "--list"], ["history"], ["explain", "1"]])
def test_a_command_on_a_missing_database_exits_4_and_creates_nothing(tmp_path: Path, args: list[str],
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    world = AgentWorld(tmp_path / "world", "unix:///nonexistent.sock", "json://127.0.0.1:9/")
    assert not world.db_path.exists()
    code = main([*args, "--inventory", str(world.inventory), "--store", world.store_url])
    assert code == 4
    assert "does not exist" in capsys.readouterr().err
    assert not world.db_path.exists()
