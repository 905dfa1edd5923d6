"""Budget, cooldown and hand-over counting of RemediationGuard, on a real SQLite store."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from agent.engine.remediation import RemediationGuard

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    """The guard's monotonic clock, set by the test to ``T0 + offset`` as seconds."""

    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> float:
        return (self.at - T0).total_seconds() + 1000.0

    def set(self, at: datetime) -> datetime:
        self.at = at
        return at


def bc():
    return SimpleNamespace(play=SimpleNamespace(name="p"), host=SimpleNamespace(name="h"), key="p/h/c")


def remediation(max_=3, within=1800.0, then="emergency", cooldown=None):
    return SimpleNamespace(budget=SimpleNamespace(max=max_, within=within, then=then), cooldown=cooldown, steps=[])


def guard(store, thread, clock):
    return RemediationGuard(store, thread, clock=clock)


async def test_budget_then_one_handover_then_rearm(store, thread):
    clock = Clock()
    g, r = guard(store, thread, clock), remediation()
    for i in range(3):
        at = clock.set(T0 + timedelta(minutes=i))
        d = await g.admit(bc(), "restart", r)
        assert d.allowed
        await g.record(bc(), "restart", clock(), at)
    clock.set(T0 + timedelta(minutes=3))
    d4 = await g.admit(bc(), "restart", r)
    clock.set(T0 + timedelta(minutes=4))
    d5 = await g.admit(bc(), "restart", r)
    assert (d4.allowed, d4.handover) == (False, "emergency")
    assert (d5.allowed, d5.handover) == (False, None)  # paged once
    # 30 minutes after the first run it stops counting: the window slid, the budget re-arms.
    clock.set(T0 + timedelta(minutes=30, seconds=1))
    d6 = await g.admit(bc(), "restart", r)
    assert d6.allowed


async def test_unrecorded_runs_do_not_count(store, thread):
    clock = Clock()
    g, r = guard(store, thread, clock), remediation(max_=1)
    for i in range(5):  # admitted but every step skipped: nothing recorded
        clock.set(T0 + timedelta(seconds=i))
        assert (await g.admit(bc(), "restart", r)).allowed


async def test_cooldown(store, thread):
    clock = Clock()
    g, r = guard(store, thread, clock), remediation(cooldown=60.0)
    await g.record(bc(), "restart", clock(), T0)
    clock.set(T0 + timedelta(seconds=30))
    refused = await g.admit(bc(), "restart", r)
    assert not refused.allowed
    assert refused.retry_in == pytest.approx(30.0)  # when it may run: the remediator decides again then
    clock.set(T0 + timedelta(seconds=61))
    assert (await g.admit(bc(), "restart", r)).allowed


async def test_budget_survives_a_restart(store, thread):
    now = datetime.now(UTC)
    g = RemediationGuard(store, thread)
    for i in range(3):
        at = now - timedelta(minutes=10 - i)
        await g.record(bc(), "restart", 0.0, at)
    g2 = RemediationGuard(store, thread)  # a new agent process on the same store
    await g2.load()
    d = await g2.admit(bc(), "restart", remediation())
    assert (d.allowed, d.handover) == (False, "emergency")


async def test_a_step_of_the_wall_clock_neither_resets_a_budget_nor_lengthens_a_cooldown(store, thread, monkeypatch):
    """Windows and cooldowns are monotonic: the wall clock jumping a day ahead (or back) in the
    middle changes nothing the guard decides."""
    import agent.engine.remediation as remediation_module

    clock = Clock()
    g, r = guard(store, thread, clock), remediation(max_=2, within=3600.0, cooldown=60.0)
    for i in range(2):
        clock.set(T0 + timedelta(minutes=2 * i))
        assert (await g.admit(bc(), "restart", r)).allowed
        await g.record(bc(), "restart", clock(), T0 + timedelta(minutes=2 * i))

    class Shifted(datetime):
        @classmethod
        def now(cls, tz=None):  # a wall clock a day ahead
            return datetime.now(tz) + timedelta(days=1)

    monkeypatch.setattr(remediation_module, "datetime", Shifted)
    clock.set(T0 + timedelta(minutes=5))
    d = await g.admit(bc(), "restart", r)
    assert (d.allowed, d.handover) == (False, "emergency")  # still 2 of 2 within the hour


async def test_a_check_ok_again_after_the_handover_rearms_it_across_a_restart(store, thread):
    """Breaker g1 F6: after a hand-over the operator started the bot (the check read OK), resumed,
    and it crashed again inside the window: "budget spent", no emergency, the bot left dead with a
    position. Once the check is OK after a hand-over, the next spent budget hands over again (and
    an agent restarted in between reads that from the audit trail)."""
    import time

    now, r = datetime.now(UTC), remediation()
    checked = SimpleNamespace(play=SimpleNamespace(name="p"), host=SimpleNamespace(name="h"), key="p/h/c",
                              check=SimpleNamespace(name="c", remediate=["restart"]))
    g = RemediationGuard(store, thread)
    for i in range(3):
        await g.record(checked, "restart", time.monotonic(), now - timedelta(minutes=3 - i))
    assert (await g.admit(checked, "restart", r)).handover == "emergency"
    emergency_began(store)
    assert (await g.admit(checked, "restart", r)).handover is None  # the same outage: once
    still = RemediationGuard(store, thread)  # an agent restarted before anyone fixed it: still once
    await still.load()
    assert (await still.admit(checked, "restart", r)).handover is None
    await g.recovered(checked)  # started again by the operator: OK
    again = RemediationGuard(store, thread)  # the agent restarted meanwhile
    await again.load()
    d = await again.admit(checked, "restart", r)
    assert (d.allowed, d.handover) == (False, "emergency")  # the new outage is handed over


def emergency_began(store, host: str = "h") -> None:
    """The hand-over's playbook run begins on ``host`` (as the remediator's hand-over records it)."""
    import uuid

    store.start_play_run(run=uuid.uuid4().hex[:16], play="emergency", hosts=[host], tasks=["halt"], actor="agent",
                         reason="budget spent", on_interrupt="resume", owner_host="x", owner_pid=1,
                         owner_started=0.0, started_at=datetime.now(UTC), attempt=1, resumed_from=None)


@pytest.mark.parametrize("began", [True, False])
async def test_a_handover_the_agent_died_before_beginning_is_handed_over_by_the_next_agent(store, thread, began):
    """The hand-over is recorded when decided, before its playbook's run begins: an agent killed
    in between left "handed over" and no emergency; the next agent must hand over again (or the
    bot stays dead with its positions and nobody is paged), and only then."""
    import time

    now, r = datetime.now(UTC), remediation()
    g = RemediationGuard(store, thread)
    for i in range(3):
        await g.record(bc(), "restart", time.monotonic(), now - timedelta(minutes=3 - i))
    assert (await g.admit(bc(), "restart", r)).handover == "emergency"
    if began:
        emergency_began(store)
    after = RemediationGuard(store, thread)  # the agent killed, started again by supervisord
    await after.load()
    d = await after.admit(bc(), "restart", r)
    assert (d.allowed, d.handover) == (False, None if began else "emergency")
    assert (await after.admit(bc(), "restart", r)).handover is None  # and once


async def test_a_handover_never_begun_is_handed_over_again_though_its_playbook_ran_on_another_host(store, thread):
    """The emergency run on another host since (its own hand-over, an operator's run there) is
    not this host's: the hand-over recorded for host h and never begun must be handed over again
    (before, any run of the playbook anywhere counted: h's bot left dead, nobody paged)."""
    import time

    now, r = datetime.now(UTC), remediation()
    g = RemediationGuard(store, thread)
    for i in range(3):
        await g.record(bc(), "restart", time.monotonic(), now - timedelta(minutes=3 - i))
    assert (await g.admit(bc(), "restart", r)).handover == "emergency"
    emergency_began(store, host="other")  # another host's hand-over ran; h's agent was killed first
    after = RemediationGuard(store, thread)
    await after.load()
    d = await after.admit(bc(), "restart", r)
    assert (d.allowed, d.handover) == (False, "emergency")
