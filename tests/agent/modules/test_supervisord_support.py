"""The shared supervisord helper starts a real supervisord and never leaks processes."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import psutil
import pytest

from tests.support.supervisord import python_command, render_config, start_supervisord


def test_config_has_private_socket_and_program_defaults(tmp_path: Path) -> None:
    text = render_config(tmp_path, Path("/tmp/bwx/s.sock"), {"bot": {"command": "x", "startsecs": 3}})
    assert "chmod=0700" in text
    assert "nodaemon=true" in text
    assert "[rpcinterface:supervisor]" in text and "[supervisorctl]" in text
    assert "startsecs=3" in text and "autorestart=false" in text


def test_program_without_command_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs a command"):
        render_config(tmp_path, Path("/tmp/s.sock"), {"bot": {}})


def test_starts_runs_programs_and_cleans_up(tmp_path: Path) -> None:
    sup = start_supervisord(tmp_path, {"bot": {"command": python_command()}})
    with sup:
        info = sup.wait_for_state("bot", "RUNNING")
        child_pid = info["pid"]
        assert psutil.pid_exists(child_pid)
        assert sup.url.startswith("unix://")
        mode = stat.S_IMODE(os.stat(sup.socket_path).st_mode)
        assert mode == 0o700
        assert sup.conf_path.read_text().count("[program:bot]") == 1
    assert sup.process.poll() is not None
    assert not psutil.pid_exists(child_pid) or psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE
    assert not sup.socket_dir.exists()
    sup.stop()  # idempotent


def test_killed_supervisord_does_not_orphan_programs(tmp_path: Path) -> None:
    sup = start_supervisord(tmp_path, {"bot": {"command": python_command()}})
    child_pid = sup.wait_for_state("bot", "RUNNING")["pid"]
    sup.process.kill()  # supervisord cannot stop its programs now
    sup.process.wait()
    sup.stop()
    assert not psutil.pid_exists(child_pid) or psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE


def test_fixture_factory(supervisord_factory) -> None:
    a = supervisord_factory({"one": {"command": python_command()}})
    b = supervisord_factory({"two": {"command": python_command(), "autostart": False}})
    assert a.wait_for_state("one", "RUNNING")["name"] == "one"
    assert b.info("two")["statename"] == "STOPPED"
    assert a.socket_path != b.socket_path
