"""Guarantees that hold under faults nobody scripted (issue 13), on the whole stack.

Every scenario of :mod:`tests.faults.scenarios` runs ``FAULT_RUNS`` times (default 1 in ``make
test``; ``make reliability`` runs 20) with fresh random timings; the seed of each run is printed
when it fails, and ``FAULT_SEED=N`` replays it. Targets: 0 lost, 0 duplicated, 0 positions
without a stop, at most one message per fault plus its resolve, no bot left dead without a page
(and a resolve never arrives after a newer alert of the same check).

Scenarios whose target is not met on main are ``xfail(strict=True)`` with the figure seen and
the issue item whose fix they wait for: remove the mark when the fix lands.
"""
from __future__ import annotations

import os
import random

import pytest

from tests.faults.scenarios import SCENARIOS, StackPool

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

RUNS = int(os.environ.get("FAULT_RUNS", "1"))

# Targets not met on main (issue 13): the figure seen, and what fixes it.
KNOWN: dict[str, str] = {
    "bot-hung": "issue 13 item 6 (one fault, one message): a 6 s SIGSTOP gave 5 messages (heartbeat CRITICAL, "
                "2 grouped UNKNOWN, bot not halted UNKNOWN, 2 resolves)",
    "exchange-429": "issue 13 item 6: 3 messages per fault (UNKNOWN latency, UNKNOWN credentials, which is "
                    "never resolved within the run, one resolve)",
    "exchange-5xx": "issue 13 item 6: 3 messages per fault (UNKNOWN latency, UNKNOWN credentials never resolved, "
                    "one resolve)",
    "exchange-outage": "issue 13 item 6: 5 messages per fault (UNKNOWN latency, credentials and rate-limit "
                       "headroom, 2 resolves; credentials never resolved)",
    "emergency-close-refused": "issue 13 items 6/7: 3 messages for one emergency (WARNING bot not halted, "
                               "CRITICAL bot process for the emergency's own stop, the page); stops all in place",
    "agent-killed-mid-delivery": "issue 13 items 4/5 (outbox): the alert the receiver got before the agent was "
                                 "killed is sent again (1 duplicate, 3 messages per fault)",
}


def _cases() -> list[object]:
    out: list[object] = []
    for name in SCENARIOS:
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN[name])] if name in KNOWN else []
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
    for seed in seeds:
        outcome = fault_stacks.run(spec, seed)
        print(outcome.summary())
        if not outcome.ok:
            failed.append(f"seed {seed} (replay: FAULT_SEED={seed} pytest tests/faults -k {name}): "
                          f"{'; '.join(outcome.failures())}\n  {outcome.summary()}")
    assert not failed, "\n".join(failed)
