"""Nothing the stack serves leaves this machine: every bind address is loopback, in the settings
file and on the command line, and there is no setting that opens it."""
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.cli.main import main
from botwarden.settings import StackSettings, loopback_host
from tests.e2e.harness import AgentWorld


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost"])
def test_loopback_addresses_are_accepted(host: str) -> None:
    assert loopback_host(host) == host


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.org", "", "127.0.0.1.nip.io"])
@pytest.mark.parametrize("section", ["bot", "exchange", "inbox", "web"])
def test_every_bind_address_of_the_settings_must_be_loopback(section: str, host: str) -> None:
    with pytest.raises(ValidationError, match="not a loopback address"):
        StackSettings.model_validate({section: {"host": host}})


def test_the_web_pages_host_option_must_be_loopback_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    world = AgentWorld(tmp_path / "world", "unix:///nonexistent.sock", "json://127.0.0.1:9/")
    world.write_playbook("p", "version: 1\nname: p\nhosts: local\ntasks:\n  - command: {argv: [\"true\"]}\n")
    code = main(["web", "--host", "0.0.0.0", "--port", "0", "--inventory", str(world.inventory)])
    assert code == 2
    assert "not a loopback address" in capsys.readouterr().err
