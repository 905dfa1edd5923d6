"""The trading runbooks end to end: the whole stack (supervisord, inbox, paper exchange, bot,
agent), faults injected through the exchange's admin API and process control, outcomes read
where an operator reads them (the inbox, supervisord, the exchange through the SDK).

Two stacks, each shared by the tests of its part (they run in file order, on one pytest-xdist
worker per part):

* the emergency stack runs no scheduled playbook (nothing restarts the bot behind the test's
  back); ``agent run-playbook`` is pointed at the repository's playbooks;
* the alert stack runs bot-health, exchange and trading-risk as shipped, with test-sized
  thresholds and intervals written into its copies (``_patched``).
"""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info

from botwarden.settings import PAPER_DEV_PRIVATE_KEY
from tests.support import loopback
from tests.support.stack import REPO, StackUnderTest, wait_until

pytestmark = pytest.mark.slow
DEV = Account.from_key(PAPER_DEV_PRIVATE_KEY).address
MY_PLAYBOOKS = ["emergency", "graceful-restart", "exchange", "trading-risk", "bot-health"]
# Each part's tests on one pytest-xdist worker (make test: --dist loadgroup), so each of its two
# stacks starts once, not once per worker that happens to run one of its tests.
QUIET = pytest.mark.xdist_group("runbooks-trading-quiet")
ALERTS = pytest.mark.xdist_group("runbooks-trading-alerts")
# The alert stack's hang deadline (shipped 60 s: past the loop-age warning, so a slow exchange is
# not a hang); the bot's loop still beats well inside it under the latency and outage faults
# injected here (tests/e2e/test_one_fault.py runs those faults with 12 s).
HEARTBEAT_DEADLINE_S = 20


def _stack(**kw: Any) -> Iterator[StackUnderTest]:
    root = Path(tempfile.mkdtemp(prefix="bw"))
    stack = StackUnderTest(root, **kw)
    try:
        stack.up()
        stack.wait_running()
        wait_until(lambda: _answers(f"{stack.exchange_url}/info", json={"type": "meta"}), 30, what="the exchange")
        wait_until(lambda: _answers(stack.settings.bot.health_url), 30, what="the bot's /health")
        yield stack
    finally:
        try:
            stack.discard()
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _answers(url: str, json: Any = None) -> bool:
    """True once ``url`` answers 200 (RUNNING in supervisord is not yet listening)."""
    try:
        r = loopback.post(url, json=json, timeout=2) if json is not None else loopback.get(url, timeout=2)
    except httpx.HTTPError:
        return False
    return r.status_code == 200


def _sdk(stack: StackUnderTest) -> tuple[Info, Exchange]:
    return (Info(stack.exchange_url, skip_ws=True, timeout=10),
            Exchange(Account.from_key(PAPER_DEV_PRIVATE_KEY), stack.exchange_url, timeout=10))


def _account(info: Info) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(positions, open orders) of the dev account, as the exchange holds them."""
    return [p["position"] for p in info.user_state(DEV)["assetPositions"]], info.frontend_open_orders(DEV)


def _alerts(stack: StackUnderTest, check: str, *states: str) -> list[dict[str, Any]]:
    """Alert messages about ``check`` in one of ``states``: alone (``[CRITICAL] check on host``,
    or ``[CRITICAL, now OK] check on host`` when the agent fixed it before the alert went out) or
    within a message grouping several problems of the host (``- **CRITICAL** check``)."""
    found = []
    for m in stack.inbox():
        title, body = m.get("title", ""), m.get("message") or m.get("body") or ""
        if "RESOLVED" in title:
            continue
        for state in states or ("CRITICAL", "WARNING", "UNKNOWN"):
            # a problem the agent fixed before its alert went out is told once as [STATE, now OK]
            if any(f"[{state}{fixed}] {check} on" in title for fixed in ("", ", now OK")) \
                    or f"**{state}** {check} (" in body:
                found.append(m)
                break
    return found


# --- emergency and check mode -------------------------------------------------------------------
@pytest.fixture(scope="module")
def quiet_stack() -> Iterator[StackUnderTest]:
    # Hourly candles: the bot enters at start-up and then holds still, so snapshots of its orders
    # and positions are not raced by a MACD flip on the paper market's wall-clock price path.
    yield from _stack(playbooks={"emergency": (REPO / "playbooks" / "emergency.yaml").read_text()},
                      settings={"bot": {"candle_interval": "1h"}})


@QUIET
def test_playbooks_validate_and_run_in_check_mode_without_side_effects(quiet_stack: StackUnderTest) -> None:
    stack = quiet_stack
    info, _ = _sdk(stack)
    wait_until(lambda: stack.try_health().get("positions"), 60, what="the bot holding positions")
    validated = stack.agent("validate", str(REPO / "playbooks"))
    assert validated.returncode == 0, validated.stdout + validated.stderr
    pid = stack.info("bot")["pid"]
    before = {o["oid"] for o in _account(info)[1]}
    for name in MY_PLAYBOOKS:
        run = stack.agent("run-playbook", name, "--check", "--playbooks", str(REPO / "playbooks"))
        assert run.returncode == 0, f"{name}:\n{run.stdout}\n{run.stderr}"
        assert "failed=0" in run.stdout, run.stdout
    health = stack.health()
    assert health["status"] != "halted" and stack.info("bot")["pid"] == pid
    assert before <= {o["oid"] for o in _account(info)[1]}  # nothing cancelled (the bot may add)
    assert not [m for m in stack.inbox() if "EMERGENCY" in m["title"]]


@QUIET
def test_emergency_check_lists_the_exact_orders_and_positions_then_yes_flattens(
        quiet_stack: StackUnderTest) -> None:
    stack = quiet_stack
    info, ex = _sdk(stack)
    px = round(float(info.all_mids()["ETH"]) * 0.7, 1)
    resting = ex.order("ETH", True, 0.05, px, {"limit": {"tif": "Gtc"}})["response"]["data"]["statuses"][0]
    wait_until(lambda: _account(info)[0] and len(_account(info)[1]) >= 2, 30, what="positions and orders")
    positions, orders = _account(info)

    preview = stack.agent("run-playbook", "emergency", "--check")
    assert preview.returncode == 0, preview.stdout + preview.stderr
    out = " ".join(preview.stdout.split())  # rich may wrap long lines
    for o in orders:
        assert f"(oid {o['oid']})" in out, (o, out)
    assert f"(oid {resting['resting']['oid']})" in out
    for p in positions:
        side = "long" if float(p["szi"]) > 0 else "short"
        assert f"{p['coin']} {side} {abs(float(p['szi'])):g}" in out, (p, out)
    assert stack.health()["status"] != "halted"
    assert {o["oid"] for o in orders} <= {o["oid"] for o in _account(info)[1]}
    # Nothing closed (the emergency only closes and cancels; the bot may open its second start-up
    # entry meanwhile, as a fresh-clone run saw: every earlier position must still be there).
    assert {(p["coin"], p["szi"]) for p in positions} <= {(p["coin"], p["szi"]) for p in _account(info)[0]}

    done = stack.agent("run-playbook", "emergency", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _account(info) == ([], [])
    assert stack.info("bot")["statename"] == "STOPPED"
    wait_until(lambda: [m for m in stack.inbox() if "EMERGENCY" in m["title"]], 20, what="the emergency page")
    assert list((stack.var / "snapshots").glob("emergency-*.tar.gz"))


@QUIET
def test_emergency_flattens_the_account_of_a_killed_bot(quiet_stack: StackUnderTest) -> None:
    stack = quiet_stack
    info, ex = _sdk(stack)
    if stack.info("bot")["statename"] != "STOPPED":
        # The emergency this test follows ran on another pytest-xdist worker's stack (or not at
        # all): take it here, so the bot is halted and the account flat before the bot is killed.
        first = stack.agent("run-playbook", "emergency", "--yes")
        assert first.returncode == 0, first.stdout + first.stderr
        assert stack.info("bot")["statename"] == "STOPPED" and _account(info) == ([], [])
    stack.ctl("start", "bot")
    stack.wait_state("bot", "RUNNING")
    wait_until(lambda: stack.try_health().get("status") == "halted", 30, what="the bot back, still halted")
    os.killpg(stack.info("bot")["pid"], signal.SIGKILL)  # the bot's group: the bot and its warm spare
    stack.wait_state("bot", "EXITED", "BACKOFF", "FATAL")
    # What a dead bot leaves behind: positions and resting orders nobody manages.
    assert ex.market_open("BTC", True, 0.02)["status"] == "ok"
    assert ex.market_open("SOL", False, 5)["status"] == "ok"
    px = round(float(info.all_mids()["BTC"]) * 0.8)
    ex.order("BTC", True, 0.001, px, {"limit": {"tif": "Gtc"}})
    ex.order("BTC", True, 0.001, px - 1, {"limit": {"tif": "Gtc"}})
    positions, orders = _account(info)
    assert len(positions) == 2 and len(orders) == 2

    done = stack.agent("run-playbook", "emergency", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "trip the circuit breaker" in done.stdout and "failed (ignored)" in done.stdout
    assert "Unclosed" not in done.stderr, done.stderr  # every HTTP session closed before exit
    assert _account(info) == ([], [])


# --- alerting runbooks ------------------------------------------------------------------------------
def _patched(name: str, play_vars: dict[str, Any], every: str = "2s") -> str:
    """The shipped playbook ``name`` with test-sized vars, intervals and no `for:` delays."""
    doc = yaml.safe_load((REPO / "playbooks" / f"{name}.yaml").read_text())
    doc["vars"] = {**(doc.get("vars") or {}), **play_vars}
    doc["schedule"] = {"every": every}
    for check in doc.get("checks", []):
        check["every"] = every
        check.pop("for", None)
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.fixture(scope="module")
def alert_stack() -> Iterator[StackUnderTest]:
    health = yaml.safe_load(_patched("bot-health", {"market_data_warning_s": 4, "market_data_critical_s": 8}))
    for check in health["checks"]:
        if "heartbeat" in check:
            check["heartbeat"]["deadline"] = f"{HEARTBEAT_DEADLINE_S}s"
    playbooks = {
        "bot-health": yaml.safe_dump(health, sort_keys=False),
        "exchange": _patched("exchange", {}),
        "trading-risk": _patched("trading-risk", {"position_max_age_s": 5, "no_trade_warning_s": 8}),
        "emergency": (REPO / "playbooks" / "emergency.yaml").read_text(),
    }
    # The bot's own daily-loss halt is set out of reach, so the halt seen is the agent's.
    # Grouping stays on, with test-sized waits, so each problem is announced within seconds; so is
    # the hold of a restarted bot's dependents (inhibit_grace, shipped 30 s).
    yield from _stack(playbooks=playbooks, settings={"bot": {"risk": {"daily_loss_limit_pct": 90}}},
                      inventory={"notify": {"group_wait": 0.5, "group_interval": 1, "inhibit_grace": "5s"}})


@ALERTS
def test_stuck_position_and_no_trades_alert(alert_stack: StackUnderTest) -> None:
    stack = alert_stack
    wait_until(lambda: _alerts(stack, "position open too long", "CRITICAL"), 90, what="the stuck-position alert")
    wait_until(lambda: _alerts(stack, "no trade for too long", "WARNING"), 60, what="the no-trade alert")


@ALERTS
def test_api_latency_alerts(alert_stack: StackUnderTest) -> None:
    stack = alert_stack
    stack.exchange_admin("POST", "/admin/faults", {"latency_ms": 1500})
    try:
        wait_until(lambda: _alerts(stack, "exchange API latency", "WARNING"), 40, what="the latency alert")
    finally:
        stack.exchange_admin("DELETE", "/admin/faults")


@ALERTS
def test_stale_market_data_alerts(alert_stack: StackUnderTest) -> None:
    stack = alert_stack
    stack.exchange_admin("POST", "/admin/faults", {"outage": "503"})
    try:
        # One message: the exchange's, listing the bot's market data age folded under it.
        wait_until(lambda: [m for m in _alerts(stack, "exchange API latency", "UNKNOWN")
                            if "market data age" in (m.get("message") or "")], 60,
                   what="the exchange alert that folds the stale market data")
    finally:
        stack.exchange_admin("DELETE", "/admin/faults")
    wait_until(lambda: (stack.try_health().get("market_data_age_s") or 99) < 4,
               40, what="fresh market data again")


@ALERTS
def test_crash_alerts_and_the_agent_restarts_the_bot(alert_stack: StackUnderTest) -> None:
    stack = alert_stack
    pid = stack.info("bot")["pid"]
    os.kill(pid, signal.SIGKILL)
    alerts = wait_until(lambda: _alerts(stack, "bot process", "CRITICAL"), 30,
                        what=lambda: f"the crash alert; inbox: {[m.get('title') for m in stack.inbox()]}")
    wait_until(lambda: (i := stack.info("bot"))["statename"] == "RUNNING" and i["pid"] != pid, 40,
               what="the agent restarting the bot")
    body = alerts[0].get("message") or alerts[0].get("body") or ""
    assert "done by the agent: restart-bot" in body, body  # the crash's message says what the agent did


@ALERTS
def test_hang_alerts(alert_stack: StackUnderTest) -> None:
    stack = alert_stack
    wait_until(lambda: stack.try_health().get("status") in ("healthy", "degraded"), 30, what="the bot answering")
    pid = stack.info("bot")["pid"]
    told = len(_alerts(stack, "bot heartbeat"))  # only a message about this hang counts
    os.kill(pid, signal.SIGSTOP)
    try:
        # Up to notify.inhibit_grace more when the crash test's restart resolved the parent check
        # just before: the dependents are held during a restarted bot's warm-up.
        # The hang's one message is the heartbeat's (at its deadline); the endpoint checks that
        # time out meanwhile are folded under it (tests/e2e/test_one_fault.py).
        wait_until(lambda: len(_alerts(stack, "bot heartbeat")) > told, 120, what="the hang alert")
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: (stack.try_health().get("loop_age_s") or 99) < 10, 30, what="the bot looping again")


@ALERTS
def test_daily_loss_limit_alerts_critical_and_the_agent_halts_the_bot(alert_stack: StackUnderTest) -> None:
    stack = alert_stack
    info, ex = _sdk(stack)
    # A position of 20 % of equity in a coin the bot does not trade (neither its signal nor its
    # stop-loss touches it; the bot's own positions come and go with its regimes), then a 40 % move
    # against it: a loss of about 8 % of equity, past the -5 % critical whatever the bot holds.
    coin = next(c for c in stack.settings.exchange.coins if c not in stack.settings.bot.coins)
    equity = float(info.user_state(DEV)["marginSummary"]["accountValue"])
    size = round(0.2 * equity / float(info.all_mids()[coin]), 2)
    assert ex.market_open(coin, True, size)["status"] == "ok"
    stack.exchange_admin("POST", "/admin/shock", {"coin": coin, "pct": -40})
    wait_until(lambda: _alerts(stack, "daily P&L", "CRITICAL"), 120,
               what=lambda: f"the daily-loss alert; inbox: {[m.get('title') for m in stack.inbox()][-10:]}; bot: "
                            f"{ {k: stack.try_health().get(k) for k in ('status', 'positions', 'halts')} }; agent: "
                            f"{stack.log('agent', 3000)}")
    health = wait_until(lambda: (h := stack.try_health()).get("status") == "halted" and h, 30, what="the bot halted")
    # the agent's halt (why: the check that went CRITICAL), not the bot's own limit
    assert any(h["kind"] == "control" and h["by"].startswith("agent") and "daily P&L went CRITICAL" in h["reason"]
               for h in health["halts"]), health


@ALERTS
def test_auth_failure_runs_the_emergency_response(alert_stack: StackUnderTest) -> None:
    stack = alert_stack
    stack.exchange_admin("POST", "/admin/faults", {"auth_failure": True})
    try:
        # The account's key refused: the emergency response's page is the one message (its block
        # silences the credentials alert it answers until the check is OK again: silence_until_ok).
        wait_until(lambda: [m for m in stack.inbox() if "refused the credentials" in m["title"]], 70,
                   what="the emergency page")
        stack.wait_state("bot", "STOPPED", timeout=40)
        time.sleep(5)  # and it stays stopped: nothing restarts a bot the emergency stopped
        assert stack.info("bot")["statename"] == "STOPPED", stack.log("agent", 20_000)
        assert _alerts(stack, "exchange credentials valid", "CRITICAL") == [], [m["title"] for m in stack.inbox()]
    finally:
        stack.exchange_admin("DELETE", "/admin/faults")
