"""The agent's result pipeline and alert lifecycle over one real store, for one playbook and an
inventory's ``notify`` section: what a check result becomes (stored states, incidents, events and
the outbox rows that would be sent), without the scheduler or a delivery."""
from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from agent.engine.live_config import LiveConfig
from agent.engine.pipeline import ResultPipeline
from agent.engine.status_records import record_from_status
from agent.engine.store_thread import StoreThread
from agent.engine.store_writer import ResultBatcher
from agent.modules.base import CheckResult
from agent.modules.registry import default_registry
from agent.notify import Notifications
from agent.notify.lifecycle import AlertLifecycle, LifecycleSettings
from agent.playbook import load_config
from agent.store import Store
from tests.support.stack import REPO


class PipelineWorld:
    """``play`` (a playbook's text, under ``playbooks/p.yaml``) and ``notify`` (the inventory's
    section, YAML flow text); :meth:`restart` makes a new pipeline and lifecycle on the same
    store, as an agent started again does."""

    def __init__(self, root: Path, thread: StoreThread, play: str, notify: str, *,
                 group_wait: float, group_interval: float) -> None:
        (root / "settings.yaml").write_text("var_dir: var\nagent: {metrics_port: 0}\n")
        (root / "inventory.yaml").write_text(
            f"version: 1\nsettings: settings.yaml\nhosts: {{local: {{}}}}\nnotify: {notify}\n")
        (root / "playbooks").mkdir()
        (root / "playbooks" / "p.yaml").write_text(play)
        shutil.copytree(REPO / "templates", root / "templates", ignore=shutil.ignore_patterns("web"))
        res = load_config(root / "inventory.yaml", [root / "playbooks"], default_registry(), env={})
        assert not res.diagnostics, [str(d) for d in res.diagnostics]
        self.live = LiveConfig(res.config)
        self.store = Store(f"sqlite:///{root / 'agent.db'}")
        self.store.migrate()
        self.thread = thread
        self.group_wait, self.group_interval = group_wait, group_interval
        self.remediation_wait = 5.0
        self.restart()

    def restart(self) -> None:
        self.notifications = Notifications.from_config(self.live.current, self.store)
        self.pipeline = ResultPipeline(config=self.live, store=self.store, store_thread=self.thread,
                                       notifications=self.notifications,
                                       batcher=ResultBatcher(self.store, self.thread.call, record_from_status))
        self.pipeline.load(self.store.load_check_states())
        self.lifecycle = AlertLifecycle(
            self.notifications, checks=self.live.checks, maintenance=list, is_flapping=lambda key: False,
            settings=lambda: LifecycleSettings(group_wait=self.group_wait, group_interval=self.group_interval,
                                               remediation_wait=self.remediation_wait))

    async def handle(self, result: CheckResult, key: str) -> None:
        """``result`` of check ``key`` (play/host/name), handled and its plain results written."""
        bc = self.live.check(key)
        assert bc is not None
        await self.pipeline.handle(bc, result, datetime.now(UTC), 1.0)
        await self.thread.call(self.pipeline._batcher.write, self.pipeline._batcher.take())

    def close(self) -> None:
        self.store.close()
