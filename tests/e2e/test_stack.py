"""The supervised stack as `make run` brings it up, and the README walkthrough on it."""
from __future__ import annotations

import os
import signal
import time

import pytest
from hyperliquid.info import Info

from tests.support.stack import running_stack, wait_until  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow
DEV = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"


def test_stack_trades_and_restart_reconciles(running_stack):
    stack = running_stack()
    stack.wait_running()
    info = Info(stack.exchange_url, skip_ws=True)
    wait_until(lambda: info.user_fills(DEV), 60, what="the bot's first fill on the paper exchange")
    wait_until(lambda: stack.try_health().get("positions"), 30, what="a position in /health")
    orders_before = {o["oid"] for o in info.open_orders(DEV)}

    stack.ctl("restart", "bot")
    stack.wait_state("bot", "RUNNING")
    # /health answers (degraded) before the bot has reconciled, and supervisord writes the bot's
    # output to its log file on its own schedule: wait for what is asserted.
    wait_until(lambda: '"event":"reconcile' in stack.log("bot", tail=200_000), 30, what="the restarted bot reconciling")
    wait_until(lambda: stack.try_health().get("status") in ("healthy", "degraded"), 30, what="the bot healthy again")
    # Reconciliation adopted the resting orders: none of them was replaced by a new one.
    assert orders_before <= {o["oid"] for o in info.open_orders(DEV)}


def test_walkthrough_stop_alert_start_resolve_and_crash_restart(running_stack):
    stack = running_stack(shipped_playbooks=True)
    stack.wait_running()
    # The stored states first (read in milliseconds), then what `agent status` shows: polled alone,
    # it started an `agent` process (about 1.5 CPU-s) every 0.2 s until the checks had run.
    wait_until(lambda: sum(s.hard_state.name == "OK" for s in stack.check_states().values()) >= 5, 60,
               what="five checks OK in the agent's store")
    wait_until(lambda: stack.agent("status").stdout.count("OK") >= 5, 60, what="checks reporting OK")

    stack.ctl("stop", "bot")  # deliberate: alerted, never undone by the agent
    try:
        alert = wait_until(lambda: [m for m in stack.inbox() if "bot process" in m["title"]], 30,
                           what="the bot-process alert")[0]
    except TimeoutError as exc:  # say what did arrive, and what the agent saw
        raise AssertionError(f"{exc}; inbox: {[(m['title'], m.get('message')) for m in stack.inbox()]}; "
                             f"status: {stack.agent('status').stdout}") from exc
    assert "CRITICAL" in alert["title"]
    time.sleep(5)
    assert stack.info("bot")["statename"] == "STOPPED"

    stack.ctl("start", "bot")
    wait_until(lambda: [m for m in stack.inbox() if "RESOLVED" in m["title"] and "bot process" in m["title"]], 30,
               what="the bot-process resolve")

    pid = stack.info("bot")["pid"]
    os.kill(pid, signal.SIGKILL)  # a crash: the agent restarts it within its budget
    wait_until(lambda: (i := stack.info("bot"))["statename"] == "RUNNING" and i["pid"] != pid, 30,
               what="the agent restarting the crashed bot")
    status = stack.agent("status")
    assert status.returncode == 0, status.stderr
