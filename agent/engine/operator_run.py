"""An operator's run of a playbook (``agent run-playbook``), with audit and delivery.

Every task lands in the audit trail with the operator as actor. Notifications the play queues
(``notify`` tasks) go through the same outbox as the resident agent's; this process delivers
those (and only those) before it exits (bounded), lets a delivery under way finish, and gives
the rest back to the resident agent to retry: nothing is lost, nothing is held.
"""
from __future__ import annotations

import asyncio
import getpass
import logging
import signal
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from agent.engine.play_runner import OutcomeCallback, PlayRecap, PlayRunner, StoreSilences, TaskOutcome
from agent.modules.base import HostContext

log = logging.getLogger("agent.play")
DELIVERY_GRACE_SECONDS = 10.0


async def run_play_once(
    config: Any,
    play: Any,
    hosts: Sequence[HostContext],
    *,
    check_mode: bool = False,
    extra_vars: Mapping[str, Any] | None = None,
    on_outcome: OutcomeCallback | None = None,
    store_url: str | None = None,
    actor: str | None = None,
    interrupt_on: Sequence[signal.Signals] = (),
    on_signal: Callable[[str], None] | None = None,
) -> PlayRecap:
    """Run ``play`` once on ``hosts``, audit every task as ``actor`` (default: ``<os user> via
    run-playbook``) and deliver what it queued (bounded). ``agent run-playbook`` and the web
    page's plays both run through here.

    The run is recorded (:mod:`agent.engine.play_runs`; not in check mode): killed, it is found
    by the resident agent. ``interrupt_on``: signals that stop the run between two tasks (the
    task under way finishes; the recap says what is left, and the record says ``interrupted``);
    ``on_signal(name)`` is told first (the CLI mutes a terminal that hung up). A second signal
    is no longer caught (the process ends as the signal says; the agent finds the run)."""
    from agent.notify import Notifications, Outbox
    from agent.store import Store

    url = store_url or f"sqlite:///{config.settings.path(config.settings.agent.db)}"
    from agent.stack.files import secure_state

    secure_state(config.settings)  # var/ 0700, agent.db & co 0600, or a clear error
    # Every row redacted. Check mode changes nothing, a database file included: a store that is
    # not there is refused (exit 4) instead of created where the resident agent may never read.
    store = Store(url, create=not check_mode, redact=config.templating.redactor.redact)
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
    loop = asyncio.get_running_loop()

    async def db(fn: Any, *args: Any) -> Any:
        return await loop.run_in_executor(writer, fn, *args)

    await db(store.migrate)
    notifications = Notifications.from_config(config, store)
    # Claims only what this run queues: the resident agent's messages are not this process's to hold.
    outbox = Outbox(store, notifications.targets, role="run-playbook", scope=())
    notifications.on_enqueued = outbox.queued
    actor = actor or f"{getpass.getuser()} via run-playbook"
    reason = f"operator ran playbook {play.name}" + (" in check mode" if check_mode else "")

    async def audit(o: TaskOutcome, started: datetime, finished: datetime, params: Mapping[str, Any]) -> None:
        await db(store.record_action_run, dict(
            incident_id=None, play=play.name, host=o.host, task=o.task, module=o.module or "",
            params=params, reason=reason, actor=actor, check_mode=o.check_mode,
            changed=o.status == "changed", failed=o.status == "failed", msg=o.msg,
            started_at=started, finished_at=finished))

    from agent.engine.play_runs import RunRecord
    from agent.modules.registry import default_registry

    record = RunRecord(store, db, actor=actor, reason=reason, on_interrupt=play.on_interrupt)
    runner = PlayRunner(default_registry(), config.templating, check_mode=check_mode, notifier=notifications,
                        on_outcome=on_outcome, audit=audit, reason=reason,
                        silences=StoreSilences(store, db, actor=actor, play=play.name), record=record)

    def interrupted(sig: signal.Signals) -> None:
        for s in interrupt_on:  # a second signal ends the process as it would have
            loop.remove_signal_handler(s)
        if on_signal is not None:
            on_signal(sig.name)
        log.warning("%s: %s received; the task under way finishes, no other starts", play.name, sig.name)
        runner.interrupt(sig.name)

    for sig in interrupt_on:
        loop.add_signal_handler(sig, interrupted, sig)
    try:
        # Single flight with the resident agent's remediations (issue 4): lock the targets.
        from agent.engine.locks import operator_lock_targets, target_locks

        targets = [] if check_mode else operator_lock_targets(config, play, hosts)
        async with target_locks(config.settings.path(config.settings.var_dir) / "locks", targets,
                                owner=f"{actor}: {play.name}"):
            recap = await runner.run(play, hosts, extra_vars=extra_vars)
        if not check_mode:
            await outbox.drain(timeout=DELIVERY_GRACE_SECONDS)
        return recap
    finally:
        for sig in interrupt_on:
            loop.remove_signal_handler(sig)
        await db(store.close)
        writer.shutdown(wait=True)
