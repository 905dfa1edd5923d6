"""Guarantees that hold under faults nobody scripted (issue 13), on the whole stack.

Every scenario of :mod:`tests.faults.scenarios` runs ``FAULT_RUNS`` times (default 1) with fresh
random timings; the seed of each run is printed when it fails, and ``FAULT_SEED=N`` replays it.
Targets: 0 lost, 0 duplicated, 0 positions without a stop, at most one message per fault plus its
resolve, no bot left dead without a page (and a resolve never arrives after a newer alert of the
same check).

Which scenarios run (``FAULT_SCENARIOS``): by default (``make test``) the :data:`DEFAULT` ones, about
a minute and a half on one stack on a loaded 2-core machine; the others are marked ``slow_faults``
and skipped, saying how to run them: ``FAULT_SCENARIOS=all`` (every scenario, about 8 minutes at
one run each), a comma-separated list of names, or ``make reliability`` (every scenario, many
runs, docs/reliability.md). Every fault test is in one ``xdist_group`` (``make test`` runs with
``--dist loadgroup``): one pytest-xdist worker runs them one after another on one stack, instead
of every worker starting a stack of its own.

Scenarios whose target is not met are ``xfail(strict=True)`` with the figures seen and the issue
item whose fix they wait for: remove the mark when the fix lands.
"""
from __future__ import annotations

import os
import random

import pytest

from tests.faults.scenarios import SCENARIOS, StackPool

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900), pytest.mark.xdist_group("faults")]

RUNS = int(os.environ.get("FAULT_RUNS", "1"))

DEFAULT = ("crash-after-running", "store-locked", "crash-in-cooldown", "agent-killed-mid-remediation")
"""What ``make test`` runs (about two minutes on one stack, measured on this project's loaded
2-core machine; docs/reliability.md): a crash of the restarted bot before any check saw it
running, the store's write lock held across a crash (direct alert, stored later, told once), a
crash inside the restart's cooldown, the agent SIGKILLed while it decides about a crash. The first
two were seen failing on main; a receiver down across a crash is left to ``make reliability``
(tests/e2e/test_agent_core.py has a receiver down while an alert fires, with a fixed timing).

agent-killed-mid-remediation failed a fresh-clone ``make test`` once (seed 2609875285: "no alert,
no restart, the bot left EXITED") and was taken out of this set for a session. The cause was the
measurement: supervisord reports a SIGKILLed program RUNNING until its loop wakes (up to a second
later), so the run ended at once and was measured before the restarted agent had said or done
anything. Reproduced with the kill 0-10 ms after the crash (3 of 10 runs failed), it now waits
for a bot that is not the killed one (``FaultStack.killed``): 6 of 6 such runs met the targets."""

_selected = os.environ.get("FAULT_SCENARIOS", "default")
SELECTED = (set(SCENARIOS) if _selected == "all" else set(DEFAULT) if _selected == "default"
            else {n.strip() for n in _selected.split(",") if n.strip()})

# Targets not met (issue 13): the figures seen, and what fixes it.
KNOWN: dict[str, str] = {
    # bot-hung, exchange-429 and exchange-outage met the targets in 2 runs each once a chain folds
    # whole and a failed reading is read again soon, a timeout confirmed before it is told
    # (agent/notify/lifecycle/dependency_hold.py, agent/engine/retries.py); exchange-5xx met them in
    # 10 of 10 runs (twice) once a dependent that cannot read for its parent's reason waits for it
    # (same_fault, a second reading) and the latency check's recovery takes three answers in a row
    # over 4 s (recover_after: 3; with 2 answers and no span, 1 of 10 runs gave 6 messages)
    "agent-killed-mid-delivery": "issue 13 items 4/5 (outbox): the alert the receiver got before the agent was "
                                 "killed (its answer not yet back) is sent again: at-least-once by choice, a lost "
                                 "alert costs more than a repeat; the repeat says so (agent.store.REPEAT_NOTE, "
                                 "counted as 'said again'). 0 duplicates would need a receiver that deduplicates",
}


KNOWN_ONLY: dict[str, tuple[str, ...]] = {
}
"""Known scenarios whose xfail covers only these failures: any other (a lost page, a position
without a stop, a bot dead without a page) fails the test for real."""


class KnownTargetMissed(AssertionError):
    """Only the known failures of a :data:`KNOWN_ONLY` scenario."""


def _cases() -> list[object]:
    out: list[object] = []
    for name in SCENARIOS:
        marks: list[pytest.MarkDecorator] = []
        if name not in DEFAULT:
            marks.append(pytest.mark.slow_faults)
        if name not in SELECTED:
            marks.append(pytest.mark.skip(reason=f"not in FAULT_SCENARIOS={_selected}: run it with "
                                                 f"FAULT_SCENARIOS={name} (or all), or make reliability"))
        if name in KNOWN:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN[name],
                                           raises=KnownTargetMissed if name in KNOWN_ONLY else None))
        out.append(pytest.param(name, id=name, marks=marks))
    return out


@pytest.mark.parametrize("name", _cases())
def test_fault_scenario_meets_the_targets(name: str, fault_stacks: StackPool) -> None:
    spec = SCENARIOS[name]
    if spec.needs_full_disk and fault_stacks.full_disk_skip:
        pytest.skip(fault_stacks.full_disk_skip)
    fixed = os.environ.get("FAULT_SEED")
    seeds = [int(fixed)] if fixed else [random.SystemRandom().randrange(2**32) for _ in range(RUNS)]
    failed = []
    only_known = True
    for seed in seeds:
        outcome = fault_stacks.run(spec, seed)
        print(outcome.summary())
        allowed = KNOWN_ONLY.get(name, ())
        only_known = only_known and all(any(a in f for a in allowed) for f in outcome.failures())
        if not outcome.ok:
            failed.append(f"seed {seed} (replay: FAULT_SEED={seed} pytest tests/faults -k {name}): "
                          f"{'; '.join(outcome.failures())}\n  {outcome.summary()}")
    if failed and name in KNOWN_ONLY and only_known:
        raise KnownTargetMissed("\n".join(failed))
    assert not failed, "\n".join(failed)
