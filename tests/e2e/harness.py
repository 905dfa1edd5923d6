"""Run the real ``agent`` as a subprocess against a real supervisord and local receivers.

:class:`AgentWorld` writes a settings file (pointing at the test supervisord's socket and a
private ``var/``), an inventory whose only target is a :class:`JsonReceiver`, and playbooks
given as YAML text; it starts ``agent run`` and reads the agent's SQLite store to know what
it decided. Nothing here reaches beyond loopback.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from agent.store import Store
from tests.support.stack import wait_until  # noqa: F401 (re-exported for the e2e suites)

T = TypeVar("T")
BIN = Path(sys.executable).parent


class AgentWorld:
    """A directory with settings, inventory and playbooks, and the agent process running on it."""

    def __init__(self, root: Path, supervisor_url: str, receiver_url: str, *, extra_inventory: dict | None = None):
        self.root = root
        self.var = root / "var"
        self.var.mkdir(parents=True, exist_ok=True)
        self.playbooks = root / "playbooks"
        self.playbooks.mkdir(exist_ok=True)
        self.db_path = self.var / "agent.db"
        self.store_url = f"sqlite:///{self.db_path}"
        self.log_path = root / "agent.log"
        self.proc: subprocess.Popen[bytes] | None = None
        socket_path = supervisor_url.removeprefix("unix://")
        (root / "settings.yaml").write_text(yaml.safe_dump({
            "var_dir": "var",  # relative to this file's directory: self.var (an absolute one is warned about)
            "supervisor": {"socket": socket_path, "config": str(root / "unused.conf"), "logdir": str(self.var)},
            "agent": {"db": str(self.db_path), "metrics_port": 0},  # off: worlds run in parallel
        }))
        inventory: dict[str, Any] = {
            "version": 1,
            "settings": "settings.yaml",
            "hosts": {"local": {"vars": {}}},
            "groups": {"bots": {"hosts": ["local"]}},
            "notify": {
                "targets": {"hook": {"url": receiver_url}},
                "routes": [{"name": "default", "targets": ["hook"]}],
            },
        }
        inventory.update(extra_inventory or {})
        self.inventory = root / "inventory.yaml"
        self.inventory.write_text(yaml.safe_dump(inventory, sort_keys=False))
        templates = Path(__file__).resolve().parents[2] / "templates"
        (root / "templates").symlink_to(templates)

    def write_playbook(self, name: str, text: str) -> Path:
        path = self.playbooks / f"{name}.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    # -- the agent process ---------------------------------------------------------------------
    def start(self, *args: str, env_add: Mapping[str, str] | None = None) -> None:
        """``agent run``; ``env_add``: what its environment holds beside ours (no ``BOTWARDEN_*`` of ours)."""
        assert self.proc is None or self.proc.poll() is not None, "agent already running"
        log = self.log_path.open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOTWARDEN_")} | dict(env_add or {})
        self.proc = subprocess.Popen(
            [str(BIN / "agent"), "run", "--inventory", str(self.inventory), "--store", self.store_url,
             *args, str(self.playbooks)],
            cwd=self.root, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def sighup(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def assert_alive(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, f"agent exited:\n{self.log()[-3000:]}"

    # -- what the agent decided (read from its store) ------------------------------------------
    def _store(self) -> Store:
        return Store(self.store_url)

    def _read(self, fn: Callable[[Store], T]) -> T:
        if not self.db_path.exists():
            return None  # type: ignore[return-value]
        st = self._store()
        try:
            return fn(st)
        except Exception:  # noqa: BLE001 - the agent may not have migrated yet
            return None  # type: ignore[return-value]
        finally:
            st.close()

    def states(self) -> dict[str, Any]:
        return self._read(lambda s: s.load_check_states()) or {}

    def state(self, key: str) -> Any:
        return self.states().get(key)

    def results(self, check: str) -> list[Any]:
        return self._read(lambda s: s.recent_results(check=check, limit=10_000)) or []

    def notifications(self, **kw: Any) -> list[Any]:
        return self._read(lambda s: s.list_notifications(**kw)) or []

    def action_runs(self) -> list[Any]:
        return self._read(lambda s: s.action_runs(limit=1000)) or []

    def events(self, kind: str | None = None) -> list[Any]:
        return self._read(lambda s: s.recent_events(kind=kind, limit=1000)) or []
