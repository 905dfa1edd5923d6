"""End to end, the stack as ``make run`` brings it up (the bot on its own API wallet): `bot drill revoke
bot` makes the exchange refuse every signed request of the bot (``User or API Wallet 0x... does not
exist.``). The bot goes degraded naming the refusal on /health, logs it at ERROR, and the shipped
playbooks send one critical alert, `bot exchange access`, whose body quotes the exchange's refusal (the
API-error and log-error checks fold into it); `bot drill approve bot` resolves it."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from bot import drill
from tests.support.account import account, sdk, stop_cover
from tests.support.stack import REPO, running_stack, wait_until  # noqa: F401 - running_stack is a fixture

pytestmark = pytest.mark.slow
CHECK = "bot exchange access"


def quick(name: str, every: str = "1s") -> str:
    doc = yaml.safe_load((REPO / "playbooks" / f"{name}.yaml").read_text())
    doc["schedule"] = {"every": every}
    for check in doc["checks"]:
        check["every"] = every
        check.pop("for", None)
    if name == "trading-risk":
        doc["vars"]["api_errors_warning_per_min"] = 0  # the first refused order would be a warning
    return yaml.safe_dump(doc, sort_keys=False)


def quick_stack(running_stack: Any, candle_interval: str) -> Any:
    st = running_stack(playbooks={"bot-health": quick("bot-health"), "trading-risk": quick("trading-risk"),
                                  "exchange": quick("exchange", "2s"),
                                  "emergency": (REPO / "playbooks" / "emergency.yaml").read_text()},
                       settings={"bot": {"candle_interval": candle_interval, "signer_check_s": 2}},
                       inventory={"notify": {"group_wait": 0.5, "group_interval": 1}})
    st.wait_running(timeout=60)
    return st


@pytest.fixture
def stack(running_stack: Any) -> Iterator[Any]:
    yield quick_stack(running_stack, "1m")


@pytest.fixture
def hourly_stack(running_stack: Any) -> Iterator[Any]:
    """Hourly candles: the signal does not close the bot's positions in the minutes of a test (on
    1-minute candles a regime change closed BTC mid-test, and a test about its stop had none)."""
    yield quick_stack(running_stack, "1h")


def about(stack: Any, since: int) -> list[dict[str, Any]]:
    return [m for m in stack.inbox()[since:]
            if CHECK in m.get("title", "") + (m.get("message") or m.get("body") or "")]


def test_a_revoked_bot_wallet_is_one_alert_naming_the_refusal(stack: Any) -> None:
    wait_until(lambda: stack.try_health().get("status") == "healthy", 90, what="the bot healthy")
    wait_until(lambda: [s for k, s in stack.check_states().items() if k.endswith(f"/{CHECK}")
                        and s.hard_state.name == "OK"], 60, what="the access check OK")
    wait_until(stack.outbox_idle, 60, what="the start-up messages delivered")
    since = len(stack.inbox())

    revoked = drill.api_wallet(stack.settings, "bot", "revoke")
    health = wait_until(lambda: (h := stack.try_health()).get("exchange_refusal") and h, 60,
                        what="the bot reporting the refusal")
    # degraded; or halted when the refusal met a stop-loss or a close the bot was sending at that
    # moment (a protective order refused for a revoked wallet halts at once, naming the refusal)
    assert health["status"] == "degraded" or (
        health["status"] == "halted" and "refused" in (health.get("halted_reason") or "")), health
    assert any("exchange refuses the bot's requests" in r for r in health["degraded_reasons"]), health
    alert = wait_until(lambda: about(stack, since), 60, what="the alert")
    text = alert[0].get("title", "") + (alert[0].get("message") or "")
    assert "CRITICAL" in text and "suppressed while this lasts" in text and "bot API error rate" in text, text
    # the operator reads the refusal (what /health's exchange_refusal says), not only that the
    # health endpoint answered: the exchange's words on a signed request, or its answer to the
    # bot's own look at its wallet (every bot.signer_check_s: 2 s here), whichever the bot met first
    assert ("User or API Wallet 0x" in text and "does not exist." in text) or \
        ("is not approved for account" in text and "userRole: missing" in text), text
    lines = [json.loads(line) for line in stack.log("bot", tail=200_000).splitlines() if line.startswith("{")]
    assert [r for r in lines if r.get("level") == "error" and revoked["revoked"] != r.get("error")
            and ("does not exist" in str(r.get("error")) or "not approved" in str(r.get("error")))], \
        "no ERROR line names the refusal"
    # the refusal keeps going: still one message, nothing else (API errors, log errors fold into it)
    wait_until(stack.outbox_idle, 30, what="the outbox idle")
    time.sleep(6)
    messages = [m.get("title", "") for m in stack.inbox()[since:]]
    assert len(about(stack, since)) == 1 and len(messages) == 1, (messages, stack.log("supervisord", 3000))

    drill.api_wallet(stack.settings, "bot", "approve")
    wait_until(lambda: any("RESOLVED" in m.get("title", "") for m in about(stack, since)), 90,
               what="the resolve after approving the wallet again")
    assert revoked["revoked"] == stack.settings.bot.api_wallet_name


def test_a_revoked_guard_wallet_is_one_alert_saying_to_approve_a_new_one_and_halts_nothing(stack: Any) -> None:
    """The agent's own API wallet revoked: the credentials check is refused in the same words as
    a refused key, but the account and the bot are fine. One critical alert says so and what to do
    (approve a new API wallet), no emergency halts, flattens or stops the healthy bot; approving
    the wallet again resolves it."""
    check = "exchange credentials valid"
    wait_until(lambda: stack.try_health().get("status") == "healthy", 90, what="the bot healthy")
    wait_until(lambda: [s for k, s in stack.check_states().items() if k.endswith(f"/{check}")
                        and s.hard_state.name == "OK"], 60, what="the credentials check OK")
    wait_until(stack.outbox_idle, 60, what="the start-up messages delivered")
    since = len(stack.inbox())

    drill.api_wallet(stack.settings, "agent", "revoke")
    alert = wait_until(lambda: [m for m in stack.inbox()[since:] if check in m.get("title", "")], 60,
                       what="the credentials alert")
    text = alert[0].get("title", "") + (alert[0].get("message") or "")
    assert "CRITICAL" in text and "no longer approved" in text and "approve a new API wallet" in text, text
    assert "does not exist." in text, text
    wait_until(stack.outbox_idle, 30, what="the outbox idle")
    time.sleep(6)  # a wrong emergency would have halted and stopped the bot by now (checks every 2 s)
    assert stack.info("bot")["statename"] == "RUNNING"
    assert stack.try_health().get("status") == "healthy"
    titles = [m.get("title", "") for m in stack.inbox()[since:]]
    assert not [t for t in titles if "EMERGENCY" in t or "refused the credentials" in t], titles
    assert len(titles) == 1, (titles, stack.log("supervisord", 3000))

    # Breaker x4 F1: the bot's own wallet revoked while that alert is open is the bot's problem,
    # told (it was held under the agent's wallet alert until that one resolved).
    drill.api_wallet(stack.settings, "bot", "revoke")
    wait_until(lambda: [m for m in stack.inbox()[since:] if CHECK in m.get("title", "")], 90,
               what="the bot's access alert while the agent's wallet alert is open")
    drill.api_wallet(stack.settings, "bot", "approve")

    drill.api_wallet(stack.settings, "agent", "approve")
    wait_until(lambda: any("RESOLVED" in m.get("title", "") and check in m.get("title", "")
                           for m in stack.inbox()[since:]), 90, what="the resolve after approving the wallet again")


def test_a_position_losing_its_stop_while_the_access_alert_stands_is_told_once_and_not_after_it_has_one(
        hourly_stack: Any) -> None:
    """Issue 16 breaker: the bot's wallet revoked (one access alert, every position protected), then
    a stop-loss cancelled by hand: the bot cannot place it again, its halt (NO STOP-LOSS) is held
    under the access alert, and the access alert's value grows "NO STOP-LOSS on: BTC" with no change
    of state: told once as an update of the access alert. The wallet approved again, the stop
    placed and its halt ended: the operator's halt (the warning told before) gets no update about
    that ended halt afterwards."""
    from tests.e2e.test_protection import agent

    stack = hourly_stack
    info, ex = sdk(stack)
    wait_until(lambda: stack.try_health().get("status") == "healthy", 90, what="the bot healthy")
    wait_until(lambda: "BTC" in stop_cover(info), 90, what="the bot holding BTC with its stop")
    halted = agent(stack, "halt", "--reason", "maintenance")
    assert halted.returncode == 0, halted.stdout + halted.stderr
    wait_until(lambda: [m for m in stack.inbox() if "[WARNING] bot not halted" in m.get("title", "")], 60,
               what="the operator's halt told")
    wait_until(stack.outbox_idle, 60, what="the start-up messages delivered")
    since = len(stack.inbox())

    drill.api_wallet(stack.settings, "bot", "revoke")
    wait_until(lambda: about(stack, since), 60, what="the access alert")
    wait_until(stack.outbox_idle, 30, what="the outbox idle")
    for o in account(info)[1]:
        if o["coin"] == "BTC" and o["isTrigger"]:
            ex.cancel("BTC", o["oid"])  # by hand: the bot cannot place it again (its wallet revoked)
    wait_until(lambda: "BTC" in stack.try_health().get("unprotected", []), 60, what="BTC without a stop")

    def updates() -> list[str]:
        return [m.get("title", "") for m in about(stack, since) if m.get("title", "").startswith("[UPDATE]")]

    wait_until(updates, 60, what=lambda: f"the update; inbox: {[m.get('title') for m in stack.inbox()[since:]]}")
    time.sleep(5)  # checks every second, group_interval 1 s: nothing more about the same position
    assert updates() == [f"[UPDATE] {CHECK} on local: a new cause while CRITICAL: NO STOP-LOSS on BTC"], \
        [m.get("title") for m in stack.inbox()[since:]]

    drill.api_wallet(stack.settings, "bot", "approve")
    wait_until(lambda: any("RESOLVED" in m.get("title", "") for m in about(stack, since)), 90,
               what="the access alert's resolve")
    wait_until(lambda: "BTC" in stop_cover(info) and not any(
        h["reason"].startswith("placing the stop-loss of ") for h in stack.try_health().get("halts", [])), 90,
        what=lambda: f"the stop placed again and its halt ended; halts {stack.try_health().get('halts')}; "
                     f"bot log: {stack.log('bot', 6000)}")
    wait_until(stack.outbox_idle, 30, what="the outbox idle")
    time.sleep(5)
    stale = [m.get("title", "") for m in stack.inbox()[since:]
             if "bot not halted" in m.get("title", "") and "NO STOP-LOSS" in m.get("title", "") + body(m)]
    assert stale == [], stale


def body(message: dict[str, Any]) -> str:
    return str(message.get("message") or message.get("body") or "")
