"""What a finished remediation run did, as its outcome and the operator's line
(agent.engine.remediator.run_outcome): a run whose steps all ran and changed nothing is no news.

Seen live: after an agent restart, the daily P&L still CRITICAL was decided again and its
halt-entries ran again; the halt step answered ``ok`` ("already recorded in ...": nothing
changed) and the run counted as ``done``, told as an update of an incident the operator had read
("halt-entries: halted new entries: already recorded ...")."""
from __future__ import annotations

import pytest

from agent.engine.play_runner import TaskOutcome
from agent.engine.remediator import run_outcome
from agent.notify.lifecycle.remediation_notes import QUIET_OUTCOMES, UPDATE_OUTCOMES


def step(status: str, msg: str = "") -> TaskOutcome:
    return TaskOutcome(host="local", task="halt new entries", module="bot", status=status, msg=msg)


@pytest.mark.parametrize("statuses, outcome, told", [
    (["ok"], "nothing", False),  # the halt already recorded: nothing changed
    (["ok", "skipped"], "nothing", False),
    (["changed"], "done", True),
    (["ok", "changed"], "done", True),
    (["ignored"], "failed", True),  # every step failed, ignore_errors or not: nothing was done
    (["ignored", "changed"], "done", True),  # the next step acted: done, the failed one said as such
    (["ok", "failed"], "failed", True),
    (["skipped"], "nothing", False),
])
def test_a_run_that_changed_nothing_is_no_news(statuses: list[str], outcome: str, told: bool) -> None:
    got, line = run_outcome("halt-entries", [step(s, f"step {i}: {s}") for i, s in enumerate(statuses)], 0.2)
    assert got == outcome, line
    assert (got in UPDATE_OUTCOMES) is told and (got in QUIET_OUTCOMES) is not told, line
    assert line.startswith("halt-entries")


def test_a_step_that_failed_with_ignore_errors_is_said_as_failed() -> None:
    """The line the operator reads after "done by the agent" or "failed" names an ignored step's
    failure as a failure: it read as if the error text were what the agent did."""
    got, line = run_outcome("restart", [step("ignored", "connection refused"), step("changed", "started bot")], 0.2)
    assert got == "done"
    assert "halt new entries failed (ignored): connection refused" in line and "started bot" in line, line
    got, line = run_outcome("restart", [step("ignored", "connection refused")], 0.2)
    assert got == "failed" and line.startswith("restart failed after") and "errors ignored" in line, line


@pytest.mark.parametrize("statuses", [["ok", "ignored"], ["ignored", "ok"], ["ok", "ignored", "skipped"]])
def test_a_run_whose_only_acting_step_failed_under_ignore_errors_is_failed(statuses: list[str]) -> None:
    """A read-only step that answered (``ok``: the bot's state read, a halt already recorded) beside
    the restart that failed under ``ignore_errors``: nothing was done, as with the ignored step
    alone. It was "done", an update paced like a restart, and a recurrence answered by it folded
    into the crash loop "being handled" (told by nobody, the restart having failed)."""
    got, line = run_outcome("restart", [step(s, f"step {i}: {s}") for i, s in enumerate(statuses)], 0.2)
    assert got == "failed" and "errors ignored" in line, line
    assert got in UPDATE_OUTCOMES
