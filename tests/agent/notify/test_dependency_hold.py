"""depends_on when told: the hold rules as a table (agent.notify.lifecycle.dependency_hold), and the failure
classes an UNKNOWN is told with (agent.core.causes)."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from agent.core.causes import failure_cause, headline
from agent.core.states import State
from agent.engine.dependencies import Evidence
from agent.store import IncidentRecord

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
CHILD, PARENT = "p/h/child", "p/h/parent"


def _inc(key: str, state: State, *, opened: datetime = T0, resolved: datetime | None = None, iid: int = 1
         ) -> IncidentRecord:
    fields = IncidentRecord.__dataclass_fields__
    base = dict.fromkeys(fields)
    base.update(id=iid, key=key, play="p", host="h", check=key.rsplit("/", 1)[1], state=state, severity="warning",
                opened_at=opened, resolved_at=resolved, summary="", escalation_level=0)
    return IncidentRecord(**{k: v for k, v in base.items() if k in fields})


def s(n: float) -> datetime:
    return T0 + timedelta(seconds=n)


def _hold(child: IncidentRecord, evidence: dict[str, Evidence], *, open_parent: IncidentRecord | None = None,
          now: float = 5, window: float = 0.0) -> str | None:
    from agent.notify.lifecycle.dependency_hold import dependency_hold

    held = dependency_hold(child, {"parent": PARENT}, open_by_key={PARENT: open_parent} if open_parent else {},
                           evidence=evidence.get, hold=90, now=s(now), window=window)
    return held.reason if held else None


FAILING = Evidence(problem_since=s(-4), problem_at=s(-1), state=State.UNKNOWN)


@pytest.mark.parametrize("case, parent, now, expect", [
    ("parent never ran", None, 5, "waiting for parent"),
    ("parent last healthy before the child failed (a hung bot's last beat)", Evidence(healthy_at=s(-10)), 5,
     "waiting for parent"),
    ("parent seen healthy after: the child is told", Evidence(healthy_at=s(-2)), 5, None),
    ("the hold ends at dependency_hold", Evidence(healthy_at=s(-10)), 91, None),
    ("parent recovered after the child's last reading: stale", Evidence(healthy_at=s(0), recovered_at=s(0)), 5,
     "waiting for a reading taken after parent recovered"),
])
def test_a_dependent_waits_for_evidence_about_its_parent(case: str, parent: Evidence | None, now: float,
                                                        expect: str | None) -> None:
    evidence = {CHILD: FAILING, **({PARENT: parent} if parent else {})}
    reason = _hold(_inc(CHILD, State.UNKNOWN), evidence, now=now)
    assert (reason or None) == expect or (expect and reason and reason.startswith(expect)), (case, reason)


def test_an_open_parent_folds_every_state_but_a_degraded_one_never_folds_a_real_critical() -> None:
    ev = {CHILD: FAILING, PARENT: Evidence(healthy_at=s(-10))}
    down = _inc(PARENT, State.UNKNOWN, iid=7)
    assert _hold(_inc(CHILD, State.CRITICAL), ev, open_parent=down) == "inhibited by parent (#7)"
    slow = replace(down, state=State.WARNING)
    assert _hold(_inc(CHILD, State.UNKNOWN), ev, open_parent=slow) == "inhibited by parent (#7)"
    # margin usage read at 85 % is not explained by a slow API: only the evidence hold applies, bounded
    assert _hold(_inc(CHILD, State.CRITICAL), ev, open_parent=slow, now=91) is None


def test_a_windowed_warning_waits_until_its_window_no_longer_covers_the_parents_fault() -> None:
    ev = {CHILD: replace(FAILING, problem_at=s(3)), PARENT: Evidence(healthy_at=s(2), recovered_at=s(2))}
    assert _hold(_inc(CHILD, State.WARNING), ev, now=100, window=300).startswith("its window still covers")
    assert _hold(_inc(CHILD, State.WARNING), ev, now=303, window=300) is None
    assert _hold(_inc(CHILD, State.CRITICAL), ev, now=100, window=300) is None  # a real CRITICAL: told


def test_a_count_whose_every_event_came_during_the_parents_fault_is_the_parents_whatever_its_state() -> None:
    """"bot errors in its log" counts ERROR lines over the last hour; an exchange outage makes the
    bot log one per failed request, so once the exchange recovered the count stayed past its
    CRITICAL threshold for the hour, and a CRITICAL is not held by the window rule (a real
    CRITICAL is told): one fault, two messages. Dated by its newest counted event
    (``evidence_at``): all before the parent recovered (or within seconds of it) is the parent's
    fault, in any state and for as long as it lasts; a newer event is its own problem."""
    from agent.engine.dependencies import EvidenceLog

    log = EvidenceLog()
    recovered = Evidence(healthy_at=s(95), recovered_at=s(2))  # recovered at 2 s, healthy since
    during = log.record(CHILD, State.CRITICAL, s(30), evidence_at=s(-5).timestamp())  # counted in the outage
    for state in (State.CRITICAL, State.WARNING):
        ev = {CHILD: during, PARENT: recovered}
        reason = _hold(_inc(CHILD, state), ev, now=100, window=3600)
        assert reason is not None and reason.startswith("what it counts happened before parent recovered"), reason
    ending = log.record(CHILD, State.CRITICAL, s(60), evidence_at=s(9).timestamp())  # the last, as it came back
    assert _hold(_inc(CHILD, State.CRITICAL), {CHILD: ending, PARENT: recovered}, now=100, window=3600) is not None
    after = log.record(CHILD, State.CRITICAL, s(90), evidence_at=s(80).timestamp())  # a new error: its own
    assert _hold(_inc(CHILD, State.CRITICAL), {CHILD: after, PARENT: recovered}, now=100, window=3600) is None
    assert log.record(CHILD, State.OK, s(120)).newest_event is None


def test_no_reading_this_run_means_nothing_to_wait_for() -> None:
    assert _hold(_inc(CHILD, State.UNKNOWN), {}) is None


@pytest.mark.parametrize("error, cause", [
    ("GET http://127.0.0.1:9/health timed out after 2s", "timed out"),
    ("timed out after 8s", "timed out"),
    ("positions: exchange http://127.0.0.1:1 rate limited the request (HTTP 429)", "HTTP 429 rate limited"),
    ("equity: exchange http://127.0.0.1:1 answered HTTP 503", "HTTP 503 server error"),
    # the rate-limit check's metric names its errors: a 500 it reads is a 500 (exchange-5xx, seed 1307769790)
    ("rate_limit: exchange http://127.0.0.1:1 answered HTTP 500", "HTTP 500 server error"),
    ("rate_limit: exchange http://127.0.0.1:1 timed out after 8s", "timed out"),
    ("GET http://x failed: rate-limited", "HTTP 429 rate limited"),
    ("GET http://127.0.0.1:9/metrics failed: HTTP 500", "HTTP 500 server error"),
    ("GET http://127.0.0.1:9/health failed: Connection refused", "connection refused"),
    ("api_latency: exchange http://127.0.0.1:1 is unreachable (Server disconnected)", "connection failed"),
    ("auth: exchange http://x refused with HTTP 401: nope", "HTTP 401 refused"),
    ("metric 'x' not found at http://127.0.0.1:9/metrics", "check error"),
])
def test_every_failure_is_told_with_its_class(error: str, cause: str) -> None:
    assert failure_cause(error) == cause
    assert headline("UNKNOWN", f"{cause}: {error}") == cause


def test_titles_name_a_hang_and_nothing_else_a_summary_happens_to_start_with() -> None:
    assert headline("CRITICAL", "hung: no heartbeat for 61s (deadline 60s)") == "hung"
    assert headline("CRITICAL", "bot EXITED: Dec 06 02:03 PM") is None
    assert headline("UNKNOWN", "GET http://x -> 200") is None


def test_a_parent_failing_itself_holds_its_dependent_past_the_bound() -> None:
    # The bound is for a parent not yet seen healthy; one whose own latest reading fails is the
    # cause (its alert, once hard, is the message), however long that takes (a loaded machine).
    down = Evidence(problem_since=s(-3), problem_at=s(400), state=State.UNKNOWN)
    for child in (State.UNKNOWN, State.CRITICAL):
        assert _hold(_inc(CHILD, child), {CHILD: FAILING, PARENT: down}, now=500) == "waiting for parent: failing itself"
    # a degraded parent (WARNING) never explains a CRITICAL its dependent read: bounded as before
    slow = replace(down, state=State.WARNING)
    assert _hold(_inc(CHILD, State.UNKNOWN), {CHILD: FAILING, PARENT: slow}, now=500) == \
        "waiting for parent: failing itself"
    assert _hold(_inc(CHILD, State.CRITICAL), {CHILD: FAILING, PARENT: slow}, now=500) is None
    # healthy again: the evidence rules apply (seen healthy after the child failed: told)
    assert _hold(_inc(CHILD, State.UNKNOWN), {CHILD: FAILING, PARENT: Evidence(healthy_at=s(-2))}, now=500) is None


def test_a_chain_folds_whole_and_survives_an_agent_restart(tmp_path) -> None:
    """agent-killed-mid-remediation, seed 3238103997: the websocket check (depends on the bot's
    /health, which depends on the bot process) was told on its own next to the bot process while
    /health had no incident yet, and after an agent restart nothing of this run was known about
    it. The bot process's open incident (stored) holds the whole chain."""
    from agent.modules.registry import default_registry
    from agent.notify.lifecycle.checks import CheckCatalog
    from agent.notify.lifecycle.inhibition import Inhibition, Parents
    from agent.notify.lifecycle.settings import Deadlines
    from agent.playbook import load_config
    from tests.support.stack import REPO

    res = load_config(REPO / "inventory.yaml", [REPO / "playbooks"], default_registry(), env={})
    assert not res.diagnostics, [str(d) for d in res.diagnostics]
    by_key = {b.key: b for b in res.config.bound_checks}
    inhibition = Inhibition(CheckCatalog(lambda: by_key))  # no evidence: the agent just restarted
    root = _inc("bot-health/local/bot process", State.CRITICAL, iid=1)
    for check, reason in (("bot websocket", "inhibited by bot process (through bot health endpoint) (#1)"),
                          ("bot not halted", "inhibited by bot process (through bot health endpoint) (#1)"),
                          ("bot loop age", "inhibited by bot process (through bot health endpoint) (#1)")):
        child = _inc(f"bot-health/local/{check}", State.UNKNOWN, iid=2)
        child = replace(child, host="local", play="bot-health")
        root_local = replace(root, host="local", play="bot-health")
        assert inhibition.inhibited_by(child, Parents(timedelta(0), {root_local.key: root_local}), 90, Deadlines(s(5))) == reason, check
    # a check of another chain is not held by it
    creds = replace(_inc("exchange/local/exchange credentials valid", State.UNKNOWN, iid=3), host="local",
                    play="exchange")
    assert inhibition.inhibited_by(creds, Parents(timedelta(0), {root.key: root}), 90, Deadlines(s(5))) is None


def test_a_parent_that_failed_once_without_turning_hard_has_recovered_all_the_same() -> None:
    """crash-in-cooldown, seed 538304375: the bot's websocket check (one failure is hard) read the
    dead bot's /health as 'connection failed'; its parent /health (two failures to turn hard)
    failed once, then read the restarted bot healthy. Its hard state never changed, yet the
    websocket's reading was stale: told on its own, it was a second message for one crash."""
    from agent.engine.dependencies import EvidenceLog

    log = EvidenceLog()
    log.record(PARENT, State.OK, s(-20))
    child = log.record(CHILD, State.UNKNOWN, s(-1))            # read while the bot was down
    log.record(PARENT, State.CRITICAL, s(0))                   # soft: after: 2
    parent = log.record(PARENT, State.OK, s(2))                # the restarted bot answers
    assert parent.back_at == s(2) and parent.recovered_at is None  # back, though never hard
    ev = {CHILD: child, PARENT: parent}
    assert _hold(_inc(CHILD, State.UNKNOWN), ev).startswith("waiting for a reading taken after parent recovered")
    # a reading after the recovery that still fails is the dependent's own problem: told
    ev[CHILD] = log.record(CHILD, State.UNKNOWN, s(3))
    assert _hold(_inc(CHILD, State.UNKNOWN), ev) is None
    # a windowed WARNING (errors over the last hour) is not held for its window by a blip that
    # never turned hard: that hold is for a parent's real (hard) fault
    ev[CHILD] = replace(child, problem_at=s(3))
    assert _hold(_inc(CHILD, State.WARNING), ev, now=100, window=3600) is None
    # healthy all along: no recovery to speak of
    log.record("p/h/other", State.OK, s(0))
    assert log.record("p/h/other", State.OK, s(1)).back_at is None


@pytest.mark.parametrize("case, parent_hard, parent, expect", [
    ("nothing known of the parent: told", None, None, None),
    ("the parent is hard down", State.CRITICAL, Evidence(healthy_at=s(-10)), "parent is CRITICAL"),
    ("the parent's latest reading fails (soft)", State.OK, Evidence(state=State.UNKNOWN, problem_since=s(0),
                                                                    problem_at=s(0)),
     "parent is failing itself (UNKNOWN)"),
    ("the parent recovered after the child's reading", State.OK, Evidence(healthy_at=s(0), recovered_at=s(0)),
     "parent recovered"),
    ("the parent back (never hard) after the child's reading", State.OK, Evidence(healthy_at=s(0), back_at=s(0)),
     "parent recovered"),
    ("the parent healthy throughout: told", State.OK, Evidence(healthy_at=s(0)), None),
    ("a degraded parent does not explain a CRITICAL", State.WARNING, Evidence(state=State.WARNING), None),
])
def test_without_the_store_a_dependent_is_folded_by_the_same_rule(case, parent_hard, parent, expect) -> None:
    from agent.notify.lifecycle.dependency_hold import folded_without_store

    hard = {PARENT: parent_hard} if parent_hard else {}
    ev = {CHILD: FAILING, **({PARENT: parent} if parent else {})}
    reason = folded_without_store(State.CRITICAL, FAILING, [("parent", PARENT)], hard=hard.get, evidence=ev.get)
    assert (reason is None) if expect is None else (reason or "").startswith(expect), (case, reason)


@pytest.mark.parametrize("case, child_cause, parent, now, expect", [
    ("the parent failed the same way before, and reads healthy now: the same fault", "HTTP 500 server error",
     Evidence(healthy_at=s(-2), failed_at=s(-3), cause="HTTP 500 server error"), 5,
     "waiting for parent: it failed the same way (HTTP 500 server error)"),
    ("the parent failed the same way after the child's problem began", "HTTP 429 rate limited",
     Evidence(healthy_at=s(2), failed_at=s(0), cause="HTTP 429 rate limited", back_at=s(2)), 5,
     "waiting for parent: it failed the same way (HTTP 429 rate limited)"),
    ("the same fault is held no longer than dependency_hold", "HTTP 500 server error",
     Evidence(healthy_at=s(-2), failed_at=s(-3), cause="HTTP 500 server error"), 91, None),
    ("the parent failed otherwise: the child's own problem", "HTTP 500 server error",
     Evidence(healthy_at=s(0), failed_at=s(-3), cause="timed out"), 5, None),
    ("the parent's failure long before the child's problem (past the hold): told", "HTTP 500 server error",
     Evidence(healthy_at=s(0), failed_at=s(-200), cause="HTTP 500 server error"), 5, None),
    ("a check error is each check's own", "check error",
     Evidence(healthy_at=s(-2), failed_at=s(-3), cause="check error"), 5, None),
    ("the parent healthy, not read since the child's latest failure", "HTTP 500 server error",
     Evidence(healthy_at=s(-2)), 5, "waiting for parent: not read since this read HTTP 500 server error again"),
    ("... nor past the bound", "HTTP 500 server error", Evidence(healthy_at=s(-2)), 91, None),
    ("the parent healthy, read after the child's latest failure: the child's own", "HTTP 500 server error",
     Evidence(healthy_at=s(0)), 5, None),
])
def test_a_dependent_that_cannot_read_for_its_parents_reason_waits_for_it(case: str, child_cause: str,
                                                                         parent: Evidence, now: float,
                                                                         expect: str | None) -> None:
    """exchange-5xx, seed 3097992757: the credentials check read 'HTTP 500' and was told on its own
    while its parent, the latency check, read healthy between its own HTTP 500s; the parent's
    alert followed: two messages for one fault. The failure's cause is the equal label."""
    child = replace(FAILING, cause=child_cause, failed_at=s(-1), failures=2)
    reason = _hold(_inc(CHILD, State.UNKNOWN), {CHILD: child, PARENT: parent}, now=now)
    assert (reason is None) if expect is None else (reason or "").startswith(expect), (case, reason)
    if reason is None and child_cause != "check error":
        # one failing reading of the child, its parent read healthy once: not yet told (its retry decides)
        once = _hold(_inc(CHILD, State.UNKNOWN), {CHILD: replace(child, failures=1), PARENT: parent}, now=now)
        assert (once or "").startswith("waiting for a second reading") if now < 90 else once is None, (case, once)
    # a CRITICAL the dependent read is its own (a refused key), whatever the parent's errors
    critical = _hold(_inc(CHILD, State.CRITICAL), {CHILD: replace(child, state=State.CRITICAL), PARENT: parent},
                     now=now)
    assert "failed the same way" not in (critical or ""), (case, critical)


def test_the_evidence_keeps_the_cause_of_the_latest_failure() -> None:
    from agent.engine.dependencies import EvidenceLog

    log = EvidenceLog()
    log.record(PARENT, State.UNKNOWN, s(0), error="api_latency: exchange http://x answered HTTP 500")
    ev = log.record(PARENT, State.OK, s(1))
    assert (ev.failed_at, ev.cause, ev.back_at, ev.failures) == (s(0), "HTTP 500 server error", s(1), 0)
    log.record(PARENT, State.UNKNOWN, s(1.5), error="HTTP 500")
    assert log.record(PARENT, State.UNKNOWN, s(1.8), error="HTTP 500").failures == 2
    assert log.record(PARENT, State.CRITICAL, s(2)).cause is None  # a value read: no failure class


def test_a_count_whose_events_came_before_the_parents_fault_began_is_its_own() -> None:
    """The rule above holds a count whose events all came before its parent *recovered*; events
    that came before the parent's fault even *began* are not the parent's. The bot logged a burst
    of errors of its own (its store failing, orders refused) and went quiet; a minute later the
    exchange latency check had a blip of ten seconds; the log check, read after that blip, counted
    the burst CRITICAL: held for the whole window, never told (the count then fell back to OK)."""
    from agent.engine.dependencies import EvidenceLog

    log = EvidenceLog()
    log.record(PARENT, State.OK, s(-100))
    log.record(PARENT, State.OK, s(30))  # healthy while the bot logged its burst
    log.record(PARENT, State.WARNING, s(40))  # the blip
    log.record(PARENT, State.OK, s(50), recovered=True)
    parent = log.record(PARENT, State.OK, s(65))  # and healthy since
    burst = log.record(CHILD, State.CRITICAL, s(60), evidence_at=s(20).timestamp(), evidence_since=s(0).timestamp())
    for now in (70, 3000):  # it was held for the whole window (3000: the hold's bound long past)
        assert _hold(_inc(CHILD, State.CRITICAL), {CHILD: burst, PARENT: parent}, now=now, window=3600) is None
    # a burst that began once the parent last read healthy before its fault is still the parent's
    during = log.record(CHILD, State.CRITICAL, s(70), evidence_at=s(45).timestamp(), evidence_since=s(35).timestamp())
    reason = _hold(_inc(CHILD, State.CRITICAL), {CHILD: during, PARENT: parent}, now=3000, window=3600)
    assert reason is not None and reason.startswith("what it counts happened before parent recovered"), reason
