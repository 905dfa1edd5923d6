"""Budget, cooldown and hand-over counting of RemediationGuard, on a real SQLite store."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from agent.engine.remediation import RemediationGuard
from agent.store import Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def bc():
    return SimpleNamespace(play=SimpleNamespace(name="p"), host=SimpleNamespace(name="h"), key="p/h/c")


def remediation(max_=3, within=1800.0, then="emergency", cooldown=None):
    return SimpleNamespace(budget=SimpleNamespace(max=max_, within=within, then=then), cooldown=cooldown, steps=[])


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'a.db'}")
    s.migrate()
    yield s
    s.close()


async def _db(fn, *args):
    return await asyncio.to_thread(fn, *args)


async def test_budget_then_one_handover_then_rearm(store):
    g, r = RemediationGuard(store, _db), remediation()
    for i in range(3):
        d = await g.admit(bc(), "restart", r, T0 + timedelta(minutes=i))
        assert d.allowed
        await g.record(bc(), "restart", T0 + timedelta(minutes=i))
    d4 = await g.admit(bc(), "restart", r, T0 + timedelta(minutes=3))
    d5 = await g.admit(bc(), "restart", r, T0 + timedelta(minutes=4))
    assert (d4.allowed, d4.handover) == (False, "emergency")
    assert (d5.allowed, d5.handover) == (False, None)  # paged once
    # 30 minutes after the first run it stops counting: the window slid, the budget re-arms.
    d6 = await g.admit(bc(), "restart", r, T0 + timedelta(minutes=30, seconds=1))
    assert d6.allowed


async def test_unrecorded_runs_do_not_count(store):
    g, r = RemediationGuard(store, _db), remediation(max_=1)
    for i in range(5):  # admitted but every step skipped: nothing recorded
        assert (await g.admit(bc(), "restart", r, T0 + timedelta(seconds=i))).allowed


async def test_cooldown(store):
    g, r = RemediationGuard(store, _db), remediation(cooldown=60.0)
    await g.record(bc(), "restart", T0)
    assert not (await g.admit(bc(), "restart", r, T0 + timedelta(seconds=30))).allowed
    assert (await g.admit(bc(), "restart", r, T0 + timedelta(seconds=61))).allowed


async def test_budget_survives_a_restart(store):
    now = datetime.now(UTC)
    g = RemediationGuard(store, _db)
    for i in range(3):
        await g.record(bc(), "restart", now - timedelta(minutes=10 - i))
    g2 = RemediationGuard(store, _db)  # a new agent process on the same store
    await g2.load()
    d = await g2.admit(bc(), "restart", remediation(), now)
    assert (d.allowed, d.handover) == (False, "emergency")
