"""Fixtures for the module suites.

* ``supervisord_factory``: a real supervisord (see tests/support/supervisord.py);
* ``stack``: one supervisord with a program in each interesting state;
* ``make_ctx``: a :class:`RunContext` factory for a host whose supervisor.url is given.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from agent.modules.base import HostContext, RunContext
from tests.support.supervisord import Supervisord, python_command, supervisord_factory  # noqa: F401

PROGRAMS: dict[str, dict[str, Any]] = {
    "bot": {"command": python_command()},
    "idle": {"command": python_command(), "autostart": False},
    "crash": {"command": python_command("import sys; sys.exit(3)")},
    "broken": {"command": "/nonexistent/botwarden-binary"},
    "slowstart": {"command": python_command("import sys, time; time.sleep(0.3); sys.exit(1)"),
                  "autostart": False, "startsecs": 2},
}


@pytest.fixture
def stack(supervisord_factory: Callable[..., Supervisord]) -> Supervisord:
    """supervisord with bot RUNNING, idle STOPPED, crash EXITED(3), broken FATAL."""
    sup = supervisord_factory(PROGRAMS)
    sup.wait_for_state("bot", "RUNNING")
    sup.wait_for_state("crash", "EXITED")
    sup.wait_for_state("broken", "FATAL")
    return sup


@pytest.fixture
def make_ctx() -> Callable[..., RunContext]:
    def factory(supervisor_url: str | None = None, **kwargs: Any) -> RunContext:
        host_vars = {"supervisor": {"url": supervisor_url}} if supervisor_url else {}
        kwargs.setdefault("timeout", 5.0)
        return RunContext(host=HostContext(name="box1", vars=host_vars), **kwargs)

    return factory
