"""Guards around remediation: budget, cooldown, single flight.

Budget counting, exactly (the README repeats this):
* the budget of a remediation is kept per (playbook, host, remediation name), shared by every
  check of that playbook that names it;
* each *run* of the remediation (not each step) counts once, at the moment it starts; a run
  whose every step was skipped (``when`` false, e.g. a deliberate stop) did nothing and does
  not count;
* the window slides: a run stops counting ``within`` after it started. There is no other reset:
  an agent restart, a reload or a recovery of the check does not reset it (runs are persisted);
* when a run would be the ``max + 1``-th inside the window it is not run; instead the ``then``
  playbook runs and a human is paged, once. That hand-over re-arms only after the count has
  dropped below ``max`` again (the window slid past enough runs).
Cooldown: a run is refused if the previous run of the same remediation on that host started
less than ``cooldown`` ago; the refusal says when the cooldown ends (``retry_in``), and the
remediator decides again then if the problem is still there (nothing is dropped).
Single flight: at most one remediation per (host, remediation target) runs at a time; a second
one waits for the first (a restart racing a restart would be worse than either). Across
processes too: the run holds an ``fcntl`` lock per target under ``var/locks``
(:mod:`agent.engine.locks`), the same locks ``agent run-playbook`` takes, so an operator's play
and the resident agent never act on the same program or account at once.

Clocks: windows and cooldowns are measured on the monotonic clock, so a step of the wall clock
neither resets a budget nor lengthens a cooldown. Runs are stored with their wall time (the
audit trail); when the agent starts, each is placed on the monotonic clock by its age then.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.engine.locks import target_locks, targets_of_tasks
from agent.engine.store_thread import StoreThread
from agent.playbook.models import BUDGET_HISTORY_S

if TYPE_CHECKING:
    from agent.playbook.binding import BoundCheck
    from agent.playbook.models import Remediation
    from agent.store import Store

log = logging.getLogger("agent")

LOCK_TIMEOUT_SECONDS = 300.0
LEDGER_HISTORY = timedelta(seconds=BUDGET_HISTORY_S)
"""How far back runs are read at start-up; validation refuses a longer ``within``."""

BUDGET_EVENT = "remediation-run"
HANDOVER_EVENT = "remediation-handover"
HANDOVER_RUN_SLACK = timedelta(seconds=1)
"""How much earlier than its hand-over's record a run of the playbook may read and still be it."""
REARM_EVENT = "remediation-handover-rearmed"
"""The check was seen OK again after a hand-over (someone started the bot after the emergency):
a crash after that, still inside the budget's window, is handed over again."""


@dataclass(frozen=True)
class Decision:
    """Whether a remediation may run now. Refused: ``reason``, and either ``handover`` (the
    budget is spent: run that playbook instead, once) or ``retry_in`` (cooling down: seconds
    until it may run)."""

    allowed: bool
    reason: str = ""
    handover: str | None = None
    retry_in: float | None = None
    runs: int = 0
    """Runs inside the budget's window when decided (for what the operator is told)."""
    budget_max: int | None = None
    spent_before: bool = False
    """The budget was spent already when this refusal was decided (its first refusal in the window
    handed over, or was told): no news for the operator."""


@dataclass
class _Ledger:
    runs: list[float] = field(default_factory=list)  # monotonic start times
    handed_over: bool = False


class RemediationGuard:
    """Decides whether a remediation may run now, and remembers that it did."""

    def __init__(self, store: Store, store_thread: StoreThread, *, lock_dir: Path | None = None,
                 render: Callable[[str, Mapping[str, Any]], str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._thread = store_thread
        self._lock_dir = lock_dir
        self._render = render
        self._clock = clock
        self._ledgers: dict[tuple[str, str, str], _Ledger] = defaultdict(_Ledger)
        self._locks: dict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)

    async def load(self) -> None:
        """Rebuild the ledgers from the audit trail so budgets survive a restart."""
        now_wall, now_mono = datetime.now(UTC), self._clock()
        events = await self._thread.call(self._store.events_since, now_wall - LEDGER_HISTORY,
                                         [BUDGET_EVENT, HANDOVER_EVENT, REARM_EVENT])
        handovers: dict[tuple[str, str, str], Any] = {}
        for ev in events:
            data = ev.data or {}
            k = (data.get("play", ""), data.get("host", ""), data.get("remediation", ""))
            if ev.kind == BUDGET_EVENT:
                self._ledgers[k].runs.append(now_mono - max(0.0, (now_wall - ev.at).total_seconds()))
            else:
                self._ledgers[k].handed_over = ev.kind == HANDOVER_EVENT
                handovers[k] = ev
        await self._rearm_handovers_never_begun(handovers)

    async def _rearm_handovers_never_begun(self, handovers: Mapping[tuple[str, str, str], Any]) -> None:
        """A hand-over is recorded when it is decided, before its playbook's run begins: an agent
        killed in between left it recorded and never run, and the next agent, reading "handed
        over", would never hand over again (the bot left dead, its positions as they were, no
        page). A hand-over with no run of its playbook on its host begun since is armed again:
        the next refusal hands over."""
        pending = {k: ev for k, ev in handovers.items()
                   if ev.kind == HANDOVER_EVENT and (ev.data or {}).get("then") and self._ledgers[k].handed_over}
        if not pending:
            return
        runs = await self._thread.call(functools.partial(self._store.play_runs, limit=500))
        for k, ev in pending.items():
            then = ev.data["then"]
            # A run on this host: the playbook run for another host's hand-over is not this one's.
            if not any(r.play == then and k[1] in r.hosts and r.started_at >= ev.at - HANDOVER_RUN_SLACK
                       for r in runs):
                self._ledgers[k].handed_over = False
                log.warning("the hand-over of %s to %s recorded at %s never began (the agent stopped first): "
                            "it is handed over again", k[2], then, ev.at.isoformat())

    async def recovered(self, bc: BoundCheck) -> None:
        """``bc`` reads OK again: a hand-over of its remediations re-arms (the outage it answered
        is over; the next one, inside the same window, is handed over and paged again instead of
        a bare "budget spent")."""
        for name in bc.check.remediate:
            key = (bc.play.name, bc.host.name, name)
            ledger = self._ledgers.get(key)
            if ledger is None or not ledger.handed_over:
                continue
            ledger.handed_over = False
            await self._thread.call(self._store.add_event, REARM_EVENT, bc.key, None,
                                    f"{name}: {bc.check.name} is OK again after the hand-over: the next time the "
                                    "budget is spent hands over again", {"play": key[0], "host": key[1],
                                                                         "remediation": name})

    def lock_for(self, bc: BoundCheck, name: str, remediation: Remediation) -> asyncio.Lock:
        """The single-flight lock of the remediation's target on ``bc``'s host. Take it *before*
        :meth:`admit`: a run counts in the budget when it ends, so a decision taken while another
        run of the target is under way would not see it (a crash seen during run 3 of 3 was
        admitted as a 4th run once run 3 ended)."""
        return self._locks[(bc.host.name, _target(remediation, name))]

    async def admit(self, bc: BoundCheck, name: str, remediation: Remediation) -> Decision:
        """Whether the remediation may run now; call it holding :meth:`lock_for`."""
        key = (bc.play.name, bc.host.name, name)
        ledger = self._ledgers[key]
        now = self._clock()
        budget = remediation.budget
        if budget is not None:
            ledger.runs = [t for t in ledger.runs if now - t < budget.within]
            if len(ledger.runs) < budget.max:
                ledger.handed_over = False  # the window slid: the hand-over re-arms
            else:
                first = not ledger.handed_over
                ledger.handed_over = True
                if first:
                    await self._thread.call(
                        self._store.add_event, HANDOVER_EVENT, bc.key, None,
                        f"budget of {name} exhausted ({budget.max} runs within {budget.within:g}s)",
                        {"play": key[0], "host": key[1], "remediation": name, "then": budget.then})
                return Decision(False, f"budget spent: {len(ledger.runs)} of {budget.max} runs within "
                                       f"{budget.within:g}s", budget.then if first else None,
                                runs=len(ledger.runs), budget_max=budget.max, spent_before=not first)
        cooldown = remediation.cooldown
        if cooldown and ledger.runs and now - ledger.runs[-1] < cooldown:
            left = cooldown - (now - ledger.runs[-1])
            return Decision(False, f"cooling down ({cooldown:g}s between runs, {left:.1f}s left)", retry_in=left,
                            runs=len(ledger.runs), budget_max=budget.max if budget else None)
        return Decision(True, "", runs=len(ledger.runs), budget_max=budget.max if budget else None)

    async def record(self, bc: BoundCheck, name: str, started_mono: float, started_at: datetime) -> int:
        """Count a run that did something (at least one step not skipped); returns the runs
        inside the window now. The audit row is best effort: the count in memory is what
        decides, and a store that cannot be written must not stop a remediation."""
        key = (bc.play.name, bc.host.name, name)
        self._ledgers[key].runs.append(started_mono)
        data = {"play": key[0], "host": key[1], "remediation": name}
        try:
            await self._thread.call(self._store.add_event, BUDGET_EVENT, bc.key, None, f"{name} ran", data,
                                    at=started_at)
        except Exception as exc:  # noqa: BLE001 - the audit waits for the store; the budget does not
            log.error("remediation run of %s not recorded in the store: %s", name, exc)
        return len(self._ledgers[key].runs)

    def targets(self, bc: BoundCheck, tasks: Iterable[Any]) -> list[str]:
        """The lock targets of ``tasks`` on ``bc``'s host, templates rendered with its vars."""
        out = []
        for t in targets_of_tasks(tasks):
            if self._render is not None and "{{" in t:
                try:
                    t = self._render(t, bc.vars)
                except Exception:  # noqa: BLE001 - lock by the text then: still serialises equal plays
                    pass
            out.append(f"{bc.host.name}/{t}")
        return out

    @contextlib.asynccontextmanager
    async def tasks_lock(self, bc: BoundCheck, tasks: Iterable[Any], *, owner: str) -> AsyncIterator[None]:
        """Hold the cross-process locks of every target ``tasks`` act on (no-op without lock_dir)."""
        if self._lock_dir is None:
            yield
            return
        async with target_locks(self._lock_dir, self.targets(bc, tasks), owner=owner, timeout=LOCK_TIMEOUT_SECONDS):
            yield


def _target(remediation: Remediation, name: str) -> str:
    """What a remediation acts on, for single flight: the programs its steps name, else its name."""
    programs = []
    for step in remediation.steps:
        params = getattr(step, "params", None) or {}
        if isinstance(params, dict) and params.get("program"):
            programs.append(str(params["program"]))
    return ",".join(sorted(programs)) or name
