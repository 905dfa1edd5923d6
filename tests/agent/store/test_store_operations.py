"""Store operations on a real SQLite file: results, states, incidents, outbox, audit."""
from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta

import pytest

from agent.core.states import State
from agent.store import CheckStateRecord, Store, check_key

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)


def enqueue(store: Store, dedup: str, target: str = "ops", at: datetime = T0, **kw: object) -> int | None:
    return store.enqueue_notification(kind=kw.pop("kind", "alert"), target=target, title="t",  # type: ignore[arg-type]
                                      body="b", dedup_key=dedup, now=at, **kw)  # type: ignore[arg-type]


def test_results_are_recorded_listed_newest_first_and_pruned(store: Store) -> None:
    for i in range(5):
        store.record_result(play="p", host="h", check="c", state=State.OK, value={"n": i},
                            observed_at=T0 + timedelta(minutes=i), duration_ms=1.5)
    store.record_result(play="p", host="h", check="other", state=State.CRITICAL, error="refused",
                        observed_at=T0)
    recent = store.recent_results(play="p", host="h", check="c", limit=2)
    assert [r.value for r in recent] == ['{"n": 4}', '{"n": 3}']
    assert recent[0].observed_at == T0 + timedelta(minutes=4)
    assert recent[0].observed_at.tzinfo is not None
    assert store.prune_results(T0 + timedelta(minutes=2)) == 3  # minutes 0, 1 and the other check
    assert len(store.recent_results()) == 3


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        naive = datetime(2025, 1, 1)  # noqa: DTZ001 - the point of the test
        store.record_result(play="p", host="h", check="c", state=State.OK, observed_at=naive)


def test_check_state_round_trip_and_update(store: Store) -> None:
    rec = CheckStateRecord(play="p", host="h", check="c", hard_state=State.OK, soft_state=State.WARNING,
                           since=T0, soft_since=T0, consecutive=1, last_value="81",
                           last_observed_at=T0, extras={"history": ["OK", "WARNING"]})
    store.save_check_state(rec)
    store.save_check_state(dataclasses.replace(rec, hard_state=State.WARNING, consecutive=2))
    loaded = store.load_check_states()
    assert list(loaded) == [check_key("p", "h", "c")]
    assert loaded["p/h/c"] == dataclasses.replace(rec, hard_state=State.WARNING, consecutive=2)


def test_incident_lifecycle(store: Store) -> None:
    iid = store.open_incident(play="p", host="h", check="c", state=State.CRITICAL, severity="critical",
                              opened_at=T0, summary="down")
    # A replayed transition does not open a second incident.
    assert store.open_incident(play="p", host="h", check="c", state=State.CRITICAL, severity="critical",
                               opened_at=T0) == iid
    assert [i.id for i in store.open_incidents()] == [iid]
    assert store.acknowledge_incident(iid, by="ana", at=T0, comment="on it")
    assert store.resolve_incident(iid, T0 + timedelta(minutes=5))
    assert not store.resolve_incident(iid, T0 + timedelta(minutes=6))
    inc = store.get_incident(iid)
    assert inc is not None and not inc.is_open
    assert (inc.acknowledged_by, inc.resolved_at) == ("ana", T0 + timedelta(minutes=5))
    assert store.open_incidents() == [] and store.open_incident_for("p/h/c") is None
    assert store.get_incident(9999) is None


def test_enqueue_is_deduplicated_and_counts_alerts_on_the_incident(store: Store) -> None:
    iid = store.open_incident(play="p", host="h", check="c", state=State.CRITICAL, severity="critical",
                              opened_at=T0)
    first = enqueue(store, "alert:1:ops", incident_id=iid)
    assert first is not None
    assert enqueue(store, "alert:1:ops", incident_id=iid) is None
    assert len(store.list_notifications()) == 1
    inc = store.get_incident(iid)
    assert inc is not None and (inc.notify_count, inc.last_notified_at) == (1, T0)


def test_ending_a_dedup_prefix_lets_those_messages_be_sent_again_and_keeps_the_rows(store: Store) -> None:
    for key in ("notice:config-rejected:d1:-:ops", "notice:config-rejected:d1:-:mail", "notice:other:d1:-:ops",
                "notice:config_rejected:d1:-:ops"):  # '_' is no wildcard
        assert enqueue(store, key, kind="notice") is not None
    assert store.end_dedup("notice:config-rejected:") == 2
    assert store.end_dedup("notice:config-rejected:") == 0  # ended once; the rows stay, for the record
    assert enqueue(store, "notice:config-rejected:d1:-:ops", kind="notice") is not None  # a new episode
    assert enqueue(store, "notice:config-rejected:d1:-:ops", kind="notice") is None  # told once within it
    assert enqueue(store, "notice:other:d1:-:ops", kind="notice") is None
    assert enqueue(store, "notice:config_rejected:d1:-:ops", kind="notice") is None
    assert len(store.list_notifications()) == 5
    assert store.end_dedup("notice:config-rejected:") == 1
    assert enqueue(store, "notice:config-rejected:d1:-:ops", kind="notice") is not None
    assert len({n.dedup_key for n in store.list_notifications()}) == 6


def test_claim_marks_sending_and_keeps_each_target_in_order(store: Store) -> None:
    a1, b1, a2 = enqueue(store, "a1", "a"), enqueue(store, "b1", "b"), enqueue(store, "a2", "a")
    claimed = store.claim_due_notifications(T0)
    assert [n.id for n in claimed] == [a1, b1, a2] and {n.status for n in claimed} == {"sending"}
    assert store.claim_due_notifications(T0) == []  # nothing is claimed twice
    store.mark_sent(b1, T0)  # type: ignore[arg-type]
    # a1 failed: target "a" waits out the backoff, and a newer message for "a" waits with it.
    store.mark_failed(a1, "HTTP 500", T0 + timedelta(seconds=30))  # type: ignore[arg-type]
    store.defer_notifications([a2], T0 + timedelta(seconds=30))  # type: ignore[list-item]
    a3 = enqueue(store, "a3", "a", at=T0 + timedelta(seconds=1))
    b2 = enqueue(store, "b2", "b", at=T0 + timedelta(seconds=1))
    assert [n.id for n in store.claim_due_notifications(T0 + timedelta(seconds=1))] == [b2]
    store.mark_sent(b2, T0)  # type: ignore[arg-type]
    assert store.next_notification_due_at() == T0 + timedelta(seconds=30)
    assert [n.id for n in store.claim_due_notifications(T0 + timedelta(seconds=30))] == [a1, a2, a3]
    rows = {n.id: n for n in store.list_notifications()}
    assert rows[a1].attempts == 1 and rows[a1].last_error == "HTTP 500"  # type: ignore[index]
    assert rows[a2].attempts == 0  # type: ignore[index]


def test_expedite_and_dead_and_requeue(store: Store) -> None:
    n1, n2 = enqueue(store, "n1"), enqueue(store, "n2", "mail")
    store.claim_due_notifications(T0)
    store.mark_failed(n1, "refused", T0 + timedelta(minutes=5))  # type: ignore[arg-type]
    assert store.expedite_target("ops", T0) == 1
    assert store.next_notification_due_at() == T0  # n1 expedited; n2 ("mail") is still sending
    assert store.release_claims(T0) == 1  # n2 was left in sending, e.g. by a crash
    assert store.next_notification_due_at() == T0
    claimed = store.claim_due_notifications(T0)
    assert [n.id for n in claimed] == [n1, n2]
    store.mark_failed(n1, "target no longer configured", T0, dead=True)  # type: ignore[arg-type]
    store.mark_sent(n2, T0)  # type: ignore[arg-type]
    assert store.claim_due_notifications(T0 + timedelta(days=1)) == []
    assert {n.status for n in store.list_notifications()} == {"dead", "sent"}


def test_transaction_commits_together_or_not_at_all(store: Store) -> None:
    woke: list[str] = []
    with pytest.raises(RuntimeError, match="boom"):
        with store.transaction() as tx:
            tx.open_incident(play="p", host="h", check="c", state=State.CRITICAL, severity="critical",
                             opened_at=T0)
            tx.enqueue_notification(kind="alert", target="ops", title="t", body="b", dedup_key="k", now=T0)
            tx.after_commit(lambda: woke.append("rolled back: must not run"))
            raise RuntimeError("boom")
    assert store.open_incidents() == [] and store.list_notifications() == [] and woke == []
    with store.transaction() as tx:
        iid = tx.open_incident(play="p", host="h", check="c", state=State.CRITICAL, severity="critical",
                               opened_at=T0)
        tx.enqueue_notification(kind="alert", target="ops", title="t", body="b", dedup_key="k", now=T0,
                                incident_id=iid)
        tx.after_commit(lambda: woke.append("committed"))
        with pytest.raises(RuntimeError, match="already open"):
            store.open_incidents()  # a nested transaction on this thread would deadlock
    assert woke == ["committed"] and len(store.list_notifications(incident_id=iid)) == 1


def test_an_after_commit_callback_registered_several_times_runs_once(store: Store) -> None:
    """Each batch of queued messages registers the outbox's wake; one commit wakes it once."""
    class Outbox:
        def __init__(self) -> None:
            self.woken = 0

        def wake(self) -> None:
            self.woken += 1

    outbox, other = Outbox(), Outbox()
    order: list[str] = []
    with store.transaction() as tx:
        for _ in range(3):  # a new bound method object each time, equal to the others
            tx.after_commit(outbox.wake)
        tx.after_commit(other.wake)  # the same method of another object is another callback
        tx.after_commit(lambda: order.append("first"))
        tx.after_commit(lambda: order.append("second"))  # equal code, another function: kept
        tx.after_commit(outbox.wake)
    assert (outbox.woken, other.woken, order) == (1, 1, ["first", "second"])


def test_a_second_store_on_the_same_file_waits_for_the_writer(store: Store, db_url: str) -> None:
    other = Store(db_url)
    done = threading.Event()

    def write_from_other() -> None:
        other.add_event("reload", message="from another process", at=T0)
        done.set()

    with store.transaction() as tx:
        tx.add_event("transition", "p/h/c", None, "first", {"old": "OK"}, at=T0)
        thread = threading.Thread(target=write_from_other)
        thread.start()
        assert not done.wait(0.2)  # blocked on SQLite's write lock, not failed
    thread.join(10)
    other.close()
    assert [e.message for e in store.events_since(T0)] == ["first", "from another process"]
    assert store.recent_events(kind="transition")[0].data == {"old": "OK"}


def test_action_runs_are_audited(store: Store) -> None:
    store.record_action_run(dict(play="emergency", host="bot1", task="stop the bot", module="supervisor",
                                 params={"action": "stop"}, reason="operator via run-playbook",
                                 actor="ana", check_mode=True, changed=True, started_at=T0))
    store.record_action_run(play="bot-health", host="bot1", task="restart", module="supervisor",
                            actor="agent", started_at=T0, failed=True, msg="spawn error")
    runs = store.action_runs()
    assert [(r.task, r.check_mode, r.failed) for r in runs] == [("restart", False, True),
                                                                ("stop the bot", True, False)]
    assert runs[1].params == {"action": "stop"} and runs[1].actor == "ana"


def test_a_store_opened_without_create_refuses_a_missing_file_and_never_makes_one(tmp_path) -> None:
    """The CLI's commands (status, ack, silence, history, explain) and the web page open the
    agent's database this way: an `agent ack` after the file was deleted must fail loudly, not
    write into a fresh file the agent never reads (issue 14, item 6)."""
    from botwarden.errors import OperationalError

    missing = tmp_path / "var" / "agent.db"
    with pytest.raises(OperationalError, match="does not exist"):
        Store(f"sqlite:///{missing}", create=False)
    assert not missing.exists() and not missing.parent.exists()
    made = Store(f"sqlite:///{missing}")  # the agent's way: creates it
    made.migrate()
    made.close()
    existing = Store(f"sqlite:///{missing}", create=False)
    try:
        assert existing.open_incidents() == []
        missing.unlink()  # deleted under an open store: a new connection does not recreate it
        for wal in tmp_path.glob("var/agent.db-*"):
            wal.unlink()
        existing.close()
        with pytest.raises(Exception):  # noqa: B017 - sqlite's "unable to open database file"
            Store(f"sqlite:///{missing}", create=False).open_incidents()
        assert not missing.exists()
    finally:
        existing.close()


def test_the_agents_own_store_never_remakes_its_deleted_file(tmp_path) -> None:
    """The resident agent's store creates its file once, when it opens; a pool connection opened
    after the file was deleted must fail, not make a new empty file that the store-file watch
    would then report as "replaced by another file" (a CI run said exactly that). A folder name
    with '#', '%' and a space is a path, not a URI's fragment or escape."""
    db = tmp_path / "a b#c%d" / "agent.db"
    store = Store(f"sqlite:///{db}")
    try:
        store.migrate()
        assert store.open_incidents() == [] and db.is_file()
        assert [p.name for p in tmp_path.iterdir()] == ["a b#c%d"]
        for path in db.parent.glob("agent.db*"):
            path.unlink()
        store.engine.dispose()  # the next query opens a new connection
        with pytest.raises(Exception):  # noqa: B017 - sqlite's "unable to open database file"
            store.open_incidents()
        assert not db.exists()
    finally:
        store.close()


def test_a_claim_holds_until_its_lease_expires_and_a_scope_claims_only_its_rows(store: Store) -> None:
    mine, theirs = enqueue(store, "mine", "a"), enqueue(store, "theirs", "b")
    # A one-shot run claims only what it queued, even when more is due.
    [claimed] = store.claim_due_notifications(T0, owner="oneshot", lease=60, only={mine})  # type: ignore[arg-type]
    assert claimed.id == mine and claimed.claimed_by == "oneshot"
    assert [n.id for n in store.claim_due_notifications(T0, owner="agent", lease=60)] == [theirs]
    # A live claim is nobody else's; renewing it moves its expiry; a lost claim is not renewed.
    assert store.claim_due_notifications(T0 + timedelta(seconds=59), owner="agent") == []
    assert store.next_notification_due_at() == T0 + timedelta(seconds=60)  # when a claim expires
    assert store.renew_claims([mine], "oneshot", T0 + timedelta(seconds=120)) == {mine}
    assert store.renew_claims([theirs], "agent", T0 + timedelta(seconds=150)) == {theirs}
    assert store.claim_due_notifications(T0 + timedelta(seconds=61), owner="agent") == []
    # Expired (the owner hangs or is gone): anyone takes it; the old owner cannot renew it any more.
    [taken] = store.claim_due_notifications(T0 + timedelta(seconds=121), owner="agent", lease=60)
    assert taken.id == mine and taken.claimed_by == "agent"
    assert store.renew_claims([mine], "oneshot", T0 + timedelta(seconds=200)) == set()  # type: ignore[list-item]
    # Giving back: only the owner's rows, due now; the rest keeps its claim.
    assert store.release_claims(T0, ["nobody"]) == 0
    assert store.claim_owners() == {"agent"}
    assert store.release_claims(T0, ["agent"], keep={theirs}) == 1  # type: ignore[arg-type]
    assert {n.id: n.status for n in store.list_notifications()} == {mine: "pending", theirs: "sending"}


def test_a_delivery_interrupted_by_its_senders_death_is_sent_again_saying_so(store: Store) -> None:
    """At-least-once: a message whose sender died holding its claim may have reached the target;
    sent again, it says so (once), so the operator reading it twice knows why. A claim given back
    unattempted (a one-shot run's drain) is not marked."""
    from agent.store import REPEAT_NOTE

    ids = [store.enqueue_notification(kind="alert", target=t, title="[CRITICAL] x", body="the body",
                                      dedup_key=f"k{t}", now=T0) for t in ("a", "b", "c")]
    store.claim_due_notifications(T0, owner="dead", lease=60)
    assert store.release_claims(T0, ["dead"], keep={ids[2]}, interrupted=True) == 2   # the process is gone
    [a, b] = store.claim_due_notifications(T0, owner="next", lease=60)
    assert a.body == b.body == "the body" + REPEAT_NOTE
    # the third, still under the dead process's claim, is taken once its lease expired: said too
    [c] = store.claim_due_notifications(T0 + timedelta(seconds=61), owner="next", lease=60, only={ids[2]})
    assert c.body == "the body" + REPEAT_NOTE
    # interrupted twice: said once; given back unattempted: not said
    assert store.release_claims(T0, ["next"], interrupted=True) == 3
    assert {n.body for n in store.claim_due_notifications(T0 + timedelta(seconds=200), owner="x")} == \
        {"the body" + REPEAT_NOTE}
    fresh = store.enqueue_notification(kind="alert", target="d", title="t", body="plain", dedup_key="kd", now=T0)
    store.claim_due_notifications(T0, owner="oneshot", only={fresh})
    assert store.release_claims(T0, ["oneshot"]) == 1
    [d] = store.claim_due_notifications(T0, owner="agent", only={fresh})
    assert d.body == "plain"
