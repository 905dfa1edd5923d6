"""A new cause of a standing problem is told once (issue 16 follow-up).

A check's ``occurrence`` names the causes of its problem (the shipped ``bot not halted``: the
reason of every halt in force). While the problem stands in the same state, a result naming a
cause the previous one did not is a *recurrence*: stored with the incident, told as one update to
the targets the alert went to (paced by ``group_interval``), whether or not the check has a
remediation. A cause that ends while another stays is no news; all ended is the resolve; an
agent restarted in between tells nothing twice. Driven through the real result pipeline, store,
alert lifecycle and outbox rows (no delivery: the rows are what would be sent).
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.core.states import State
from agent.engine.evaluator import cause_texts, classify
from agent.engine.store_thread import StoreThread
from agent.modules.base import CheckResult
from agent.notify.lifecycle.remediation_notes import (
    FOLD_AT_MOST,
    OUTCOME_EVENT,
    RECURRENCE_EVENT,
    SPENT_BEFORE,
    UNCHANGED,
)
from tests.agent.engine.pipeline_world import PipelineWorld

KEY = "p/local/bot not halted"
PLAY = """
version: 1
name: p
hosts: local
schedule: {every: 10s}
checks:
  - name: bot not halted
    http: {url: "http://127.0.0.1:9/health", timeout: 2s}
    value: "json.halted_reason or ''"
    expect: "json.status != 'halted'"
    severity: warning
    occurrence: "(json.get('halts') or []) | map(attribute='reason') | list"
    depends_on: [bot health endpoint]
  - name: bot health endpoint
    http: {url: "http://127.0.0.1:9/health", timeout: 2s}
    expect: "status_code == 200"
  - name: bot process
    supervisor: {program: bot}
    expect: "running"
    occurrence: "facts.get('exitstatus')"
    remediate: [restart]
  - name: worker process           # as shipped: the module's occurrence (a new process), no causes
    supervisor: {program: worker}
    expect: "running"
    remediate: [restart]
remediations:
  restart:
    steps:
      - command: {argv: ["true"]}
"""
GROUP_WAIT, GROUP_INTERVAL = 1.0, 30.0
EXITED = {"state": "EXITED", "running": False}


def health(*reasons: str) -> CheckResult:
    halts = [{"id": f"h{i}", "kind": "control", "reason": r} for i, r in enumerate(reasons)]
    return CheckResult(facts={"status_code": 200, "json": {
        "status": "halted" if reasons else "healthy", "halts": halts,
        "halted_reason": "; ".join(f"control: {r}" for r in reasons) or None}})


class World(PipelineWorld):
    def __init__(self, root: Path, thread: StoreThread) -> None:
        super().__init__(root, thread, PLAY, f"{{group_wait: {GROUP_WAIT}s, group_interval: {GROUP_INTERVAL:g}s, "
                         "targets: {inbox: {url: 'json://127.0.0.1:9/'}, pager: {url: 'json://127.0.0.1:9/p'}}, "
                         "routes: [{name: default, targets: [inbox]}]}", group_wait=GROUP_WAIT,
                         group_interval=GROUP_INTERVAL)

    async def result(self, result: CheckResult, name: str = "bot not halted") -> None:
        await self.handle(result, f"p/local/{name}")

    def tick(self, after: float) -> int:
        """Passes of the lifecycle now and ``after`` seconds from now (what was just stored, stored
        now); how many rows they queued."""
        now = datetime.now(UTC)
        return self.lifecycle.tick(now) + self.lifecycle.tick(now + timedelta(seconds=after))

    async def crash_told(self) -> Any:
        """An agent started afresh; the worker crashed, its restart done, its alert told: the incident."""
        self.restart()
        await self.result(CheckResult(facts=EXITED, value="EXITED", occurrence="1796678501"), "worker process")
        inc = self.store.open_incident_for("p/local/worker process")
        assert inc is not None
        self.store.add_event(OUTCOME_EVENT, inc.key, inc.id, "restart: done", {"outcome": "done"}, at=datetime.now(UTC))
        assert self.tick(GROUP_WAIT + 0.5) == 1
        return inc

    def told(self) -> list[tuple[str, str, str]]:
        return [(n.kind, n.target, n.title) for n in sorted(self.store.list_notifications(), key=lambda n: n.id)]

    def bodies(self) -> list[str]:
        return [n.body for n in sorted(self.store.list_notifications(), key=lambda n: n.id)]


@pytest.fixture
def world(tmp_path: Path, thread: StoreThread) -> Any:
    w = World(tmp_path, thread)
    yield w
    w.close()


async def test_a_halt_added_on_top_is_told_once_a_halt_ended_is_no_news_and_all_ended_resolves(world: World) -> None:
    await world.result(health())
    await world.result(health("maintenance"))  # the operator's halt: the alert
    assert world.tick(GROUP_WAIT + 0.5) == 1
    assert world.told() == [("alert", "inbox", "[WARNING] bot not halted on local")]

    await world.result(health("maintenance", "daily loss 5.20% reached the limit of 5%"))  # the bot's own, on top
    [recurred] = world.store.recent_events(kind=RECURRENCE_EVENT, limit=5)
    assert recurred.key == KEY and "a new cause while WARNING: daily loss 5.20% reached the limit of 5%" \
        in recurred.message, recurred.message
    assert world.tick(GROUP_WAIT + 0.5) == 0  # paced: group_interval after the alert
    for _ in range(3):  # polled again meanwhile, both halts still in force: nothing new
        await world.result(health("maintenance", "daily loss 5.20% reached the limit of 5%"))
    assert world.tick(GROUP_INTERVAL + 5) == 1
    assert world.told()[1:] == [
        ("notice", "inbox", "[UPDATE] bot not halted on local: a new cause while WARNING: "
                            "daily loss 5.20% reached the limit of 5%")]
    assert "Not a new problem" in world.bodies()[1]
    assert world.tick(3 * GROUP_INTERVAL) == 0  # once

    world.restart()  # an agent started again finds both causes recorded: nothing to tell twice
    await world.result(health("maintenance", "daily loss 5.20% reached the limit of 5%"))
    await world.result(health("daily loss 5.20% reached the limit of 5%"))  # the operator's ended: no news
    assert world.tick(3 * GROUP_INTERVAL) == 0
    assert len(world.store.recent_events(kind=RECURRENCE_EVENT, limit=5)) == 1

    await world.result(health())  # every halt ended: the one resolve
    assert world.tick(4 * GROUP_INTERVAL) == 1
    assert [k for k, _, _ in world.told()] == ["alert", "notice", "resolve"]


async def test_halts_coming_and_going_within_group_interval_are_one_update_sent_once_across_a_restart(
        world: World) -> None:
    await world.result(health("maintenance"))
    assert world.tick(GROUP_WAIT + 0.5) == 1
    for reasons in (("maintenance", "stop refused"), ("maintenance",), ("maintenance", "stop refused"),
                    ("maintenance", "stop refused", "close refused")):
        await world.result(health(*reasons))
    assert len(world.store.recent_events(kind=RECURRENCE_EVENT, limit=10)) == 3
    world.restart()  # the agent restarted before the update went out: the new one sends it, once
    assert world.tick(GROUP_INTERVAL + 5) == 1
    assert world.told()[1][2] == "[UPDATE] bot not halted on local: a new cause while WARNING: close refused"
    assert world.bodies()[1].count("a new cause while WARNING: stop refused") == 2, world.bodies()[1]
    world.restart()
    assert world.tick(3 * GROUP_INTERVAL) == 0


async def test_a_halt_taken_while_the_bot_was_dead_is_told_once_when_it_answers_again(world: World) -> None:
    """The bot dies while halted (its endpoint's alert holds this check's UNKNOWN back) and comes
    back with a halt it took meanwhile (a daily loss its start found): the problem went WARNING ->
    UNKNOWN -> WARNING, a state already told, so no alert says it; the new cause is told once as
    an update, against the causes recorded before the bot died."""
    endpoint = "bot health endpoint"
    await world.result(health(), endpoint)
    await world.result(health("maintenance"))
    assert world.tick(GROUP_WAIT + 0.5) == 1
    await world.result(CheckResult.failed("connection refused"), endpoint)  # the bot is dead
    await world.result(CheckResult.failed("connection refused"))
    assert world.pipeline.status(KEY).hard is State.UNKNOWN
    world.tick(GROUP_WAIT + 0.5)
    await world.result(health("maintenance", "daily loss 7.94% reached the limit of 5%"), endpoint)
    await world.result(health("maintenance", "daily loss 7.94% reached the limit of 5%"))
    assert world.pipeline.status(KEY).hard is State.WARNING
    for _ in range(3):
        await world.result(health("maintenance", "daily loss 7.94% reached the limit of 5%"))
    world.tick(GROUP_INTERVAL + 5)
    world.restart()
    world.tick(3 * GROUP_INTERVAL)
    about = [title for _, _, title in world.told() if "bot not halted" in title]
    assert about == ["[WARNING] bot not halted on local",
                     "[UPDATE] bot not halted on local: a new cause while WARNING: "
                     "daily loss 7.94% reached the limit of 5%"], world.told()


async def test_a_problem_that_starts_while_the_bot_is_dead_names_its_causes_as_its_baseline(world: World) -> None:
    """OK, then the bot stopped (the emergency halts it, then stops it, before this check read the
    halt: UNKNOWN), then started again halted (WARNING, naming the emergency's halt): the causes of
    the OK reading are no baseline for a problem that began after it. The emergency's halt is this
    problem's first cause, told by its alert (or held by the emergency's silence), not a new cause
    of a problem that stood (whose recurrence ended that silence and told the halt the page told;
    seen under load in tests/e2e/test_protection.py)."""
    endpoint = "bot health endpoint"
    await world.result(health(), endpoint)
    await world.result(health())
    assert world.pipeline.status(KEY).hard is State.OK
    await world.result(CheckResult.failed("connection refused"), endpoint)  # stopped by the emergency
    await world.result(CheckResult.failed("connection refused"))
    assert world.pipeline.status(KEY).hard is State.UNKNOWN
    await world.result(health("emergency playbook"), endpoint)
    await world.result(health("emergency playbook"))
    assert world.pipeline.status(KEY).hard is State.WARNING
    assert world.store.recent_events(kind=RECURRENCE_EVENT, limit=5) == []
    await world.result(health("emergency playbook", "daily loss 7.94% reached the limit of 5%"))
    [recurred] = world.store.recent_events(kind=RECURRENCE_EVENT, limit=5)  # what comes on top is news
    assert recurred.message.endswith("daily loss 7.94% reached the limit of 5%"), recurred.message


async def test_a_cause_that_ended_while_its_incident_was_held_back_is_not_told_afterwards(world: World) -> None:
    """A halt that came and went while this check's incident was held under another alert (the bot's
    stop-loss refused for a revoked wallet: the access alert tells it; the wallet approved, the stop
    placed, that halt ended) is not told as a new cause once the other alert resolves: by then it
    no longer stands (its update would say NO STOP-LOSS of a position that has its stop). A cause
    that still stands then is told (the update names only it)."""
    endpoint = "bot health endpoint"
    refused = "placing the stop-loss of BTC refused: the BTC position has NO STOP-LOSS"
    await world.result(health(), endpoint)
    await world.result(health("maintenance"))
    assert world.tick(GROUP_WAIT + 0.5) == 1
    await world.result(CheckResult.failed("refused"), endpoint)  # the alert this one is held under
    await world.result(health("maintenance", refused))
    world.tick(GROUP_WAIT + 0.5)
    assert world.store.open_incident_for(KEY).suppressed  # held back
    await world.result(health("maintenance"))  # the stop placed: its halt ended
    await world.result(health(), endpoint)
    world.tick(GROUP_INTERVAL + 5)
    world.tick(3 * GROUP_INTERVAL)
    about = [title for _, _, title in world.told() if "bot not halted" in title]
    assert about == ["[WARNING] bot not halted on local"], world.told()
    assert len(world.store.recent_events(kind=RECURRENCE_EVENT, limit=5)) == 1  # in the timeline still

    await world.result(health("maintenance", "closing BTC refused"))  # a new one, standing when told
    world.tick(GROUP_INTERVAL + 5)
    world.tick(3 * GROUP_INTERVAL)
    about = [title for _, _, title in world.told() if "bot not halted" in title]
    assert about == ["[WARNING] bot not halted on local",
                     "[UPDATE] bot not halted on local: a new cause while WARNING: closing BTC refused"], about
    assert "NO STOP-LOSS" not in world.bodies()[-1], world.bodies()[-1]


async def test_a_new_cause_with_a_change_of_state_that_is_told_is_not_told_again_as_an_update(
        world: World) -> None:
    """Nothing inhibits this check's UNKNOWN (its endpoint answers): WARNING -> UNKNOWN is told and
    so is UNKNOWN -> WARNING, a state told before (its message is not taken for the first one's),
    and it names every halt: the new cause is no update besides."""
    await world.result(health("maintenance"))
    assert world.tick(GROUP_WAIT + 0.5) == 1
    await world.result(CheckResult.failed("connection refused"))
    world.tick(GROUP_INTERVAL + 5)
    await world.result(health("maintenance", "daily loss 7.94% reached the limit of 5%"))
    world.tick(GROUP_INTERVAL + 5)
    world.tick(3 * GROUP_INTERVAL)
    titles = [title for _, _, title in world.told()]
    # the return to a state told before is a message of its own (not taken for the first one)
    assert titles == ["[WARNING] bot not halted on local", "[UNKNOWN] bot not halted on local: connection refused",
                      "[WARNING] bot not halted on local"], titles
    assert "daily loss 7.94% reached the limit of 5%" in world.bodies()[-1], world.told()


async def test_causes_seen_while_the_problem_is_soft_or_new_are_a_baseline_not_news(world: World) -> None:
    # The first reading of the problem (a transition) names two halts: the alert tells them both.
    await world.result(health("maintenance", "daily loss 5.20% reached the limit of 5%"))
    # A check given its `occurrence` while its problem stood (nothing recorded yet): a baseline.
    status = world.pipeline.status(KEY)
    assert status is not None and status.hard is State.WARNING
    status.extra.pop("causes")
    await world.result(health("maintenance", "daily loss 5.20% reached the limit of 5%", "reconcile"))
    assert world.store.recent_events(kind=RECURRENCE_EVENT, limit=5) == []
    # An unreadable result names nothing: the causes stay as they were, the next one is compared.
    await world.result(CheckResult.failed("connection refused"))
    await world.result(health("maintenance", "daily loss 5.20% reached the limit of 5%", "reconcile"))
    assert world.store.recent_events(kind=RECURRENCE_EVENT, limit=5) == []


@pytest.mark.parametrize(("outcome", "title"), [
    pytest.param(("restart: nothing done, its steps do not apply", "nothing"),
                 "a new cause while CRITICAL: 2", id="nothing done: the recurrence is still told"),
    pytest.param(("restart: failed after 12ms: bot could not be spawned", "failed"),
                 "restart: failed after 12ms: bot could not be spawned", id="failed: told with its outcome"),
])
async def test_a_recurrence_of_a_remediated_check_waits_for_its_outcome_and_is_told_with_it(
        world: World, outcome: tuple[str, str], title: str) -> None:
    world.remediation_wait = 100.0  # longer than group_interval: the wait is seen apart from the pacing
    world.restart()
    exited = {"state": "EXITED", "running": False}
    await world.result(CheckResult(facts={**exited, "exitstatus": 1}, value="EXITED"), "bot process")
    inc = world.store.open_incident_for("p/local/bot process")
    assert inc is not None
    world.store.add_event(OUTCOME_EVENT, inc.key, inc.id, "restart: done", {"outcome": "done"}, at=datetime.now(UTC))
    assert world.tick(GROUP_WAIT + 0.5) == 1
    await world.result(CheckResult(facts={**exited, "exitstatus": 2}, value="EXITED"), "bot process")
    assert world.tick(GROUP_INTERVAL + 5) == 0  # waits for what the agent did about it
    world.store.add_event(OUTCOME_EVENT, inc.key, inc.id, outcome[0], {"outcome": outcome[1]}, at=datetime.now(UTC))
    assert world.tick(GROUP_INTERVAL + 5) == 1
    assert world.told()[1] == ("notice", "inbox", f"[UPDATE] bot process on local: {title}")
    assert "a new cause while CRITICAL: 2" in world.bodies()[1]
    assert world.tick(3 * GROUP_INTERVAL) == 0


@pytest.mark.parametrize("outcome", [("restart: started bot (STARTING, pid 7) in 12ms", "done"),
                                     ("restart not run: cooling down until 12:00:30 UTC", "deferred")],
                         ids=["restarted again", "restart deferred by the cooldown"])
async def test_a_crash_loop_being_handled_is_folded_into_the_incidents_next_message(
        world: World, outcome: tuple[str, str]) -> None:
    """Issue 13 item 6 (crash-past-budget: 4-5 messages for one crash loop, an update per
    restart): a remediated check's recurrence whose restart was done again (or waits for the
    cooldown) is the crash loop the alert told, being handled: no update of its own (as
    Alertmanager sends nothing for a firing group that did not change). The resolve counts it."""
    inc = await world.crash_told()
    await world.result(CheckResult(facts=EXITED, value="EXITED", occurrence="1796678504"), "worker process")
    assert world.store.recent_events(kind=RECURRENCE_EVENT, limit=5), "no recurrence recorded"
    world.store.add_event(OUTCOME_EVENT, inc.key, inc.id, outcome[0], {"outcome": outcome[1]}, at=datetime.now(UTC))
    assert world.tick(GROUP_INTERVAL + 5) == 0
    assert world.tick(5 * GROUP_INTERVAL) == 0
    await world.result(CheckResult(facts={"state": "RUNNING", "running": True}, value="RUNNING"), "worker process")
    world.tick(6 * GROUP_INTERVAL)
    assert [kind for kind, _, _ in world.told()] == ["alert", "resolve"], world.told()
    assert "happened again 1 time while it lasted" in world.bodies()[1], world.bodies()[1]
    assert outcome[0] in world.bodies()[1], world.bodies()[1]


async def test_a_crash_loop_supervisord_retries_itself_is_folded_too(world: World) -> None:
    """A bot dead before RUNNING is started again by supervisord itself (``startretries``): the
    agent's restart of each such crash finds it already STARTING, "nothing to change". Each of those
    was an update of its own ("it happened again; nothing to change"), one per ``group_interval``
    for as long as supervisord retried. It is the crash loop the alert told, being handled: folded
    like a restart, and counted by the resolve."""
    inc = await world.crash_told()
    for n in range(3):
        await world.result(CheckResult(facts=EXITED, value="EXITED", occurrence=f"17966785{10 + n}"), "worker process")
        world.store.add_event(OUTCOME_EVENT, inc.key, inc.id, "restart: nothing to change (bot already STARTING)",
                              {"outcome": "nothing", UNCHANGED: True}, at=datetime.now(UTC))
    assert world.tick(GROUP_INTERVAL + 5) == 0, world.told()
    assert world.tick(5 * GROUP_INTERVAL) == 0, world.told()
    await world.result(CheckResult(facts={"state": "RUNNING", "running": True}, value="RUNNING"), "worker process")
    world.tick(6 * GROUP_INTERVAL)
    assert [kind for kind, _, _ in world.told()] == ["alert", "resolve"], world.told()
    assert "happened again 3 times while it lasted" in world.bodies()[1], world.bodies()[1]


@pytest.mark.parametrize(("named", "causes"), [
    (None, None),
    ([], ()),
    ("halted", ("halted",)),
    (3, ("3",)),
    (["a", "b", "a", None, " "], ("a", "b")),
    ((x for x in ("a", "b")), ("a", "b")),  # Jinja's map without `| list`
    ({"a": 1}, ("{'a': 1}",)),
])
def test_what_an_occurrence_expression_names(named: Any, causes: tuple[str, ...] | None) -> None:
    assert cause_texts(named) == causes


def test_a_broken_occurrence_is_an_unknown_with_the_reason(world: World) -> None:
    bc = world.live.check(KEY)
    assert bc is not None
    obs = classify(bc, CheckResult(facts={"status_code": 200, "json": {"status": "halted", "halts": 3}}),
                   world.live.current.templating, State.OK, datetime.now(UTC))
    assert obs.state is State.UNKNOWN and obs.error and obs.error.startswith("evaluation failed"), obs
    ok = classify(bc, health("maintenance"), world.live.current.templating, State.OK, datetime.now(UTC))
    assert ok.state is State.WARNING and ok.causes == ("maintenance",)


async def test_a_new_cause_of_a_remediated_check_is_told_though_its_remediation_ran(world: World) -> None:
    """The fold of a crash loop being handled is for the problem again, not for news: a cause the
    check's `occurrence` names for the first time (here another exit status) is an update even when
    the check's remediation ran for it."""
    world.restart()
    exited = {"state": "EXITED", "running": False}
    await world.result(CheckResult(facts={**exited, "exitstatus": 1}, value="EXITED"), "bot process")
    inc = world.store.open_incident_for("p/local/bot process")
    assert inc is not None
    world.store.add_event(OUTCOME_EVENT, inc.key, inc.id, "restart: done", {"outcome": "done"}, at=datetime.now(UTC))
    assert world.tick(GROUP_WAIT + 0.5) == 1
    await world.result(CheckResult(facts={**exited, "exitstatus": 2}, value="EXITED"), "bot process")
    world.store.add_event(OUTCOME_EVENT, inc.key, inc.id, "restart: started bot again", {"outcome": "done"},
                          at=datetime.now(UTC))
    world.tick(GROUP_INTERVAL + 5)
    assert [kind for kind, _, _ in world.told()] == ["alert", "notice"], world.told()
    assert "a new cause while CRITICAL: 2" in world.bodies()[1], world.bodies()[1]


async def test_a_crash_loop_that_does_not_end_is_not_folded_for_ever(world: World) -> None:
    """The fold of a crash loop being handled relies on the incident's next message to tell it (the
    resolve, an urgent update, the hand-over's page). A loop that neither resolves nor spends a
    budget (here the remediation has none: every restart is done, for ever) would leave the
    operator with the first alert's "restarted" while the program dies again and again: past
    FOLD_AT_MOST group_intervals after the incident's last message the loop is told as an update
    counting the crashes, then again each FOLD_AT_MOST group_intervals while it lasts."""
    inc = await world.crash_told()
    for n in range(3):
        await world.result(CheckResult(facts=EXITED, value="EXITED", occurrence=f"17966785{10 + n}"), "worker process")
        world.store.add_event(OUTCOME_EVENT, inc.key, inc.id, f"restart: started worker (STARTING, pid {n}) in 12ms",
                              {"outcome": "done"}, at=datetime.now(UTC))
    assert world.tick(GROUP_INTERVAL + 5) == 0  # folded: the crash loop the alert told, being handled
    assert world.tick((FOLD_AT_MOST + 1) * GROUP_INTERVAL) == 1, world.told()
    assert [kind for kind, _, _ in world.told()] == ["alert", "notice"], world.told()
    title, body = world.told()[1][2], world.bodies()[1]
    assert "happened again 3 times" in title, title
    assert "restart: started worker (STARTING, pid 2) in 12ms" in body, body
    assert world.tick((FOLD_AT_MOST + 1) * GROUP_INTERVAL) == 0  # nothing new since: nothing to tell


async def test_a_crash_after_the_budget_was_spent_and_told_is_no_update_of_its_own(world: World) -> None:
    """A program that cannot start keeps dying after the hand-over (supervisord's own retries of the
    last restart): each crash was refused 'budget spent' and each refusal was an urgent update, after
    the page that already said a human is needed (a program that cannot start: alert, updates, page,
    then an update per crash). A refusal by a budget spent before it is folded like a restart."""
    inc = await world.crash_told()
    await world.result(CheckResult(facts=EXITED, value="EXITED", occurrence="1796678502"), "worker process")
    world.store.add_event(OUTCOME_EVENT, inc.key, inc.id, "restart not run: budget spent: 3 of 3 runs within 1800s; "
                          "handed over to playbook emergency and a human paged", {"outcome": "handed-over"},
                          at=datetime.now(UTC))
    assert world.tick(GROUP_WAIT + 0.5) == 1  # urgent: told at once
    for n in range(3):
        await world.result(CheckResult(facts=EXITED, value="EXITED", occurrence=f"17966785{10 + n}"), "worker process")
        world.store.add_event(OUTCOME_EVENT, inc.key, inc.id, "restart not run: budget spent: 3 of 3 runs within "
                              "1800s", {"outcome": "refused", SPENT_BEFORE: True}, at=datetime.now(UTC))
    world.store.add_event(OUTCOME_EVENT, inc.key, inc.id, "restart not run: budget spent: 3 of 3 runs within 1800s",
                          {"outcome": "refused", SPENT_BEFORE: True}, at=datetime.now(UTC))  # an agent restarted
    assert world.tick(GROUP_INTERVAL + 5) == 0, world.told()
    assert [kind for kind, _, _ in world.told()] == ["alert", "notice"], world.told()
