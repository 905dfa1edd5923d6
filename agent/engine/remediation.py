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
less than ``cooldown`` ago (no hand-over; the next hard transition may try again).
Single flight: at most one remediation per (host, remediation target) runs at a time; a second
one waits for the first (a restart racing a restart would be worse than either). Across
processes too: the run holds an ``fcntl`` lock per target under ``var/locks``
(:mod:`agent.engine.locks`), the same locks ``agent run-playbook`` takes, so an operator's play
and the resident agent never act on the same program or account at once.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from agent.engine.locks import target_locks, targets_of_tasks
from agent.playbook.models import BUDGET_HISTORY_S

LOCK_TIMEOUT_SECONDS = 300.0

BUDGET_EVENT = "remediation-run"
HANDOVER_EVENT = "remediation-handover"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""
    handover: str | None = None  # playbook to run instead (budget exhausted, first time)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class _Ledger:
    runs: list[datetime] = field(default_factory=list)
    handed_over: bool = False


class RemediationGuard:
    """Decides whether a remediation may run now, and remembers that it did."""

    def __init__(self, store: Any, db: Callable[..., Awaitable[Any]], *, lock_dir: Path | None = None,
                 render: Callable[[str, Any], str] | None = None) -> None:
        self._store = store
        self._db = db
        self._lock_dir = lock_dir
        self._render = render
        self._ledgers: dict[tuple[str, str, str], _Ledger] = defaultdict(_Ledger)
        self._locks: dict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)

    async def load(self) -> None:
        """Rebuild the ledgers from the audit trail so budgets survive a restart."""
        since = datetime.now().astimezone() - timedelta(seconds=BUDGET_HISTORY_S)
        for ev in await self._db(self._store.events_since, since, [BUDGET_EVENT, HANDOVER_EVENT]):
            data = ev.data or {}
            k = (data.get("play", ""), data.get("host", ""), data.get("remediation", ""))
            if ev.kind == BUDGET_EVENT:
                self._ledgers[k].runs.append(ev.at)
            else:
                self._ledgers[k].handed_over = True

    async def admit(self, bc: Any, name: str, remediation: Any, now: datetime) -> Decision:
        key = (bc.play.name, bc.host.name, name)
        ledger = self._ledgers[key]
        lock = self._locks[(bc.host.name, _target(remediation, name))]
        budget = getattr(remediation, "budget", None)
        if budget is not None:
            ledger.runs = [t for t in ledger.runs if (now - t).total_seconds() < budget.within]
            if len(ledger.runs) < budget.max:
                ledger.handed_over = False  # the window slid: the hand-over re-arms
            else:
                first = not ledger.handed_over
                ledger.handed_over = True
                if first:
                    await self._db(self._store.add_event, HANDOVER_EVENT, bc.key, None,
                                   f"budget of {name} exhausted ({budget.max} runs within {budget.within:g}s)",
                                   {"play": key[0], "host": key[1], "remediation": name})
                return Decision(False, f"budget exhausted: {len(ledger.runs)} runs within {budget.within:g}s "
                                       f"(max {budget.max})", budget.then if first else None, lock)
        cooldown = getattr(remediation, "cooldown", None)
        if cooldown and ledger.runs and (now - ledger.runs[-1]).total_seconds() < cooldown:
            return Decision(False, f"cooling down ({cooldown:g}s between runs)", None, lock)
        return Decision(True, "", None, lock)

    async def record(self, bc: Any, name: str, started: datetime) -> None:
        """Count a run that did something (at least one step not skipped)."""
        key = (bc.play.name, bc.host.name, name)
        self._ledgers[key].runs.append(started)
        data = {"play": key[0], "host": key[1], "remediation": name}
        await self._db(lambda: self._store.add_event(BUDGET_EVENT, bc.key, None, f"{name} ran", data, at=started))


    def targets(self, bc: Any, tasks: Iterable[Any]) -> list[str]:
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
    async def tasks_lock(self, bc: Any, tasks: Iterable[Any], *, owner: str) -> AsyncIterator[None]:
        """Hold the cross-process locks of every target ``tasks`` act on (no-op without lock_dir)."""
        if self._lock_dir is None:
            yield
            return
        async with target_locks(self._lock_dir, self.targets(bc, tasks), owner=owner, timeout=LOCK_TIMEOUT_SECONDS):
            yield

    def target_lock(self, bc: Any, name: str, remediation: Any, *, owner: str) -> Any:
        """The cross-process locks of one remediation's steps."""
        return self.tasks_lock(bc, getattr(remediation, "steps", []) or [], owner=owner)


def _target(remediation: Any, name: str) -> str:
    """What a remediation acts on, for single flight: the programs its steps name, else its name."""
    programs = []
    for step in getattr(remediation, "steps", []) or []:
        params = getattr(step, "params", None) or {}
        if isinstance(params, dict) and params.get("program"):
            programs.append(str(params["program"]))
    return ",".join(sorted(programs)) or name
