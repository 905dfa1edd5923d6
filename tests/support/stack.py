"""The whole stack for end-to-end tests: supervisord with inbox, exchange, bot and agent.

It is the same code path as ``make run`` (:func:`agent.stack.up`), in a private short
directory (``/tmp/bwXXXX``: unix socket paths are limited to ~107 bytes) with free loopback
ports, so tests never touch a developer's running stack. Usage::

    from tests.support.stack import running_stack  # noqa: F401  (pytest fixture)

    def test_something(running_stack):
        stack = running_stack(playbooks={"mine": "version: 1 ..."}, shipped_playbooks=False)
        stack.wait_running()
        stack.ctl("stop", "bot")
        stack.inbox(), stack.health(), stack.info("bot"), stack.check_states(), stack.log("bot")

``playbooks``: extra playbooks written as YAML text; ``shipped_playbooks=True`` also copies
every file of the repository's ``playbooks/`` (so ``emergency`` etc. are there).
``settings`` overrides stack settings (merged into the generated settings.yaml).
Secrets: the bot control token and exchange admin token are set in the environment of
supervisord (and returned as ``stack.tokens``).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support import loopback
from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def repository_world(root: Path, settings: Mapping[str, Any]) -> Path:
    """The repository's own inventory and every shipped playbook (symlinked, with the templates)
    in ``root``, its settings replaced by ``settings``: what ``agent run`` loads on an operator's
    machine, pointed at ports and paths of a test's choosing. Returns the inventory's path."""
    for name in ("playbooks", "templates"):
        (root / name).symlink_to(REPO / name)
    inventory = yaml.safe_load((REPO / "inventory.yaml").read_text())
    inventory["settings"] = "settings.yaml"
    (root / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    (root / "settings.yaml").write_text(yaml.safe_dump(dict(settings)))
    return root / "inventory.yaml"


class StackUnderTest:
    def __init__(self, root: Path, *, playbooks: Mapping[str, str] | None = None, shipped_playbooks: bool = False,
                 settings: Mapping[str, Any] | None = None, inventory: Mapping[str, Any] | None = None) -> None:
        self.root = root
        self.var = root / "var"
        self.tokens = {"BOTWARDEN_BOT_TOKEN": "test-bot-token-" + os.urandom(6).hex(),
                       "BOTWARDEN_EXCHANGE_ADMIN_TOKEN": "test-admin-token-" + os.urandom(6).hex()}
        base_settings: dict[str, Any] = {
            "var_dir": "var",
            "supervisor": {"socket": "var/s.sock", "config": "var/supervisord.conf", "logdir": "var/log"},
            "exchange": {"port": free_port()},
            "bot": {"port": free_port()},
            "inbox": {"port": free_port()},
            "web": {"port": free_port()},
            # The agent's /metrics on a port of its own: stacks of tests running in parallel
            # (pytest-xdist, other checkouts) never read each other's agent.
            "agent": {"metrics_port": free_port()},
        }
        self.settings_data = _merge(base_settings, settings or {})
        (root / "settings.yaml").write_text(yaml.safe_dump(self.settings_data))
        inv: dict[str, Any] = {
            "version": 1, "settings": "settings.yaml", "hosts": {"local": {"vars": {}}},
            "groups": {"bots": {"hosts": ["local"]}},
            "notify": {"targets": {"inbox": {"url": "json://{{ inbox.host }}:{{ inbox.port }}/"}},
                       "routes": [{"name": "critical", "match": {"severity": ["critical"]}, "targets": ["inbox"]},
                                  {"name": "default", "targets": ["inbox"]}]},
        }
        (root / "inventory.yaml").write_text(yaml.safe_dump(_merge(inv, inventory or {}), sort_keys=False))
        (root / "templates").symlink_to(REPO / "templates")
        pb = root / "playbooks"
        pb.mkdir()
        if shipped_playbooks:
            for f in (REPO / "playbooks").glob("*.yaml"):
                shutil.copy(f, pb / f.name)
        for name, text in (playbooks or {}).items():
            (pb / f"{name}.yaml").write_text(text)
        from agent import stack as stack_mod

        self._mod = stack_mod
        self.stack = stack_mod.locate(root=root, inventory=root / "inventory.yaml")
        self.settings = self.stack.settings

    # -- lifecycle -----------------------------------------------------------------------------
    def up(self) -> list[dict[str, Any]]:
        old = {k: os.environ.get(k) for k in self.tokens}
        os.environ.update(self.tokens)
        try:
            return self._mod.up(self.stack, wait=30)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def down(self) -> None:
        self._mod.down(self.stack)

    def discard(self) -> None:
        """Teardown of a stack about to be deleted: SIGKILL supervisord, then every process it
        started (its programs, their process groups and children, orphans included: they carry
        supervisord's socket in ``SUPERVISOR_SERVER_URL``), and wait until they are gone.

        A graceful :meth:`down` (``agent stack down``'s code) stops the programs group by group,
        each at supervisord's one-second tick after its own stop: 15-20 s per stack on two loaded
        cores, spent on every test. No test reads what a teardown leaves, so it is not waited for;
        tests of the stop itself call :meth:`down` or ``agent stack down``."""
        import psutil

        from tests.support.supervisord import _wait_dead

        socket = str(self.stack.socket_path)
        doomed: list[psutil.Process] = []
        pidfile = self.var / "supervisord.pid"
        try:
            supervisord = psutil.Process(int(pidfile.read_text().strip()))
            if str(self.stack.conf_path) in supervisord.cmdline():  # not a stale pid reused since
                doomed = [supervisord, *supervisord.children(recursive=True)]
        except (OSError, ValueError, psutil.Error):
            pass
        for proc in psutil.process_iter():
            if proc in doomed:
                continue
            try:
                if proc.environ().get("SUPERVISOR_SERVER_URL", "").endswith(socket):
                    doomed.append(proc)
            except psutil.Error:
                continue  # gone, or not ours to read
        for proc in doomed:  # supervisord first: it restarts nothing once it is gone
            try:
                proc.kill()
            except psutil.Error:
                pass
        _wait_dead(doomed, 10)  # gone, or a zombie its reaper has not collected yet

    # -- control and observation ---------------------------------------------------------------
    def ctl(self, *args: str, check: bool = True) -> str:
        res = subprocess.run([str(BIN / "supervisorctl"), "-c", str(self.stack.conf_path), *args],
                             capture_output=True, text=True, timeout=60)
        if check and res.returncode not in (0,):
            raise RuntimeError(f"supervisorctl {' '.join(args)}: {res.stdout}{res.stderr}")
        return res.stdout

    def agent(self, *args: str, input: str | None = None,  # noqa: A002 - as subprocess.run
              timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the ``agent`` CLI against this stack (as an operator would, from its root)."""
        env = {**os.environ, **self.tokens}
        return subprocess.run([str(BIN / "agent"), *args], cwd=self.root, capture_output=True, text=True,
                              timeout=timeout, input=input, env=env)

    def info(self, program: str) -> dict[str, Any]:
        return self._mod.proxy(self.stack).supervisor.getProcessInfo(program)

    def wait_state(self, program: str, *states: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            info = self.info(program)
            if info["statename"] in states:
                return info
            if time.monotonic() > deadline:
                raise TimeoutError(f"{program} is {info['statename']}, expected {states}\n{self.log(program)}")
            time.sleep(0.1)

    def wait_running(self, timeout: float = 30) -> None:
        """Every program RUNNING, and the exchange and the bot answering (RUNNING comes first)."""
        for p in ("inbox", "exchange", "bot", "agent"):
            self.wait_state(p, "RUNNING", timeout=timeout)

        def answering() -> bool:
            try:
                loopback.post(f"{self.exchange_url}/info", json={"type": "meta"}, timeout=2).raise_for_status()
                return bool(self.health().get("status"))
            except (httpx.HTTPError, ValueError):
                return False

        wait_until(answering, timeout, what="the exchange and the bot answering")

    def log(self, program: str, tail: int = 4000) -> str:
        path = self.var / "log" / f"{program}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def inbox(self) -> list[dict[str, Any]]:
        path = self.settings.path(self.settings.inbox.file)
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def health(self) -> dict[str, Any]:
        return loopback.get(self.settings.bot.health_url, timeout=5).json()

    def try_health(self) -> dict[str, Any]:
        """/health, or {} while the bot does not answer (e.g. the agent is restarting it):
        for polling predicates, which must not fail on a restart the agent is entitled to."""
        try:
            return self.health()
        except (httpx.HTTPError, ValueError):
            return {}

    @property
    def exchange_url(self) -> str:
        return self.settings.exchange.url

    def exchange_admin(self, method: str, path: str, body: Any = None) -> Any:
        r = loopback.request(method, f"{self.exchange_url}{path}", json=body, timeout=10,
                          headers={"Authorization": f"Bearer {self.tokens['BOTWARDEN_EXCHANGE_ADMIN_TOKEN']}"})
        r.raise_for_status()
        return r.json() if r.content else None

    def store_url(self) -> str:
        return f"sqlite:///{self.settings.path(self.settings.agent.db)}"

    def check_states(self) -> dict[str, Any]:
        """The agent's stored check states by key (empty until the agent made its database)."""
        from agent.store import Store

        try:
            store = Store(self.store_url(), create=False)
        except Exception:  # noqa: BLE001 - not there yet
            return {}
        try:
            return dict(store.load_check_states())
        except Exception:  # noqa: BLE001 - the file is there, its tables not yet (the agent migrates)
            return {}
        finally:
            store.close()


    def outbox_idle(self) -> bool:
        """Nothing in the agent's outbox waits to go out (pending, failed or being sent), and no
        problem the agent fixed before it was told waits for its ``[X, now OK]`` message (held
        like a resolve: a crash at start-up, restarted by the agent, is told after its hold)."""
        import sqlite3

        from agent.store import Store as AgentStore

        db = self.settings.path(self.settings.agent.db)
        if not db.exists():
            return True
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as con:
            (n,) = con.execute("SELECT count(*) FROM notifications"
                               " WHERE status IN ('pending', 'failed', 'sending')").fetchone()
        if n:
            return False
        with closing(AgentStore(self.store_url(), create=False)) as store:
            return not untold_fixes(store)


def untold_fixes(store: Any, within: timedelta = timedelta(minutes=10)) -> list[Any]:
    """Incidents of the agent's ``store`` that the agent acted on and that ended before they were
    told: the alert lifecycle tells each once as ``[X, now OK]``, held like a resolve (up to
    ``group_interval`` after it ended), unless a silence or a parent holds it (see
    ``RemediationNotes.send_fixed``). A test that counts messages waits for these too."""
    from agent.notify.lifecycle.remediation_notes import OUTCOME_EVENT, STARTED_EVENT, WAITING

    return [i for i in store.find_incidents(since=datetime.now(UTC) - within, limit=50)
            if i.resolved_at is not None and i.announced_state is None
            and (i.suppressed is None or i.suppressed.startswith(WAITING))
            and any(e.kind in (STARTED_EVENT, OUTCOME_EVENT) for e in store.recent_events(incident_id=i.id, limit=200))]


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2,
               what: str | Callable[[], str] = "") -> Any:
    """``predicate()``'s first truthy value; a timeout names ``what`` (a callable: what it says
    then, e.g. what did arrive)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {(what() if callable(what) else what) or predicate}")
        time.sleep(interval)


@pytest.fixture
def running_stack() -> Iterator[Callable[..., StackUnderTest]]:
    """Factory: ``running_stack(playbooks=..., shipped_playbooks=..., settings=..., inventory=...)``.

    Brings the stack up (``agent stack up``'s code) and always brings it down at teardown.
    """
    made: list[StackUnderTest] = []
    dirs: list[str] = []

    def factory(**kw: Any) -> StackUnderTest:
        d = tempfile.mkdtemp(prefix="bw")
        dirs.append(d)
        st = StackUnderTest(Path(d), **kw)
        made.append(st)
        st.up()
        return st

    try:
        yield factory
    finally:
        for st in made:
            try:
                st.discard()
            except Exception:  # noqa: BLE001 - teardown must go on
                pass
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
