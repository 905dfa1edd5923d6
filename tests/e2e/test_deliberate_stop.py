"""A deliberate stop is never remediated, and never handed over, whatever the budget says.

restart-bot restarts a crashed bot (EXITED, FATAL, BACKOFF) within a budget of 3 runs; past the
budget it hands over to the emergency playbook, which halts, cancels and flattens. Its step's
``when`` says a ``supervisorctl stop bot`` (STOPPING, STOPPED) is not a crash. That ``when`` must
decide before the budget and the cooldown do: once three crashes spent the budget, an operator's
stop must not be read as "the budget is spent, hand over", which would flatten the account.

The whole stack (supervisord, paper exchange, bot, agent) with the shipped bot-health, exchange
and emergency playbooks; restart-bot's cooldown is shortened so the budget is spent in seconds.
"""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.store import EventRecord, Store
from tests.e2e.test_runbooks_trading import _account, _answers, _sdk
from tests.support.stack import REPO, StackUnderTest, wait_until

pytestmark = pytest.mark.slow
PROCESS_KEY = "bot-health/local/bot process"


@pytest.fixture
def stack() -> Iterator[StackUnderTest]:
    doc = yaml.safe_load((REPO / "playbooks" / "bot-health.yaml").read_text())
    budget = doc["remediations"]["restart-bot"]["budget"]
    assert budget["max"] == 3 and budget["then"] == "emergency"  # as shipped: what this test is about
    doc["remediations"]["restart-bot"]["cooldown"] = "1s"
    root = Path(tempfile.mkdtemp(prefix="bw"))
    # Hourly candles: the bot holds still, so the account only changes if someone flattens it.
    st = StackUnderTest(root, playbooks={"bot-health": yaml.safe_dump(doc, sort_keys=False),
                                         **{name: (REPO / "playbooks" / f"{name}.yaml").read_text()
                                            for name in ("exchange", "emergency")}},
                        settings={"bot": {"candle_interval": "1h"}},
                        inventory={"notify": {"group_wait": "1s", "group_interval": "5s"}})
    try:
        st.up()
        st.wait_running()
        wait_until(lambda: _answers(f"{st.exchange_url}/info", json={"type": "meta"}), 30, what="the exchange")
        wait_until(lambda: _answers(st.settings.bot.health_url), 30, what="the bot's /health")
        yield st
    finally:
        try:
            st.discard()
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _events(stack: StackUnderTest, kind: str) -> list[EventRecord]:
    store = Store(stack.store_url(), create=False)
    try:
        return [e for e in store.recent_events(kind=kind, limit=500) if e.key in (PROCESS_KEY, None)]
    finally:
        store.close()


def _emergency_runs(stack: StackUnderTest) -> list[Any]:
    store = Store(stack.store_url(), create=False)
    try:
        return [r for r in store.action_runs(limit=500) if r.play == "emergency"]
    finally:
        store.close()


def _crash_and_wait_for_the_restart(stack: StackUnderTest, runs: int) -> None:
    pid = stack.info("bot")["pid"]
    os.killpg(pid, signal.SIGKILL)  # the bot and its warm spare
    wait_until(lambda: (i := stack.info("bot"))["statename"] == "RUNNING" and i["pid"] != pid, 60,
               what="the agent restarting the bot")
    wait_until(lambda: len(_events(stack, "remediation-run")) >= runs, 30, what=f"restart {runs} recorded")
    wait_until(lambda: (s := stack.check_states().get(PROCESS_KEY)) and s.hard_state.name == "OK", 30,
               what="the bot process check OK again")


def test_a_stop_after_the_budget_is_spent_is_not_handed_over_to_the_emergency(stack: StackUnderTest) -> None:
    info, ex = _sdk(stack)
    if not _account(info)[0]:
        assert ex.market_open("BTC", True, 0.01)["status"] == "ok"
    positions = sorted((p["coin"], p["szi"]) for p in _account(info)[0])
    assert positions

    for runs in (1, 2, 3):  # three crashes: the budget (3 within 30m) is spent
        _crash_and_wait_for_the_restart(stack, runs)
    assert len(_events(stack, "remediation-run")) == 3

    def crashes_told() -> bool:  # each crash's alert resolved at the receiver (a resolve may trail the OK)
        titles = [m["title"] for m in stack.inbox() if "bot process" in m["title"]]
        opened = sum(t.startswith("[CRITICAL] ") for t in titles)
        return opened == sum(t.startswith("[RESOLVED] ") for t in titles) and stack.outbox_idle()

    wait_until(crashes_told, 30, what="every crash's alert resolved at the receiver")
    told_before = len(stack.inbox())

    stack.ctl("stop", "bot")  # deliberate
    stack.wait_state("bot", "STOPPED")
    # The bot, trading between its restarts, may have closed or opened positions of its own; once
    # it is stopped nobody but an emergency would trade the account.
    positions = sorted((p["coin"], p["szi"]) for p in _account(info)[0])
    # The agent decides about the stop: its outcome is recorded on the stop's incident.
    decided = wait_until(lambda: [e for e in _events(stack, "remediation-outcome")
                                  if "saw STOP" in e.message or "emergency" in e.message], 30,
                         what="the agent's decision about the stop")
    assert "nothing done" in decided[0].message and "saw STOPP" in decided[0].message, decided[0].message
    wait_until(lambda: any("bot process" in m["title"] for m in stack.inbox()[told_before:]), 30,
               what="the stop's message")
    # Whatever came late would have come by now (the hand-over runs right after the decision).
    assert not _events(stack, "remediation-handover")
    assert not _emergency_runs(stack)
    assert stack.info("bot")["statename"] == "STOPPED"  # not restarted either
    # Not flattened: the account is as the stopped bot left it.
    assert sorted((p["coin"], p["szi"]) for p in _account(info)[0]) == positions
    after = stack.inbox()[told_before:]
    assert not [m for m in after if "EMERGENCY" in m["title"] or "[PAGE]" in m["title"]], [m["title"] for m in after]
    about = [m for m in after if "bot process" in m["title"]]
    assert len(about) == 1, [m["title"] for m in after]  # one informational message at most
