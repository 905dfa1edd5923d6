"""The result pipeline: the one place where a check's result becomes a decision.

For every result the scheduler hands over, in this order:

1. **classify**: expectations and thresholds give a raw state (:func:`classify`); the check's
   status folds it in (``after``, ``for``, hysteresis, flapping) and tells whether the hard
   state changed (a *transition*), whether flapping started or stopped, and whether a standing
   problem happened again without any state change (a *recurrence*: a program restarted and
   dead again before any check saw it running, seen as a new ``CheckResult.occurrence``);
2. **persist**: a result that decides nothing is buffered and group-committed
   (:class:`ResultBatcher`). A *decision* (transition, flapping, recurrence) is written in one
   transaction with the incident and audit it implies, before anyone acts on it;
3. **apply and hand on**: once stored, the decision goes to the listeners: the remediator (which
   decides what to do) and the alert loop (which decides when the operator is told).

While the store cannot be written (locked by another process, full, gone), decisions wait in
order and are retried with backoff; the results of a check that has a decision waiting queue
behind it, so its stored history stays in the order it was observed. Nothing is dropped. A
decision that has waited longer than the grace (settings ``agent.store_grace``) is handed on
anyway, the remediator acts on it, and a transition to a problem is sent straight through
apprise with the reason in the message (:class:`DirectAlerts`); it is still written when the
store comes back, marked as already told, so it is not sent twice. A dependent whose parent
explains it is not sent directly (one fault, one message, as through the outbox:
:func:`~agent.notify.lifecycle.dependency_hold.folded_without_store`); the alert lifecycle
decides it once it is stored. A write may be waiting for
SQLite's lock (``busy_timeout``) when the grace ends and get it just after: the write and the
direct alert therefore claim the decision under one lock (:meth:`_Waiting.claim_for_store`,
:meth:`_Waiting.tell_unless_stored`), taken by the write once it holds the write lock, just
before it commits: either the write sees the alert already told and stores it as sent, or the
alert is not sent directly because the decision is committing now and the outbox tells it.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from agent.core.states import State
from agent.engine import flapping
from agent.engine.dependencies import EvidenceLog
from agent.engine.evaluator import CheckStatus, Observation, Transition, classify
from agent.engine.internal_errors import costs
from agent.engine.retries import FIRST_RETRY_S, confirmations
from agent.engine.status_records import record_from_status, result_row, status_from_record
from agent.engine.store_thread import StoreThread, describe_store_error
from agent.engine.store_writer import Batch, ResultBatcher
from agent.modules.base import CheckResult
from agent.notify.lifecycle.checks import CheckCatalog
from agent.notify.lifecycle.dependency_hold import folded_without_store
from agent.notify.lifecycle.remediation_notes import CAUSES, RECURRENCE_EVENT
from agent.playbook.binding import BoundCheck

if TYPE_CHECKING:
    from agent.engine.direct_alerts import DirectAlerts, DirectMessage
    from agent.engine.live_config import LiveConfig
    from agent.notify import Notifications
    from agent.store import Store, StoreTransaction
    from agent.store.records import CheckStateRecord

log = logging.getLogger("agent")

RETRY_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0)
"""Seconds between attempts to store waiting decisions (the last one repeats)."""


@dataclass(frozen=True)
class Decision:
    """What one result decided. ``status`` is the check's status right after it (a snapshot)."""

    bc: BoundCheck
    obs: Observation
    status: CheckStatus
    transition: Transition | None = None
    flap: flapping.FlapChange | None = None
    recurrence: str | None = None
    """Why this result is a new occurrence of a standing problem (None: it is not)."""
    again: str | None = None
    """A standing hard problem that no transition announces must be remediated again: after an
    agent restart, or when the check settled from flapping into it."""
    new_causes: tuple[str, ...] = ()
    """The causes the check's ``occurrence`` named for the first time (the recurrence's): kept with
    its event, so an update does not tell a cause that ended before it went out."""

    @property
    def decides(self) -> bool:
        """Whether it must be stored before it is acted on (else it is a plain result)."""
        return self.transition is not None or self.flap is not None or self.recurrence is not None


def new_causes(status: CheckStatus, causes: Sequence[str], *, standing: bool, problem: bool = True) -> tuple[str, ...]:
    """Record ``causes`` (what the check's ``occurrence`` named now) on ``status``; while the
    problem stands (``standing``: a problem before and still one, in the same state or another),
    one it did not name last time is a new occurrence: those (none: nothing new). A cause gone while
    others stay is no news; nothing recorded yet (the check just got its ``occurrence``, an agent
    from before it) is a baseline, not news (the problem's alert named its causes). Results that
    name nothing (a probe error: the bot dead) leave the causes as they were. A reading that is no
    problem (``problem`` False: OK) ends them: the next problem's first causes are its baseline,
    told by its own alert (OK -> UNKNOWN, the bot stopped by the emergency -> WARNING naming the
    emergency's halt is that halt's alert, held by the emergency's silence: not a new cause that
    ends the silence)."""
    seen = status.extra.get(CAUSES)
    if not problem:
        status.extra.pop(CAUSES, None)
        return ()
    status.extra[CAUSES] = list(causes)
    if not standing or not isinstance(seen, list):
        return ()
    return tuple(c for c in causes if c not in seen)


class DecisionListener(Protocol):
    """Who acts on stored decisions: the alert loop and the remediator."""

    def on_decision(self, decision: Decision) -> None: ...


@dataclass
class _Waiting:
    decision: Decision
    queued_mono: float = field(default_factory=time.monotonic)
    handed_on: bool = False
    told: DirectMessage | None = None
    storing: bool = False
    """A write of this decision holds the store's write lock and is about to commit."""
    _claim: threading.Lock = field(default_factory=threading.Lock)

    def claim_for_store(self) -> DirectMessage | None:
        """Store thread, inside the write's transaction: from now on no direct alert is sent for
        this decision; returns the one already sent (the write records it as sent), if any."""
        with self._claim:
            self.storing = True
            return self.told

    def release(self) -> None:
        """The write failed: the decision waits again, a direct alert may be sent for it."""
        with self._claim:
            self.storing = False

    def tell_unless_stored(self, tell: Callable[[], DirectMessage]) -> bool:
        """Event loop, past the grace: send the direct alert unless a write is committing the
        decision right now (the outbox tells it then). False when it was not sent for that reason."""
        with self._claim:
            if self.storing:
                return False
            self.told = tell()
            return True


class ResultPipeline:
    """classify -> persist -> apply -> hand on (see the module docstring). Event loop only."""

    def __init__(self, *, config: LiveConfig, store: Store, store_thread: StoreThread, notifications: Notifications,
                 batcher: ResultBatcher, listeners: Sequence[DecisionListener] = (),
                 direct: DirectAlerts | None = None, grace: float = 10.0) -> None:
        self._config = config
        self._store = store
        self._thread = store_thread
        self._notifications = notifications
        self._batcher = batcher
        self.listeners: list[DecisionListener] = list(listeners)
        self._direct = direct
        self.grace = grace
        self._statuses: dict[str, CheckStatus] = {}
        self._last_obs: dict[str, Observation] = {}
        self.evidence = EvidenceLog()
        """When each check was last seen healthy and when its problem began (for ``depends_on``)."""
        self._resumed: set[str] = set()
        self._waiting: deque[_Waiting] = deque()
        self._waiting_keys: dict[str, int] = {}
        self._frozen: str | None = None  # see freeze()
        self._stored_incident: dict[str, int | None] = {}
        self._storing = asyncio.Lock()
        self._retry: asyncio.Task[None] | None = None
        self.store_error: str | None = None
        """Why decisions are waiting (the last store error), None while the store keeps up."""
        self.stored = 0
        """Decisions stored so far (counted on the store thread as each commits)."""

    # -- state ---------------------------------------------------------------------------------
    def load(self, records: Mapping[str, CheckStateRecord]) -> None:
        """The statuses stored by the previous run. Problems hard then are decided again by the
        first result after start (the fix may not have held while nobody watched)."""
        self._statuses = {key: status_from_record(rec) for key, rec in records.items()}
        self._resumed = {key for key, st in self._statuses.items() if st.hard.is_problem}

    def status(self, key: str) -> CheckStatus | None:
        return self._statuses.get(key)

    def last_observation(self, key: str) -> Observation | None:
        """What the check saw last (facts included), this run of the agent."""
        return self._last_obs.get(key)

    @property
    def statuses(self) -> Mapping[str, CheckStatus]:
        return self._statuses

    def is_flapping(self, key: str) -> bool:
        status = self._statuses.get(key)
        return status is not None and flapping.is_flapping(status.extra)

    def forget(self, keys: Iterable[str]) -> None:
        """Checks that left the configuration (a reload)."""
        keys = list(keys)
        for key in keys:
            self._statuses.pop(key, None)
            self._last_obs.pop(key, None)
            self._batcher.forget(key)
        self.evidence.forget(keys)

    def told_without_store(self) -> list[tuple[Decision, DirectMessage]]:
        """Decisions told straight through apprise and not stored (yet): only this process knows
        they were told (the agent hands them over when its database is lost)."""
        return [(w.decision, w.told) for w in self._waiting if w.told is not None]

    @property
    def waiting(self) -> int:
        """Decisions (and the results queued behind them) not stored yet."""
        return len(self._waiting)

    # -- one result ----------------------------------------------------------------------------
    def freeze(self, reason: str) -> None:
        """Decide nothing more (the agent's database is lost and it is about to stop): a result
        from now on is dropped, not acted on, so what happens meanwhile (a crash) is left as it is
        for the agent that starts next, on the database that is there, to see, tell and fix; one
        acted on now could be neither recorded nor told."""
        if self._frozen is None:
            log.warning("results are no longer acted on: %s", reason)
        self._frozen = reason

    async def handle(self, bc: BoundCheck, result: CheckResult, started: datetime, duration_ms: float) -> None:
        """The scheduler's result handler."""
        if self._frozen is not None:
            return
        decision = self.classify(bc, result, duration_ms)
        tr = decision.transition
        self.evidence.record(bc.key, decision.obs.state, started, seen_at=result.seen_at,
                             recovered=tr is not None and tr.new is State.OK, error=decision.obs.error,
                             evidence_at=result.evidence_at, evidence_since=result.evidence_since)
        if not decision.decides and bc.key not in self._waiting_keys:
            self._batcher.add(bc, decision.status, result_row(bc, decision.obs))
            if decision.again:
                self._hand_on(decision)
            return
        if decision.transition is not None:
            tr = decision.transition
            log.warning("%s: %s -> %s%s", bc.key, tr.old.name, tr.new.name,
                        f" ({decision.obs.error})" if decision.obs.error else "")
        if decision.flap is not None:
            log.warning("%s: %s flapping (%.0f%% state changes)", bc.key,
                        "started" if decision.flap.started else "stopped", decision.flap.percent)
        if decision.recurrence:
            log.warning("%s: %s", bc.key, decision.recurrence)
        self._enqueue(decision)
        if self.store_error is None:  # else the retries store it, in order, and the grace timer acts
            await self._store_waiting()

    def classify(self, bc: BoundCheck, result: CheckResult, duration_ms: float) -> Decision:
        """Step 1: fold ``result`` into the check's status; what it decides."""
        status = self._statuses.get(bc.key)
        if status is None:
            status = self._statuses[bc.key] = CheckStatus(bc.key)
        was_problem = status.hard.is_problem
        obs = classify(bc, result, self._config.current.templating, status.soft, datetime.now(UTC), duration_ms)
        self._last_obs[bc.key] = obs
        transition = status.advance(obs, after=confirmations(bc.check.after, obs.error), for_seconds=bc.check.for_,
                                    recover_after=bc.check.recover_after,
                                    recover_span=(bc.check.recover_after - 1) * FIRST_RETRY_S)
        flap = None
        if bc.check.flapping is not None:
            f = bc.check.flapping
            flap = flapping.fold(status.extra, obs.state.name, window=f.window, start=f.start, stop=f.stop)
        recurrence = None
        if result.occurrence is not None:
            seen = status.extra.get("occurrence")
            status.extra["occurrence"] = result.occurrence
            # A process that ended, other than the last one seen ending: a new crash. Also when none
            # was seen (the problem was a stop: the emergency's, an operator's), so a bot started
            # again that dies before any check saw it running is told and restarted, not taken for
            # the stop it follows.
            if seen != result.occurrence and transition is None and was_problem and obs.state.is_problem:
                recurrence = (f"failed again while {status.hard.name}: a new occurrence ({result.summary or obs.error})"
                              " ended before any check saw it healthy")
        fresh: tuple[str, ...] = ()
        if obs.causes is not None:
            # standing across a change between problem states too: the causes are compared with those
            # named before it (WARNING -> UNKNOWN -> WARNING, the bot dead meanwhile: that state was
            # told already, so no alert names a halt it took while dead). A change that is told names
            # every cause in its message, queued after this update's event: the update is not sent.
            fresh = new_causes(status, obs.causes, standing=was_problem and obs.state.is_problem,
                               problem=obs.state.is_problem)
            if fresh:
                recurrence = f"a new cause while {status.hard.name}: {'; '.join(fresh)}"
        again = None
        if transition is None:
            if flap is not None and not flap.started and status.hard.is_problem:
                again = "settled from flapping"
            if bc.key in self._resumed:
                self._resumed.discard(bc.key)
                if status.hard.is_problem and obs.state.is_problem and not flapping.is_flapping(status.extra):
                    again = again or "after an agent restart"
        else:
            self._resumed.discard(bc.key)
        return Decision(bc, obs, status.snapshot(), transition, flap, recurrence, again, fresh)

    # -- persist ---------------------------------------------------------------------------------
    def _enqueue(self, decision: Decision) -> None:
        key = decision.bc.key
        if key not in self._waiting_keys:  # nothing of this check waits: memory and store agree
            self._stored_incident[key] = decision.status.incident_id
        self._waiting.append(_Waiting(decision))
        self._waiting_keys[key] = self._waiting_keys.get(key, 0) + 1
        if self.grace >= 0:
            asyncio.get_running_loop().call_later(self.grace, self._act_without_store)

    async def _store_waiting(self) -> None:
        """Store the waiting decisions in order; on failure leave them and start the retries."""
        async with self._storing:
            while self._waiting:
                item = self._waiting[0]
                key = item.decision.bc.key
                batch = self._batcher.take()
                try:
                    stored = await self._thread.call(self._persist, item, self._stored_incident.get(key), batch)
                except Exception as exc:  # noqa: BLE001 - locked, full, gone: the decision waits, nothing is dropped
                    item.release()
                    self._batcher.put_back(batch)
                    self._store_failed(exc)
                    self._act_without_store()  # its grace may have ended while this write held it
                    return
                self._waiting.popleft()
                self._stored_incident[key] = stored
                left = self._waiting_keys[key] - 1
                if left:
                    self._waiting_keys[key] = left
                else:
                    del self._waiting_keys[key]
                    self._stored_incident.pop(key, None)
                    live = self._statuses.get(key)
                    if live is not None:  # the incident the store now holds for it
                        live.incident_id = stored
                if self.store_error is not None:
                    log.warning("the store is writable again; %d waiting decision(s) left", len(self._waiting))
                    self.store_error = None
                if not item.handed_on:
                    item.handed_on = True
                    self._hand_on(item.decision)

    def _persist(self, item: _Waiting, incident_id: int | None, batch: Batch) -> int | None:
        """Store thread: one transaction for the decision (see :class:`ResultPipeline`); returns
        the check's incident afterwards. ``incident_id`` is the check's incident as stored before
        it (a decision that waited in line was classified before the earlier ones were stored)."""
        d = item.decision
        status = d.status.snapshot()
        status.incident_id = incident_id
        with self._store.transaction() as tx:
            if batch:
                self._batcher.write(batch, tx)
            tx.record_result(**result_row(d.bc, d.obs))
            if d.transition is not None:
                self._notifications.on_transition(tx, d.bc, status, d.transition)
            if d.flap is not None:
                self._notifications.flapping(tx, d.bc, status.incident_id, started=d.flap.started,
                                             percent=d.flap.percent, state=status.hard.name, at=d.obs.at)
            if d.recurrence is not None:
                tx.add_event(RECURRENCE_EVENT, d.bc.key, status.incident_id, d.recurrence,
                             {"value": str(d.obs.value), "error": d.obs.error,
                              **({CAUSES: list(d.new_causes)} if d.new_causes else {})}, at=d.obs.at)
                # a new crash, not the state a play left: its silence_until_ok ends (told)
                tx.end_silences_until_ok(record_from_status(d.bc, status), d.obs.at, "a new occurrence: "
                                         + d.recurrence)
            tx.save_check_state(record_from_status(d.bc, status))
            # Written: the transaction holds the write lock (SQLite takes it at the first statement,
            # BEGIN IMMEDIATE), so it commits now. Only now does it claim the decision from the
            # direct path (a write still waiting for the lock must not hold the alert back), and
            # learn what that path sent already.
            told = item.claim_for_store()
            if (told is not None and d.transition is not None and d.transition.new.is_problem
                    and status.incident_id is not None):
                self._mark_told(tx, status, d, told)
        self.stored += 1  # committed; counted here, on the store thread (see AlertLoop._tick)
        return status.incident_id

    def _mark_told(self, tx: StoreTransaction, status: CheckStatus, d: Decision, told: DirectMessage) -> None:
        """An alert already sent directly: recorded as sent (the resolve goes to the same targets)
        and announced (the lifecycle must not send it again)."""
        assert status.incident_id is not None and d.transition is not None
        for route, target in told.routes:
            nid = tx.enqueue_notification(
                kind="alert", target=target, title=told.title, body=told.body, severity=told.severity, now=told.at,
                route=route, incident_id=status.incident_id,
                dedup_key=f"direct:{status.incident_id}:{d.transition.new.name}:{route}:{target}")
            if nid is not None:
                tx.mark_sent(nid, told.at)
        tx.set_incident_lifecycle(status.incident_id, announced_state=d.transition.new.name,
                                  announced_at=d.obs.at, eligible_since=d.obs.at)
        tx.add_event("notified", d.bc.key, status.incident_id,
                     f"{d.transition.new.name} sent directly through apprise while the store could not be "
                     "written", {"direct": True}, at=d.obs.at)

    def _store_failed(self, exc: BaseException) -> None:
        reason = describe_store_error(exc)
        if reason != self.store_error:
            log.error("the store cannot be written (%s): %d decision(s) wait and are retried; they are acted "
                      "on after %gs without it", reason, len(self._waiting), self.grace)
        self.store_error = reason
        if self._retry is None or self._retry.done():
            self._retry = asyncio.get_running_loop().create_task(self._retry_waiting(), name="store-retry")

    async def _retry_waiting(self) -> None:
        attempt = 0
        while self._waiting:
            await asyncio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
            attempt += 1
            await self._store_waiting()

    def _act_without_store(self) -> None:
        """Past the grace: hand on what still waits (in order), telling transitions directly."""
        now = time.monotonic()
        for item in list(self._waiting):
            if item.handed_on or now - item.queued_mono < self.grace:
                continue
            tr = item.decision.transition
            direct = self._direct
            folded = self._folded(item.decision) if tr is not None and tr.new.is_problem else None
            if folded is not None:
                log.warning("%s: %s not sent directly: %s (decided when the store takes it)",
                            item.decision.bc.key, tr.new.name if tr else "", folded)
            elif tr is not None and tr.new.is_problem and direct is not None:
                reason = self.store_error or "a write is still waiting: busy or locked by another process"
                waited = now - item.queued_mono
                if not item.tell_unless_stored(functools.partial(direct.send, item.decision, reason, waited)):
                    break  # committing right now: the store path tells it and hands it on; the
                    # ones behind it are looked at again if that write fails (in order)
            item.handed_on = True
            self._hand_on(item.decision)

    def _folded(self, decision: Decision) -> str | None:
        """Why a dependent's transition is not told directly: a check it ``depends_on`` (through
        the whole chain) explains it (:func:`folded_without_store`), or ``None``."""
        bc, tr = decision.bc, decision.transition
        assert tr is not None
        catalog = CheckCatalog(self._config.checks)
        chain = [*catalog.parents(bc.key, bc.host.name), *catalog.ancestors(bc.key, bc.host.name)]
        if not chain:
            return None

        def hard(key: str) -> State | None:
            status = self._statuses.get(key)
            return status.hard if status is not None else None

        return folded_without_store(tr.new, self.evidence.get(bc.key), chain, hard=hard, evidence=self.evidence.get)

    def _hand_on(self, decision: Decision) -> None:
        for listener in self.listeners:
            try:
                listener.on_decision(decision)
            except Exception:  # one listener's bug must not keep the decision from the others
                log.exception("decision listener %r failed", listener, extra=costs(
                    "a check's decision did not reach one of the agent's parts (remediation, alerts or probes)"))

    async def close(self) -> None:
        """Store what still waits (one last attempt) and stop retrying."""
        if self._retry is not None:
            self._retry.cancel()
            await asyncio.gather(self._retry, return_exceptions=True)
        if self._waiting:
            self.store_error = None
            await self._store_waiting()
            if self._waiting:
                log.error("%d decision(s) could not be stored before the agent stopped (%s); the next start "
                          "decides again from the stored states", len(self._waiting), self.store_error)

