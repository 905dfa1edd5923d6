"""The fault suite's accounting of what a receiver got (tests/faults/scenarios.py), on the titles
and bodies the agent sends (agent/notify): no stack needed."""
from __future__ import annotations

from tests.faults.scenarios import (
    ALERT,
    FIXED,
    FOLLOW_UP,
    RESOLVE,
    Expect,
    Message,
    account,
    dead_bot_told,
    kind,
    out_of_order,
)


def _m(title: str, incident: int) -> Message:
    return Message("json", title, f"Incident #{incident}. ...")


def test_titles_are_classified_as_the_agent_means_them() -> None:
    assert kind("[CRITICAL] bot process on local") == ALERT
    assert kind("[UNKNOWN] bot websocket on local: connection refused") == ALERT
    assert kind("[RESOLVED] bot process on local after 3s") == RESOLVE
    assert kind("[CRITICAL, now OK] bot process on local") == FIXED
    assert kind("[WARNING, now OK] bot not halted on local") == FIXED
    assert kind("[UPDATE] bot process on local: restart-bot not run: cooling down until 14:02:11 UTC") == FOLLOW_UP


def test_a_problem_fixed_before_its_alert_is_one_message_alert_and_resolve_in_one() -> None:
    # crash-after-running, seed 533498460: the first crash fixed before its alert went out, the
    # second alerted and resolved.
    got = [_m("[CRITICAL, now OK] bot process on local", 1), _m("[CRITICAL] bot process on local", 2),
           _m("[RESOLVED] bot process on local after 3s", 2)]
    assert account(got, Expect(faults=2)) == (2, 0, [])
    # alone, it is the alert and its resolve
    assert account(got[:1], Expect(faults=1)) == (2, 0, [])
    assert out_of_order(got) == 0


def test_an_alert_never_resolved_is_still_lost_and_a_resolve_still_needed() -> None:
    got = [_m("[CRITICAL] bot process on local", 1), _m("[UNKNOWN] exchange credentials valid on local: timed out", 1 + 1)]
    needed, lost, notes = account(got, Expect(faults=1))
    assert (needed, lost) == (2, 2), notes
    assert notes == ["no resolve of 'bot process'",
                     "alerted, never resolved: ['[UNKNOWN] exchange credentials valid on local: timed out']"]
    # an update is about an incident already told: not one more alert left open
    assert account([_m("[CRITICAL] bot process on local", 1), _m("[UPDATE] bot process on local: restarted", 1),
                    _m("[RESOLVED] bot process on local after 9s", 1)], Expect(faults=1)) == (2, 0, [])


def test_now_ok_after_a_newer_alert_of_the_same_check_is_out_of_order() -> None:
    got = [_m("[CRITICAL] bot process on local", 2), _m("[CRITICAL, now OK] bot process on local", 1)]
    assert out_of_order(got) == 1
    assert out_of_order([_m("[UNKNOWN] bot websocket on local: connection refused", 2),
                         _m("[RESOLVED] bot websocket on local after 4s", 1)]) == 1


def test_a_dead_bot_was_told_only_if_the_last_word_about_it_is_an_alert_or_a_page() -> None:
    assert dead_bot_told([_m("[CRITICAL] bot process on local", 1)])
    assert not dead_bot_told([_m("[CRITICAL] bot process on local", 1), _m("[CRITICAL, now OK] bot process on local", 2)])
    assert dead_bot_told([_m("[CRITICAL] bot process on local", 1), _m("[UPDATE] bot process on local: refused", 1)])
    assert dead_bot_told([Message("json", "[PAGE] bot-health on local: a human is needed", "")])
    assert not dead_bot_told([])
