"""A scalar YAML resolves to a type it then cannot be (``2026-02-30`` is shaped like a date and
is not one, ``!!float x``, ``!!timestamp x``) raised PyYAML's constructor's own ``ValueError`` or
``AttributeError``, not a ``yaml.YAMLError``: ``agent validate`` and ``agent stack render`` ended
in exit 250 ("internal error") on a date typo in a playbook var, the inventory or the settings
file, and ``-e since=2026-02-30`` ended ``agent run-playbook`` the same way (brk15). Every reader
says it at the value's line and column, with what to write; the bounded reader the programs use
(:mod:`botwarden.safe_yaml`) raises a ``yaml.YAMLError`` for it."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.cli.main import main
from botwarden import safe_yaml
from botwarden.errors import ConfigError, ExitCode
from botwarden.settings import load_settings
from tests.agent.playbook.conftest import copy_of_the_shipped_configuration

UNREADABLE = ["2026-02-30", "2026-13-01T10:00:00Z", "2026-02-30 25:00:00", "!!float x", "!!int x",
              "!!timestamp x", "!!bool maybe"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_of_the_shipped_configuration(tmp_path_factory.mktemp("unreadable"))
    inventory = root / "inventory.yaml"
    inventory.write_text(inventory.read_text().replace("settings: null", "settings: settings.yaml", 1))
    (root / "settings.yaml").write_text("exchange: {seed: 42}\n")
    return root


def _validate(world: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["validate", "--inventory", str(world / "inventory.yaml"), str(world / "playbooks")])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("value", UNREADABLE)
@pytest.mark.parametrize(("file", "before", "after"), [
    ("playbooks/bot-health.yaml", "\nvars:\n", "\nvars:\n  since: {value}\n"),
    ("inventory.yaml", "vars: {}", "vars: {{since: {value}}}"),
    ("settings.yaml", "exchange: {seed: 42}", "exchange: {{seed: {value}}}"),
])
def test_a_value_yaml_cannot_construct_is_reported_at_its_line(
        world: Path, capsys: pytest.CaptureFixture[str], file: str, before: str, after: str, value: str) -> None:
    path = world / file
    original = path.read_text()
    assert before in original
    path.write_text(original.replace(before, after.format(value=value), 1))
    try:
        code, out = _validate(world, capsys)
    finally:
        path.write_text(original)
    assert code == ExitCode.FAILED, out
    assert "internal error" not in out
    line = next(i for i, text in enumerate(path.read_text().replace(before, after.format(value=value), 1)
                                           .splitlines(), 1) if value in text)
    assert f"{path}:{line}:" in out or f"{file}:{line}:" in out, out
    assert "quote it" in out, out


@pytest.mark.parametrize("value", UNREADABLE)
def test_the_bounded_reader_raises_a_yaml_error(value: str) -> None:
    with pytest.raises(yaml.YAMLError, match="line 1"):
        safe_yaml.load(f"since: {value}\n")


@pytest.mark.parametrize("value", UNREADABLE)
def test_the_programs_refuse_the_settings_file_naming_its_line(tmp_path: Path, value: str) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text(f"# mine\nexchange: {{seed: {value}}}\n")
    with pytest.raises(ConfigError, match=r"settings.yaml:2:"):
        load_settings(settings)


@pytest.mark.parametrize("value", ["2026-02-30", "!!float x", pytest.param("[" * 3000 + "]" * 3000, id="deep")])
def test_an_extra_var_yaml_cannot_construct_is_a_command_line_mistake(
        capsys: pytest.CaptureFixture[str], value: str) -> None:
    code = main(["run-playbook", "weekly", "--check", "-e", f"since={value}"])
    out = "".join(capsys.readouterr())
    assert code == ExitCode.USAGE, out
    assert "internal error" not in out and "Error:" in out
