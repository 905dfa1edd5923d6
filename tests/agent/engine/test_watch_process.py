"""Exit detection against a real supervisord: the pidfd watcher and the event listener.

The checks here poll every 10 minutes, so a result after a kill can only come from the
watchers (behaviour, not speed: the waits are generous).
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.engine.agent import Agent, ConfigSource
from agent.engine.watchers.process_exit import ProgramWatcher
from agent.engine.watchers.supervisor_events import SupervisorEvent, open_event_socket
from agent.store import Store
from tests.support.supervisord import Supervisord, python_command, supervisord_factory  # noqa: F401

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory for unix sockets (sun_path is limited to 107 bytes)."""
    d = Path(tempfile.mkdtemp(prefix="bwt"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


async def _eventually(predicate: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_pidfd_watcher_reports_an_exit_once_and_rearms_on_the_new_pid(supervisord_factory) -> None:
    sup: Supervisord = supervisord_factory({"bot": {"command": python_command()}})
    first = sup.wait_for_state("bot", "RUNNING")["pid"]
    seen: list[tuple[int, str, str]] = []

    async def on_exit(watcher: ProgramWatcher, pid: int, source: str) -> None:
        # The watcher settles supervisord first: it no longer reports the dead pid as running.
        info = await asyncio.to_thread(sup.info, "bot")
        seen.append((pid, source, info["statename"]))

    watcher = ProgramWatcher(sup.url, "bot", on_exit, idle_poll=0.1)
    task = asyncio.create_task(watcher.run())
    try:
        await _eventually(lambda: watcher.pid == first)
        os.kill(first, signal.SIGKILL)
        await _eventually(lambda: len(seen) == 1)
        assert seen[0] == (first, "pidfd", "EXITED")
        # The event listener reporting the same exit later is not a second exit.
        await watcher.exited(first, "event")
        assert len(seen) == 1
        with sup.proxy() as proxy:
            proxy.supervisor.startProcess("bot")
        second = sup.info("bot")["pid"]
        await _eventually(lambda: watcher.pid == second)
        os.kill(second, signal.SIGKILL)
        await _eventually(lambda: len(seen) == 2)
        assert seen[1][:2] == (second, "pidfd")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_event_listener_forwards_process_state_events(supervisord_factory, short_dir: Path) -> None:
    sock = short_dir / "ev.sock"
    events: list[SupervisorEvent] = []
    transport = await open_event_socket(sock, events.append)
    assert transport is not None
    assert oct(sock.stat().st_mode & 0o777) == "0o600"
    try:
        sup: Supervisord = supervisord_factory({
            "bot": {"command": python_command()},
            "eventlistener:agent-events": {
                "command": f"{BIN}/agent events-listener --socket {sock}", "events": "PROCESS_STATE",
                "stderr_logfile": str(short_dir / "listener.log"),
            },
        })
        pid = sup.wait_for_state("bot", "RUNNING")["pid"]
        await _eventually(lambda: any(e.program == "bot" and e.state == "RUNNING" for e in events))
        os.kill(pid, signal.SIGKILL)
        # supervisord only notices on its next tick; any request wakes it.
        await asyncio.to_thread(sup.wait_for_state, "bot", "EXITED")
        await _eventually(lambda: any(e.program == "bot" and e.state == "EXITED" for e in events))
    finally:
        transport.close()
    exited = next(e for e in events if e.state == "EXITED")
    assert exited.pid == pid and exited.from_state == "RUNNING" and exited.expected is False
    assert exited.received_at > 0 and "bot" in exited.names()


def _write_world(root: Path, sup: Supervisord, events_socket: Path, *, watch: bool) -> ConfigSource:
    (root / "playbooks").mkdir()
    (root / "settings.yaml").write_text(yaml.safe_dump({
        "var_dir": str(root / "var"),
        "supervisor": {"socket": str(sup.socket_path), "config": str(root / "unused.conf"), "logdir": str(root)},
        "agent": {"db": str(root / "var" / "agent.db"), "metrics_port": 0, "events_socket": str(events_socket)},
    }))
    (root / "inventory.yaml").write_text(yaml.safe_dump({
        "version": 1, "settings": "settings.yaml", "hosts": {"local": {"vars": {}}},
        "groups": {"bots": {"hosts": ["local"]}},
        "notify": {"targets": {"hook": {"url": "json://127.0.0.1:9/", "optional": True}},
                   "routes": [{"name": "default", "targets": ["hook"]}]},
    }))
    (root / "playbooks" / "watch.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        name: watch
        hosts: bots
        schedule: {{every: 10m}}
        checks:
          - name: bot process
            supervisor: {{program: bot, watch: {str(watch).lower()}}}
            expect: "running"
            severity: critical
        """))
    templates = Path(__file__).resolve().parents[3] / "templates"
    return ConfigSource(root / "inventory.yaml", [root / "playbooks"], env={}, templates_dir=templates)



@pytest.mark.usefixtures("root_logger_filters")
@pytest.mark.parametrize("watch", [True, False])
async def test_agent_runs_the_program_checks_on_exit_only_when_watched(
    supervisord_factory, tmp_path: Path, short_dir: Path, watch: bool
) -> None:
    sup: Supervisord = supervisord_factory({"bot": {"command": python_command()}})
    pid = sup.wait_for_state("bot", "RUNNING")["pid"]
    agent = Agent(_write_world(tmp_path, sup, short_dir / "ev.sock", watch=watch))
    stop = asyncio.Event()
    run = asyncio.create_task(agent.run(stop))
    key = "watch/local/bot process"

    def states() -> list[str]:
        st = Store(f"sqlite:///{tmp_path / 'var' / 'agent.db'}")
        try:
            return [r.state.name for r in st.recent_results(check="bot process", limit=100)]
        except Exception:  # noqa: BLE001 - not migrated yet
            return []
        finally:
            st.close()

    try:
        await _eventually(lambda: "OK" in states(), timeout=20)  # the first scheduled run
        if watch:
            await _eventually(lambda: agent.parts is not None and bool(agent.parts.detection.programs) and
                              next(iter(agent.parts.detection.programs.values())).pid == pid)
        os.kill(pid, signal.SIGKILL)
        if watch:
            await _eventually(lambda: "CRITICAL" in states())
            assert agent.running.pipeline.statuses[key].last_value == "EXITED"
            sources = {s.labels["source"] for m in agent.running.detection.metrics.registry.collect()
                       if m.name == "botwarden_exit_detections" for s in m.samples}
            assert "pidfd" in sources
            # The running agent's event loop beats (issue 17, w3 1): the status page judges its age.
            registry = agent.running.detection.metrics.registry
            beat = lambda: registry.get_sample_value("botwarden_agent_loop_alive_timestamp_seconds") or 0.0  # noqa: E731
            first = beat()
            assert first > 0
            await _eventually(lambda: beat() > first)
        else:
            await asyncio.sleep(3.0)  # longer than supervisord's own tick: still no new result
            assert states() == ["OK"]
    finally:
        stop.set()
        await asyncio.wait_for(run, 20)
