"""Alerts sent straight through apprise, for when the agent's own store cannot be written.

Normally every message is a row of the outbox, written in the transaction that decided it, so
nothing is lost or sent twice. When the store refuses writes for longer than the pipeline's
grace (another process holds the write lock, the disk is full, the file was deleted), waiting
would mean a silent guard: a transition to a problem is then routed and delivered here, without
the store, saying why in the message; the pipeline marks it as told when it finally stores the
decision, so the outbox does not send it again. It is also what the agent says when it must
stop because its database vanished.

Best effort by design (there is nothing left to retry from): a failed delivery is logged.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from agent.notify import Notifications, Outbox
from agent.notify.routing import RoutedMessage

if TYPE_CHECKING:
    from agent.engine.pipeline import Decision

log = logging.getLogger("agent")


@dataclass(frozen=True)
class DirectMessage:
    """What was sent directly: stored later as already-sent outbox rows, so a resolve finds the
    targets the alert went to and the outbox never sends it again."""

    title: str
    body: str
    severity: str
    routes: tuple[tuple[str, str], ...]
    """(route name, target) pairs it was routed to."""
    at: datetime


class DirectAlerts:
    """Route and deliver one message now, bypassing the store (see the module docstring)."""

    def __init__(self, notifications: Notifications, outbox: Outbox) -> None:
        self._notifications = notifications
        self._outbox = outbox
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        """Messages delivered this way (for tests and the log)."""

    def send(self, decision: Decision, store_error: str, waited_s: float) -> DirectMessage:
        """Tell the transition of ``decision`` now (delivered in the background)."""
        tr = decision.transition
        assert tr is not None
        bc, obs = decision.bc, decision.obs
        severity = "critical" if tr.new.name in ("CRITICAL", "UNKNOWN") else "warning"
        title = f"[{tr.new.name}] {bc.check.name} on {bc.host.name}"
        why = obs.error or obs.summary or f"value {obs.value!r}"
        body = (f"{bc.check.name} on {bc.host.name} (playbook {bc.play.name}) is {tr.new.name} since "
                f"{obs.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC: {why}\n\n"
                f"Sent directly: the agent has not been able to write its own database for {waited_s:.0f}s "
                f"({store_error}), so this alert did not go through the outbox. The agent keeps checking and "
                "remediating; the incident is recorded when the database can be written again.")
        msg = RoutedMessage(severity, bc.host.name, bc.play.name, bc.check.name, tuple(bc.check.tags or ()))
        return self.deliver(title, body, severity, msg)

    def deliver(self, title: str, body: str, severity: str, msg: RoutedMessage) -> DirectMessage:
        """Deliver ``title``/``body`` to every target ``msg`` routes to (redacted), in the background."""
        pairs = self._notifications.router.route(msg)
        redact = self._notifications.redactor.redact
        title, body = redact(title), redact(body)
        for _route, target in pairs:
            self.deliver_to(target, title, body, severity)
        if not pairs:
            log.error("direct alert %r has no route to any target", title)
        return DirectMessage(title, body, severity, tuple((r.name, t) for r, t in pairs), datetime.now(UTC))

    def deliver_to(self, target: str, title: str, body: str, severity: str) -> None:
        """Deliver an already routed (and redacted) message, an outbox row's, to its ``target``
        now, in the background."""
        task = asyncio.get_running_loop().create_task(self._deliver(target, title, body, severity),
                                                      name=f"direct:{target}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, target: str, title: str, body: str, severity: str) -> None:
        result = await self._outbox.delivery.deliver(target, title=title, body=body, severity=severity)
        if result.ok:
            self.sent += 1
            log.warning("direct alert delivered to %s at %s: %s", target, datetime.now(UTC).isoformat(), title)
        else:
            log.error("direct alert to %s failed: %s", target, result.error)

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) for direct deliveries in flight (shutdown)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
