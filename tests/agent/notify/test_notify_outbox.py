"""The outbox against real receivers: delivered, retried until delivered, exactly once."""
from __future__ import annotations

import asyncio
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.notify import Outbox, TargetSpec
from agent.notify.claims import ClaimOwner
from agent.notify.receipts import DeliveryReceipts, receipts_dir
from agent.store import Store
from tests.agent.notify.conftest import running_outbox, wait_until
from tests.support.receivers import JsonReceiver, SmtpReceiver


def enqueue(store: Store, key: str, target: str = "ops", title: str = "t") -> int:
    nid = store.enqueue_notification(kind="alert", target=target, title=title, body=f"body of {key}",
                                     dedup_key=key, now=datetime.now(UTC), severity="critical")
    assert nid is not None
    return nid


def statuses(store: Store) -> list[str]:
    return [n.status for n in store.list_notifications()]


async def test_delivers_to_a_json_receiver_on_wake(store: Store, inbox: JsonReceiver) -> None:
    # A long poll interval: only wake() can explain a prompt delivery.
    async with running_outbox(store, {"ops": TargetSpec("ops", inbox.url)}, poll_interval=3600) as outbox:
        await asyncio.sleep(0.1)  # the first pass has found nothing
        enqueue(store, "a1", title="[CRITICAL] bot loop is alive on bot1")
        outbox.wake()
        await asyncio.to_thread(inbox.wait_for, 1)
        await wait_until(lambda: statuses(store) == ["sent"])
    assert [(m["title"], m["message"], m["type"]) for m in inbox.messages] == [
        ("[CRITICAL] bot loop is alive on bot1", "body of a1", "failure")]


async def test_receiver_down_then_back_is_delivered_exactly_once(store: Store, inbox: JsonReceiver) -> None:
    inbox.stop()  # connection refused
    enqueue(store, "a1")
    enqueue(store, "a2")
    async with running_outbox(store, {"ops": TargetSpec("ops", inbox.url)}):
        await wait_until(lambda: store.list_notifications()[0].attempts >= 2)
        assert inbox.messages == []
        inbox.start()  # same port
        await wait_until(lambda: statuses(store) == ["sent", "sent"])
    assert [m["message"] for m in inbox.messages] == ["body of a1", "body of a2"]  # in order, once each
    first = store.list_notifications()[0]
    assert first.last_error and "Connection" in first.last_error


async def test_receiver_answering_500_then_ok_is_delivered_exactly_once(store: Store, inbox: JsonReceiver) -> None:
    inbox.failing = True
    enqueue(store, "a1")
    async with running_outbox(store, {"ops": TargetSpec("ops", inbox.url)}):
        await wait_until(lambda: inbox.rejected >= 2)
        inbox.failing = False
        await wait_until(lambda: statuses(store) == ["sent"])
        await asyncio.sleep(0.3)  # more than the backoff cap: nothing else goes out
    assert len(inbox.messages) == 1
    assert "500" in (store.list_notifications()[0].last_error or "")


async def test_a_dead_target_does_not_hold_up_another(store: Store, inbox: JsonReceiver) -> None:
    down = JsonReceiver().start()
    down.stop()
    targets = {"ops": TargetSpec("ops", inbox.url), "down": TargetSpec("down", down.url)}
    enqueue(store, "d1", "down")
    enqueue(store, "o1", "ops")
    async with running_outbox(store, targets):
        await asyncio.to_thread(inbox.wait_for, 1)
        await wait_until(lambda: store.list_notifications(status="sent") != [])
    by_target = {n.target: n.status for n in store.list_notifications()}
    assert by_target["ops"] == "sent" and by_target["down"] in ("pending", "failed", "sending")


async def test_restart_delivers_pending_and_interrupted_rows_exactly_once(db_url: str, inbox: JsonReceiver) -> None:
    first = Store(db_url)
    first.migrate()
    enqueue(first, "pending-1")
    enqueue(first, "interrupted-1", target="ops2")
    gone = subprocess.Popen(["true"])  # an agent that claimed both rows, then died
    gone.wait()
    owner = ClaimOwner("agent", socket.gethostname(), gone.pid, "1", "x")
    first.claim_due_notifications(datetime.now(UTC), owner=str(owner), lease=3600)  # both "sending"
    first.close()

    second = Store(db_url)  # a new process: new Store and Outbox on the same file
    targets = {"ops": TargetSpec("ops", inbox.url), "ops2": TargetSpec("ops2", inbox.url)}
    async with running_outbox(second, targets):
        await wait_until(lambda: statuses(second) == ["sent", "sent"])
        await asyncio.sleep(0.3)
    second.close()
    # Each exactly once more; both were under the dead agent's claim, so each may have reached its
    # target already: sent again, saying so (agent.store.REPEAT_NOTE).
    from agent.store import REPEAT_NOTE

    assert sorted(m["message"] for m in inbox.messages) == ["body of interrupted-1" + REPEAT_NOTE,
                                                            "body of pending-1" + REPEAT_NOTE]


async def test_a_message_its_target_accepted_before_the_agent_died_is_not_sent_again(
        db_url: str, inbox: JsonReceiver) -> None:
    """agent-killed-mid-remediation (3 of 20 runs on a loaded machine): the crash alert was
    accepted by the receiver, the agent was killed before the store recorded it, and the next agent
    sent it again. A target's answer is written down at once (agent.notify.receipts); the next
    outbox marks what the dead one's receipts list as sent, and sends again only the rest. A
    receipt line cut off by the kill is not read."""
    first = Store(db_url)
    first.migrate()
    accepted = enqueue(first, "accepted-1")
    enqueue(first, "unanswered-1", target="ops2")
    cut = enqueue(first, "cut-1", target="ops3")
    gone = subprocess.Popen(["true"])  # an agent that claimed the rows, then died
    gone.wait()
    owner = str(ClaimOwner("agent", socket.gethostname(), gone.pid, "1", "x"))
    first.claim_due_notifications(datetime.now(UTC), owner=owner, lease=3600)
    dead = DeliveryReceipts(receipts_dir(db_url), owner)  # what the dead agent wrote before it died
    dead.accepted(accepted, datetime.now(UTC))
    path = dead.path(owner)
    assert path is not None
    with path.open("a") as f:
        f.write(f"{cut}")  # killed in the middle of the next receipt: no newline
    first.close()

    second = Store(db_url)
    targets = {name: TargetSpec(name, inbox.url) for name in ("ops", "ops2", "ops3")}
    async with running_outbox(second, targets) as outbox:
        await wait_until(lambda: statuses(second) == ["sent", "sent", "sent"])
        await asyncio.sleep(0.3)
        live = DeliveryReceipts(receipts_dir(db_url), outbox.owner).path(outbox.owner)
        emptied = live is not None and live.exists() and live.read_text() == ""
    second.close()
    from agent.store import REPEAT_NOTE

    assert sorted(m["message"] for m in inbox.messages) == ["body of cut-1" + REPEAT_NOTE,
                                                            "body of unanswered-1" + REPEAT_NOTE]
    assert emptied, "every answer recorded: the receipts emptied"
    assert not path.exists(), "the dead agent's receipts are read once"
    assert live is not None and not live.exists(), "an outbox that stopped leaves no receipts"


async def test_unknown_target_is_given_up_loudly(store: Store, caplog: object) -> None:
    enqueue(store, "x", target="removed-in-reload")
    outbox = Outbox(store, {})
    await outbox.drain(timeout=10)
    [row] = store.list_notifications()
    assert row.status == "dead" and "not configured" in (row.last_error or "")


async def test_email_through_a_real_smtp_server(store: Store, mailbox: SmtpReceiver) -> None:
    enqueue(store, "m1", target="mail", title="[CRITICAL] equity drawdown on bot1")
    async with running_outbox(store, {"mail": TargetSpec("mail", mailbox.url)}):
        [mail] = await asyncio.to_thread(mailbox.wait_for, 1)
        await wait_until(lambda: statuses(store) == ["sent"])
    assert mail.subject == "[CRITICAL] equity drawdown on bot1"
    assert mail.rcpt_tos == ("ops@example.com",) and "body of m1" in mail.text()


def forbid_builds(outbox: Outbox, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, a delivery that has to build its target records it (and fails)."""
    built: list[str] = []

    def build(spec: TargetSpec) -> None:
        built.append(spec.name)
        raise AssertionError(f"target {spec.name} built at delivery")

    monkeypatch.setattr(outbox.delivery, "_build", build)
    return built


async def test_targets_are_built_when_the_outbox_starts_not_at_the_first_alert(
        store: Store, inbox: JsonReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first alert must not wait for apprise and its plugin to be imported and built."""
    targets = {"ops": TargetSpec("ops", inbox.url), "unset": TargetSpec("unset", "")}
    async with running_outbox(store, targets, poll_interval=3600) as outbox:
        await wait_until(lambda: outbox.delivery.unbuilt == [])  # nothing queued: the start built them
        built = forbid_builds(outbox, monkeypatch)
        enqueue(store, "a1")
        outbox.wake()
        await wait_until(lambda: statuses(store) == ["sent"])
    assert built == [] and [m["message"] for m in inbox.messages] == ["body of a1"]


async def test_targets_added_or_changed_by_a_reload_are_built_before_their_first_alert(
        store: Store, inbox: JsonReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    with JsonReceiver() as other:
        async with running_outbox(store, {"ops": TargetSpec("ops", inbox.url)}, poll_interval=3600) as outbox:
            await wait_until(lambda: outbox.delivery.unbuilt == [])
            before = outbox.delivery._apprise["ops"]
            # "ops" now points elsewhere and "new" is added: both are built (again), in the background.
            outbox.update_targets({"ops": TargetSpec("ops", other.url), "new": TargetSpec("new", inbox.url)})
            assert sorted(outbox.delivery.unbuilt) == ["new", "ops"]
            await wait_until(lambda: outbox.delivery.unbuilt == [])  # nothing queued: the reload built them
            assert outbox.delivery._apprise["ops"] is not before
            built = forbid_builds(outbox, monkeypatch)
            enqueue(store, "o1", "ops")
            enqueue(store, "n1", "new")
            outbox.wake()
            await wait_until(lambda: statuses(store) == ["sent", "sent"])
    assert built == []
    assert [m["message"] for m in other.messages] == ["body of o1"]
    assert [m["message"] for m in inbox.messages] == ["body of n1"]


async def test_a_reload_from_another_thread_builds_in_the_outboxs_loop(store: Store,
                                                                       inbox: JsonReceiver) -> None:
    async with running_outbox(store, {}, poll_interval=3600) as outbox:
        await asyncio.sleep(0.1)  # started: the empty target set is prepared
        await asyncio.to_thread(outbox.update_targets, {"ops": TargetSpec("ops", inbox.url)})
        await wait_until(lambda: outbox.delivery.unbuilt == [])
    assert outbox.delivery._apprise["ops"] is not None


def test_receipts_of_outboxes_long_gone_are_swept(tmp_path: Path) -> None:
    """Files of outboxes that died with every answer recorded (or whose database was replaced)
    belong to no claim: swept once a day old, never the outbox's own."""
    import os
    import time

    mine = DeliveryReceipts(tmp_path, "agent@h:1:1:mine")
    old = DeliveryReceipts(tmp_path, "agent@h:2:1:old")
    recent = DeliveryReceipts(tmp_path, "agent@h:3:1:recent")
    for r in (mine, old, recent):
        r.accepted(1, datetime.now(UTC))
    day_ago = time.time() - 2 * 86400
    for r in (mine, old):
        path = r.path(r.owner)
        assert path is not None
        os.utime(path, (day_ago, day_ago))
    mine.sweep()
    assert [r.path(r.owner).exists() for r in (mine, old, recent)] == [True, False, True]  # type: ignore[union-attr]


async def test_a_receipts_directory_that_is_a_file_does_not_stop_the_crash_alerts(
        db_url: str, inbox: JsonReceiver) -> None:
    """Receipts are best effort: a receipt that cannot be written costs what it did before (a
    repeat). ``var/outbox-receipts`` a file (a mistake, a restore of a wrong archive) made the
    outbox of an agent restarted after a crash die at start: the dead agent's receipts "forgotten"
    with ``unlink`` under a file raised, and nothing was delivered at all, the crash's alert
    included."""
    first = Store(db_url)
    first.migrate()
    enqueue(first, "interrupted-1")
    gone = subprocess.Popen(["true"])  # an agent that claimed the row, then died
    gone.wait()
    owner = str(ClaimOwner("agent", socket.gethostname(), gone.pid, "1", "x"))
    first.claim_due_notifications(datetime.now(UTC), owner=owner, lease=3600)
    first.close()
    where = receipts_dir(db_url)
    assert where is not None
    where.write_text("not a directory\n")

    second = Store(db_url)
    async with running_outbox(second, {"ops": TargetSpec("ops", inbox.url)}):
        enqueue(second, "new-1")
        await wait_until(lambda: statuses(second) == ["sent", "sent"])
    second.close()
    assert len(inbox.messages) == 2
