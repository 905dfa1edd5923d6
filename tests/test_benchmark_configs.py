"""The configurations the benchmarks give the agent are valid: a rule added to validation (the
least group_interval, the largest restart budget) refused the crash benchmark's own files, the
agent ran with no check, and `make bench` found no alert and no restart after the first crash
(its figures in docs/performance.md could not be made again). Each is held to `agent validate`."""
from __future__ import annotations

from pathlib import Path

import yaml

from agent.cli.main import main
from benchmarks import capacity, detection


def _valid(d: Path) -> None:
    rc = main(["validate", "--inventory", str(d / "inventory.yaml"), str(d / "playbooks")])
    assert rc == 0


def test_the_crash_benchmarks_configuration_is_valid(tmp_path: Path) -> None:
    (tmp_path / "settings.yaml").write_text(yaml.safe_dump({"var_dir": str(tmp_path / "var")}))
    detection.botwarden_files(tmp_path, "json://127.0.0.1:9/")
    _valid(tmp_path)


def test_the_capacity_benchmarks_configuration_is_valid(tmp_path: Path) -> None:
    capacity._world(100, "http://127.0.0.1:9/", tmp_path, 9)
    _valid(tmp_path)
