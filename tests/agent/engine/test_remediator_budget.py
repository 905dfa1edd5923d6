"""The restart budget under overlapping decisions: a crash seen while the budget's last run is
still under way must not become one run more than the budget (it was admitted before that run was
counted, and ran once it ended: "run 4 of 3"). Real store and guard; the task runner is a stand-in
whose run the test holds open, so the overlap is exact, not a timing."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from agent.engine.remediation import RemediationGuard
from agent.engine.remediator import Remediator


class HeldTasks:
    """Runs that end when the test says so; counts them."""

    def __init__(self) -> None:
        self.runs = 0
        self.release = asyncio.Event()
        self.running = asyncio.Event()

    def skipped_before_running(self, *_: Any) -> None:
        return None

    async def run(self, *_: Any, **__: Any) -> Any:
        self.runs += 1
        self.running.set()
        await self.release.wait()
        return SimpleNamespace(outcomes=[SimpleNamespace(status="changed", msg="restarted", task="restart",
                                                         module=None, data={})])


class Pages:
    def __init__(self) -> None:
        self.paged: list[str] = []

    def page(self, bc: Any, reason: str) -> None:
        self.paged.append(reason)

    def page_targets(self, bc: Any) -> set[str]:
        return {"ops"}  # the hand-over's playbook told nobody: the page goes out


def world(store: Any, thread: Any, tasks: Any, pages: Any, budget: Any = None,
          recorded: Any = None, playbooks: Any = None) -> tuple[Remediator, Any]:
    """A remediator with the real store and guard over one check's ``restart`` remediation, the
    check CRITICAL; returns it and the bound check."""
    remediation = SimpleNamespace(budget=budget, cooldown=None, steps=[], target=None)
    bc = SimpleNamespace(play=SimpleNamespace(name="p", remediations={"restart": remediation}),
                         host=SimpleNamespace(name="h"), key="p/h/bot", check=SimpleNamespace(name="bot"))
    problem = SimpleNamespace(hard=SimpleNamespace(is_problem=True, name="CRITICAL"), incident_id=None)
    extra = {} if recorded is None else {"recorded": recorded}
    remediator = Remediator(config=SimpleNamespace(current=SimpleNamespace(playbooks=playbooks or {})),  # type: ignore[arg-type]
                            guard=RemediationGuard(store, thread), tasks=tasks, store=store,
                            store_thread=thread, notifications=pages,
                            status=lambda key: problem, last_observation=lambda key: None, **extra)
    return remediator, bc


def budget(most: int) -> Any:
    return SimpleNamespace(max=most, within=1800.0, then="emergency")


async def test_a_crash_during_the_last_run_of_the_budget_hands_over_instead_of_a_run_more(store, thread) -> None:
    tasks, pages = HeldTasks(), Pages()
    remediator, bc = world(store, thread, tasks, pages, budget(3))
    tasks.release.set()
    for _ in range(2):  # runs 1 and 2 of 3, ended
        await remediator._remediate(bc, "crash", {}, ["restart"])
    tasks.release.clear()
    tasks.running.clear()
    third = asyncio.create_task(remediator._remediate(bc, "crash", {}, ["restart"]))
    await tasks.running.wait()  # run 3 under way...
    fourth = asyncio.create_task(remediator._remediate(bc, "crashed again", {}, ["restart"]))
    await asyncio.sleep(0.05)  # ...when the next crash is decided on
    tasks.release.set()
    await asyncio.gather(third, fourth)
    assert tasks.runs == 3, "a run past the budget"
    assert len(pages.paged) == 1 and "budget spent: 3 of 3" in pages.paged[0]


async def test_the_alert_loop_is_woken_once_the_outcome_is_stored(store, thread) -> None:
    """A first alert waits for its remediation's outcome (notify.remediation_wait); the outcome
    wakes the alert loop once it is stored, so the alert goes out then, not at the lifecycle's next
    look (half a second later: crash -> alert was ~560 ms with the restart done in 10 ms)."""
    from agent.notify.lifecycle.remediation_notes import OUTCOME_EVENT

    tasks = HeldTasks()
    tasks.release.set()
    stored_at_wake: list[list[str]] = []

    def recorded() -> None:
        stored_at_wake.append([e.kind for e in store.recent_events(limit=20)])

    remediator, bc = world(store, thread, tasks, Pages(), recorded=recorded)
    await remediator._remediate(bc, "crash", {}, ["restart"])
    assert any(OUTCOME_EVENT in kinds for kinds in stored_at_wake), stored_at_wake


class NoChangeTasks(HeldTasks):
    """Runs whose one step changed nothing (supervisord's start of a bot already STARTING)."""

    async def run(self, *_: Any, **__: Any) -> Any:
        self.runs += 1
        return SimpleNamespace(outcomes=[SimpleNamespace(status="ok", msg="bot (BACKOFF) is already started",
                                                         task="restart")])


async def test_runs_that_changed_nothing_do_not_spend_the_budget(store, thread) -> None:
    """The budget counts restarts: a run whose steps all answered 'already started' restarted
    nothing, and five of them must not hand over to the emergency (which flattens the account)."""
    from agent.notify.lifecycle.remediation_notes import OUTCOME_EVENT, UNCHANGED

    tasks, pages = NoChangeTasks(), Pages()
    remediator, bc = world(store, thread, tasks, pages, budget(3))
    for _ in range(5):
        await remediator._remediate(bc, "crash", {}, ["restart"])
    assert tasks.runs == 5 and pages.paged == [], pages.paged
    outcomes = [e.data or {} for e in store.recent_events(kind=OUTCOME_EVENT, limit=10)]
    # the crash loop being handled (supervisord's own retry): folded by the alert lifecycle
    assert [(o.get("outcome"), o.get(UNCHANGED)) for o in outcomes] == [("nothing", True)] * 5, outcomes


async def test_a_refusal_by_a_budget_spent_before_it_says_so(store, thread) -> None:
    """The first refusal past the budget hands over (and is told); the ones after it, in the same
    window, are marked spent_before: the operator was told (the page), they are no news."""
    from agent.notify.lifecycle.remediation_notes import OUTCOME_EVENT, SPENT_BEFORE

    tasks, pages = HeldTasks(), Pages()
    tasks.release.set()
    remediator, bc = world(store, thread, tasks, pages, budget(1))
    for _ in range(3):  # run 1 of 1, the hand-over, a crash after it
        await remediator._remediate(bc, "crash", {}, ["restart"])
    outcomes = [e.data or {} for e in reversed(store.recent_events(kind=OUTCOME_EVENT, limit=10))]
    assert [o.get("outcome") for o in outcomes] == ["done", "handed-over", "refused"], outcomes
    assert [bool(o.get(SPENT_BEFORE)) for o in outcomes] == [False, False, True], outcomes
    assert len(pages.paged) == 1


class SkippedRestartTasks(HeldTasks):
    """Runs whose read-only step answered and whose restart did not apply (its ``when`` false)."""

    async def run(self, *_: Any, **__: Any) -> Any:
        self.runs += 1
        return SimpleNamespace(outcomes=[
            SimpleNamespace(status="ok", msg="bot health read", task="read the bot's health"),
            SimpleNamespace(status="skipped", msg="condition false", task="restart the crashed bot")])


async def test_a_run_whose_restart_did_not_apply_is_not_the_crash_loop_being_handled(store, thread) -> None:
    """Only a run whose every step ran and found its work done (the bot already STARTING) is the
    crash loop being handled (folded: no update). A run whose read-only step answered but whose
    restart was skipped (its ``when`` did not apply: the bot STOPPED by hand, a state the
    playbook does not restart) did nothing about the recurrence: it is told, as a run whose steps
    all did not apply is (it was folded silently, the read-only step's ``ok`` counted as the
    restart's)."""
    from agent.notify.lifecycle.remediation_notes import OUTCOME_EVENT, UNCHANGED

    tasks, pages = SkippedRestartTasks(), Pages()
    remediator, bc = world(store, thread, tasks, pages, budget(3))
    await remediator._remediate(bc, "crash", {}, ["restart"])
    outcomes = [e.data or {} for e in store.recent_events(kind=OUTCOME_EVENT, limit=10)]
    assert [(o.get("outcome"), o.get(UNCHANGED)) for o in outcomes] == [("nothing", None)], outcomes


async def test_the_hand_over_is_recorded_as_told_by_its_page_before_its_playbook_runs(store, thread) -> None:
    """An agent killed during the emergency (seconds of flatten) must leave the crash that spent
    the budget answered: before, its outcome was written after the playbook ended, and the next
    agent told that crash as an update before the resumed emergency silenced the check (a third
    message: agent-killed-mid-handover, seed 2010257165)."""
    from agent.notify.lifecycle.remediation_notes import OUTCOME_EVENT, PAGED

    tasks, pages = HeldTasks(), Pages()
    tasks.release.set()
    remediator, bc = world(store, thread, tasks, pages, budget(1),
                           playbooks={"emergency": SimpleNamespace(name="emergency", tasks=[])})
    await remediator._remediate(bc, "crash", {}, ["restart"])  # run 1 of 1
    tasks.release.clear()
    tasks.running.clear()
    handover = asyncio.create_task(remediator._remediate(bc, "crashed again", {}, ["restart"]))
    await tasks.running.wait()  # the emergency under way: an agent killed now leaves what is stored
    outcomes = [e.data or {} for e in reversed(store.recent_events(kind=OUTCOME_EVENT, limit=10))]
    tasks.release.set()
    await handover
    assert [(o.get("outcome"), bool(o.get(PAGED))) for o in outcomes] == [("done", False), ("handed-over", True)]


async def test_a_hand_over_whose_playbook_cannot_run_still_pages(store, thread, tmp_path, monkeypatch) -> None:
    """The hand-over is recorded as told by its page before its playbook runs: a playbook that
    cannot run (its target's lock held by an operator's run past the wait) must still give the
    page. Before, the LockTimeout left the hand-over recorded as paged and nobody paged (only an
    "[AGENT] internal error"); the bot dead past its budget, the emergency not run, untold."""
    import agent.engine.remediation as remediation_mod
    from agent.engine.locks import target_locks

    monkeypatch.setattr(remediation_mod, "LOCK_TIMEOUT_SECONDS", 0.3)
    tasks, pages = HeldTasks(), Pages()
    tasks.release.set()
    halt = SimpleNamespace(module="supervisor", params={"action": "stop", "program": "bot"}, name="halt")
    remediator, bc = world(store, thread, tasks, pages, budget(1),
                           playbooks={"emergency": SimpleNamespace(name="emergency", tasks=[halt])})
    remediator._guard = RemediationGuard(store, thread, lock_dir=tmp_path)
    await remediator._remediate(bc, "crash", {}, ["restart"])  # run 1 of 1
    async with target_locks(tmp_path, ["h/program:bot"], owner="operator: agent run-playbook maintenance"):
        await remediator._remediate(bc, "crashed again", {}, ["restart"])  # the budget spent: hand over
    assert tasks.runs == 1  # the emergency never ran
    assert len(pages.paged) == 1
    assert "emergency" in pages.paged[0] and "did not run" in pages.paged[0]


async def test_a_remediation_whose_program_an_operator_holds_is_told_not_taken_for_a_bug(
        store, thread, tmp_path, monkeypatch) -> None:
    """The restart waits for the program's lock, held by an operator's run: past the wait it is
    not run, and that is its outcome (told), not an exception out of the remediation (before: an
    "[AGENT] internal error ... This is a bug" page, and no outcome recorded)."""
    import agent.engine.remediation as remediation_mod
    from agent.engine.locks import target_locks
    from agent.notify.lifecycle.remediation_notes import OUTCOME_EVENT

    monkeypatch.setattr(remediation_mod, "LOCK_TIMEOUT_SECONDS", 0.3)
    tasks, pages = HeldTasks(), Pages()
    tasks.release.set()
    remediator, bc = world(store, thread, tasks, pages, budget(3))
    restart = SimpleNamespace(module="supervisor", params={"action": "restart", "program": "bot"}, name="restart")
    bc.play.remediations["restart"].steps = [restart]
    remediator._guard = RemediationGuard(store, thread, lock_dir=tmp_path)
    async with target_locks(tmp_path, ["h/program:bot"], owner="operator: agent run-playbook maintenance"):
        await remediator._remediate(bc, "crash", {}, ["restart"])
    assert tasks.runs == 0
    (outcome,) = store.recent_events(kind=OUTCOME_EVENT, limit=10)
    assert (outcome.data or {}).get("outcome") == "refused"
    assert "busy" in outcome.message and "operator: agent run-playbook maintenance" in outcome.message


async def test_a_hand_over_whose_page_reaches_nobody_is_not_recorded_as_told_by_it(store, thread) -> None:
    """The hand-over's outcome is marked told by its page (no update repeats it): a page route
    that reaches no target (its only target optional and unset: no pager on this host) tells
    nobody, so the outcome must stay for the update to the alert's targets. Before, it was
    marked paged all the same: the emergency ran (flatten) and nobody was told."""
    from agent.notify.lifecycle.remediation_notes import OUTCOME_EVENT, PAGED

    class NoPager(Pages):
        def page_targets(self, bc: Any) -> set[str]:
            return set()

    tasks, pages = HeldTasks(), NoPager()
    tasks.release.set()
    remediator, bc = world(store, thread, tasks, pages, budget(1),
                           playbooks={"emergency": SimpleNamespace(name="emergency", tasks=[])})
    await remediator._remediate(bc, "crash", {}, ["restart"])  # run 1 of 1
    await remediator._remediate(bc, "crashed again", {}, ["restart"])  # hand over
    outcomes = [e.data or {} for e in reversed(store.recent_events(kind=OUTCOME_EVENT, limit=10))]
    assert [(o.get("outcome"), bool(o.get(PAGED))) for o in outcomes] == [("done", False), ("handed-over", False)]


async def test_what_is_done_about_a_problem_is_recorded_on_its_incident_though_it_ended_meanwhile(
        store, thread) -> None:
    """supervisord's own autorestart had the crashed bot running again before the agent's start
    was decided: the check read RUNNING, the incident was resolved and the live status named no
    incident any more. The outcome was then recorded on no incident, the lifecycle found nothing
    done about it ("went away by itself") and the crash was never told (make bench, crash 1 of
    20, bot with supervisord's default autorestart)."""
    from agent.engine.evaluator import State
    from agent.notify.lifecycle.remediation_notes import OUTCOME_EVENT

    tasks = HeldTasks()
    tasks.release.set()
    remediator, bc = world(store, thread, tasks, Pages())  # its live status names no incident
    iid = store.open_incident(play="p", host="h", check="bot", state=State.CRITICAL, severity="critical",
                              opened_at=datetime.now(UTC), summary="bot EXITED")
    await remediator._remediate(bc, "crash", {}, ["restart"], decided_for=iid)
    assert [e.incident_id for e in store.recent_events(kind=OUTCOME_EVENT, limit=10)] == [iid]
