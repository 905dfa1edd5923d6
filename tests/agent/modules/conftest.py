"""Fixtures for the module suites.

* ``supervisord_factory``: a real supervisord (see tests/support/supervisord.py);
* ``stack``: one supervisord with a program in each interesting state;
* ``make_ctx``: a :class:`RunContext` factory for a host whose supervisor.url is given;
* ``http_server``: a real HTTP server on 127.0.0.1; ``shared_clients`` closes the http
  checks' pooled clients at the end of the test.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from agent.http import close_shared_clients
from agent.modules.base import HostContext, RunContext
from tests.agent.modules._http_fixture_server import FixtureServer
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


@pytest.fixture
def http_server() -> Iterator[FixtureServer]:
    """A real HTTP server on 127.0.0.1 with fixed routes (see _http_fixture_server.py)."""
    server = FixtureServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def shared_clients() -> AsyncIterator[None]:
    """Close the http checks' per-loop clients when the test's loop ends."""
    yield
    await close_shared_clients()
