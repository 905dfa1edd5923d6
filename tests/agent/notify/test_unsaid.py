"""What a lost database still held unsaid (agent.notify.unsaid): taken on a real SQLite store."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent.core.states import State
from agent.notify.lifecycle.remediation_notes import WAITING
from agent.notify.unsaid import fold_dependents, problem_message, take_unsaid
from agent.store import Store

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _store(tmp_path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'a.db'}")
    s.migrate()
    return s


def _incident(store: Store, check: str, *, severity: str = "critical", ago: float = 5, **lifecycle) -> int:
    iid = store.open_incident(play="p", host="h", check=check, state=State.CRITICAL, severity=severity,
                              opened_at=NOW - timedelta(seconds=ago), summary=f"{check} broke")
    if lifecycle:
        store.set_incident_lifecycle(iid, **lifecycle)
    return iid


def test_problems_only_waiting_for_their_turn_are_taken_and_marked_told(tmp_path) -> None:
    store = _store(tmp_path)
    try:
        waiting = _incident(store, "in group wait")
        held = _incident(store, "held for its restart", suppressed=f"{WAITING}restart-bot")
        fixed = _incident(store, "fixed before told", suppressed=f"{WAITING}restart-bot")
        store.resolve_incident(fixed, NOW - timedelta(seconds=1))
        _incident(store, "told already", announced_state="CRITICAL", announced_at=NOW)
        _incident(store, "silenced", suppressed="silence #3: deploy")
        _incident(store, "folded", suppressed="inhibited by bot process (#1)")
        _incident(store, "evidence", suppressed="waiting for bot health endpoint: failing itself")
        _incident(store, "digest", severity="info")
        _incident(store, "long ago", ago=7200)
        store.resolve_incident(store.open_incident_for("p/h/long ago").id, NOW - timedelta(seconds=7000))

        unsaid = take_unsaid(store, NOW, "me")
        assert [i.id for i in unsaid.problems] == [waiting, held, fixed]
        # marked told: the lifecycle follows with a resolve, not a second alert; and not taken twice
        assert store.get_incident(waiting).announced_state == "CRITICAL"
        assert store.get_incident(fixed).announced_state == "OK"
        assert take_unsaid(store, NOW, "me").problems == []
        titles = [problem_message(i, "the database was deleted")[0] for i in unsaid.problems]
        assert titles == ["[CRITICAL] in group wait on h", "[CRITICAL] held for its restart on h",
                          "[CRITICAL, now OK] fixed before told on h"]
    finally:
        store.close()


def test_undelivered_messages_are_claimed_once_and_failing_targets_are_listed(tmp_path) -> None:
    store = _store(tmp_path)
    try:
        ids = [store.enqueue_notification(kind="alert", target=t, title=f"[CRITICAL] {t}", body="b",
                                          dedup_key=f"k{t}", now=NOW - timedelta(seconds=2), severity="critical")
               for t in ("slack", "email", "pager", "hook")]
        store.mark_sent(ids[2], NOW)
        store.mark_failed(ids[3], "connection refused", NOW + timedelta(seconds=30))  # backing off
        [busy] = store.claim_due_notifications(NOW, owner="outbox", only=[ids[1]])  # in flight: not taken
        unsaid = take_unsaid(store, NOW, "me")
        assert [m.id for m in unsaid.messages] == [ids[0]]
        assert [m.id for m in unsaid.stuck] == [ids[3]]  # said in the notice, by title and target
        assert busy.id not in [m.id for m in unsaid.messages + unsaid.stuck]
        assert take_unsaid(store, NOW, "me").messages == []  # under our claim now: the outbox skips it too
    finally:
        store.close()


def test_a_dependent_told_as_the_database_is_lost_is_folded_into_its_root_causes_message(tmp_path) -> None:
    """database-deleted (seed 2164153988): the bot crashed as the database was deleted; the crash and
    two checks that depend on it (through the health endpoint) were untold: three direct messages
    for one fault. One root cause, one message: the dependents are listed in the root's."""
    store = _store(tmp_path)
    try:
        root = _incident(store, "bot process")
        ws = _incident(store, "bot websocket")
        access = _incident(store, "bot exchange access")
        store.resolve_incident(access, NOW - timedelta(seconds=1))
        other = _incident(store, "disk space")
        chains = {"p/h/bot websocket": ["p/h/bot health endpoint", "p/h/bot process"],
                  "p/h/bot exchange access": ["p/h/bot websocket"], "p/h/bot process": [], "p/h/disk space": []}
        unsaid = take_unsaid(store, NOW, "me")
        folded = fold_dependents(unsaid.problems, lambda inc: chains[inc.key])
        assert [(r.id, [d.id for d in deps]) for r, deps in folded] == [(root, [ws, access]), (other, [])]
        title, body = problem_message(folded[0][0], "the database was deleted", folded[0][1])
        assert title == "[CRITICAL] bot process on h"
        assert "not told separately: bot websocket CRITICAL; bot exchange access CRITICAL, now OK" in body
    finally:
        store.close()
