"""A play run cut short never goes unnoticed (issue 13, F3/F4), with the real `agent` processes.

`agent run-playbook` is killed (SIGKILL: nothing of it runs any more) or stopped by a signal
(SIGINT, SIGHUP with its terminal gone) in the middle of a play; the resident agent, started
afterwards, finds the run: it pages once what was and was not done and what to type, or, for a
play that says `on_interrupt: resume`, runs it again to its end and its own message is the one
page. The markers the tasks write are the side effects the operator cares about."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from agent.store import PlayRunRecord
from tests.e2e.harness import BIN, AgentWorld, wait_until
from tests.support.receivers import JsonReceiver

pytestmark = pytest.mark.slow


def play(name: str, marks: Path, *, resume: bool = False, second_s: float = 60) -> str:
    """first -> second (waits `second_s` the first time only) -> third -> (resume: a message)."""
    second = (f"test -e {marks}/second-started && exit 0; touch {marks}/second-started; "
              f"sleep {second_s}; touch {marks}/second-done")
    text = f"""\
version: 1
name: {name}
hosts: local
{"on_interrupt: resume" if resume else ""}
tasks:
  - name: first
    command: {{argv: [touch, "{marks}/first"]}}
  - name: second
    command: {{argv: [sh, -c, "{second}"]}}
    timeout: 120s
  - name: third
    command: {{argv: [touch, "{marks}/third"]}}
"""
    if resume:
        text += """\
  - name: tell
    notify: {title: "{{ host }}: play done", body: "{{ reason | default('') }}", severity: critical}
"""
    return text


def start_cli(world: AgentWorld, name: str, **kw: Any) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTWARDEN_")}
    return subprocess.Popen(
        [str(BIN / "agent"), "run-playbook", name, "--yes", "--inventory", str(world.inventory), "--store",
         world.store_url, "--playbooks", str(world.playbooks)], cwd=world.root, env=env, start_new_session=True,
        **kw)


def runs(world: AgentWorld, name: str) -> list[PlayRunRecord]:
    return [r for r in world._read(lambda st: st.play_runs()) if r.play == name]


def first_done(world: AgentWorld, name: str) -> bool:
    got = runs(world, name)
    return bool(got) and any(d.get("task") == "first" for d in got[0].done)


def wait_drained(world: AgentWorld, receiver: JsonReceiver) -> list[dict[str, Any]]:
    """Every queued message delivered; returns what the receiver got."""
    wait_until(lambda: world.notifications() and all(n.status == "sent" for n in world.notifications()), 30,
               what="the outbox drained")
    return receiver.wait_for(len(world.notifications()), 10)


def test_a_play_killed_mid_run_is_paged_once_with_what_is_left(tmp_path: Path, supervisor: Any,
                                                                receiver: JsonReceiver) -> None:
    world = AgentWorld(tmp_path / "w", supervisor.url, receiver.url)
    marks = tmp_path / "marks"
    marks.mkdir()
    world.write_playbook("slow", play("slow", marks))
    cli = start_cli(world, "slow", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: (marks / "second-started").exists() and first_done(world, "slow"), 30,
                   what="the play under way in its second task")
        cli.kill()
        cli.wait(10)
        world.start()
        wait_until(lambda: runs(world, "slow")[0].handled_at is not None, 30, what="the run handled")
        got = wait_drained(world, receiver)
        world.stop()
        assert len(got) == 1, got
        text = got[0]["title"] + "\n" + got[0]["message"]
        assert "slow cut short on local" in text, text
        assert "done: first (changed)" in text and "NOT done: second; third" in text, text
        assert "agent run-playbook slow --limit local --yes" in text, text
        assert not (marks / "third").exists()  # told, not re-run: the play did not say resume
        (run,) = runs(world, "slow")
        assert run.ended_at is None and run.handled == "told"
    finally:
        if cli.poll() is None:
            cli.kill()
        world.stop()


def test_a_resumable_play_killed_mid_run_is_finished_and_its_own_message_is_the_one_page(
        tmp_path: Path, supervisor: Any, receiver: JsonReceiver) -> None:
    world = AgentWorld(tmp_path / "w", supervisor.url, receiver.url)
    marks = tmp_path / "marks"
    marks.mkdir()
    world.write_playbook("finisher", play("finisher", marks, resume=True))
    cli = start_cli(world, "finisher", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: (marks / "second-started").exists() and first_done(world, "finisher"), 30,
                   what="the play under way in its second task")
        cli.kill()
        cli.wait(10)
        assert not (marks / "third").exists()
        world.start()
        wait_until(lambda: (marks / "third").exists(), 30, what="the agent finishing the play")
        wait_until(lambda: all(r.ended_at is not None for r in runs(world, "finisher")[:1])
                   and len(runs(world, "finisher")) == 2, 30, what="the run again ended")
        got = wait_drained(world, receiver)
        world.stop()
        assert len(got) == 1, got  # the play's own message; no separate page
        assert got[0]["title"] == "local: play done"
        assert "cut short" in got[0]["message"] and "first (changed)" in got[0]["message"], got[0]
        again, first = runs(world, "finisher")
        assert first.handled is not None and first.handled.startswith(f"resumed as run {again.run}: done")
        assert again.resumed_from == first.run and again.outcome == "done" and again.actor == "agent (resume)"
    finally:
        if cli.poll() is None:
            cli.kill()
        world.stop()


@pytest.mark.parametrize("title, messages", [
    ("{{ host }}: halted", 1),
    ("{{ host }}: halted{{ ' (finishing a run cut short)' if 'cut short' in (reason | default('')) else '' }}", 2),
])
def test_a_message_the_run_cut_short_sent_is_not_sent_again_by_its_run_again_unless_it_changed(
        tmp_path: Path, supervisor: Any, receiver: JsonReceiver, title: str, messages: int) -> None:
    """The emergency's shape: its page is sent before its last task; killed after the page, the
    run again (from the first task) must not page the same thing twice (agent-killed-mid-handover,
    seeds 2737802058, 624417678). A message that says something new is sent."""
    world = AgentWorld(tmp_path / "w", supervisor.url, receiver.url)
    marks = tmp_path / "marks"
    marks.mkdir()
    text = play("paged", marks, resume=True).replace("  - name: second", f"""\
  - name: tell first
    notify: {{title: "{title}", body: "{{{{ reason | default('') }}}}", severity: critical}}
  - name: second""")
    world.write_playbook("paged", text)
    cli = start_cli(world, "paged", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: (marks / "second-started").exists() and first_done(world, "paged")
                   and any(d.get("task") == "tell first" for d in runs(world, "paged")[0].done), 30,
                   what="the play under way in its second task, its first message queued")
        cli.kill()
        cli.wait(10)
        world.start()
        wait_until(lambda: (marks / "third").exists(), 30, what="the agent finishing the play")
        wait_until(lambda: len(runs(world, "paged")) == 2 and runs(world, "paged")[0].ended_at is not None
                   and runs(world, "paged")[1].handled is not None, 30, what="the run again ended")
        got = wait_drained(world, receiver)
        world.stop()
        titles = sorted(m["title"] for m in got)
        assert len(got) == messages + 1, titles  # + the play's last message ("local: play done")
        assert "local: play done" in titles and "local: halted" in titles, titles
        again, first = runs(world, "paged")
        assert again.run == f"{first.run}.2" and again.outcome == "done"
        told = next(d for d in again.done if d.get("task") == "tell first")
        assert told["status"] == ("ok" if messages == 1 else "changed"), told
    finally:
        if cli.poll() is None:
            cli.kill()
        world.stop()


def test_sighup_with_the_terminal_gone_finishes_the_task_records_what_is_left_and_is_paged(
        tmp_path: Path, supervisor: Any, receiver: JsonReceiver) -> None:
    """An SSH hang-up: the terminal is gone (its pipes closed: every write fails) and SIGHUP
    arrives. The task under way finishes, no other starts, the run's record says what is left,
    and the resident agent pages it."""
    world = AgentWorld(tmp_path / "w", supervisor.url, receiver.url)
    marks = tmp_path / "marks"
    marks.mkdir()
    world.write_playbook("slow", play("slow", marks, second_s=3))
    cli = start_cli(world, "slow", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: (marks / "second-started").exists(), 30, what="the second task under way")
        assert cli.stdout is not None and cli.stderr is not None
        cli.stdout.close()
        cli.stderr.close()
        cli.send_signal(signal.SIGHUP)
        assert cli.wait(60) == 1
        assert (marks / "second-done").exists() and not (marks / "third").exists()
        (run,) = runs(world, "slow")
        assert (run.outcome, run.signal, run.left("local")) == ("interrupted", "SIGHUP", ["third"])
        world.start()
        wait_until(lambda: runs(world, "slow")[0].handled_at is not None, 30, what="the run handled")
        got = wait_drained(world, receiver)
        assert len(got) == 1, got
        text = got[0]["title"] + "\n" + got[0]["message"]
        assert "stopped by SIGHUP" in text and "NOT done: third" in text, text
    finally:
        if cli.poll() is None:
            cli.kill()
        world.stop()


def test_ctrl_c_says_on_stderr_what_is_left(tmp_path: Path, supervisor: Any, receiver: JsonReceiver) -> None:
    world = AgentWorld(tmp_path / "w", supervisor.url, receiver.url)
    marks = tmp_path / "marks"
    marks.mkdir()
    world.write_playbook("finisher", play("finisher", marks, resume=True, second_s=2))
    cli = start_cli(world, "finisher", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: (marks / "second-started").exists(), 30, what="the second task under way")
        cli.send_signal(signal.SIGINT)
        out, err = cli.communicate(timeout=60)
        assert cli.returncode == 1
        text = " ".join(err.decode().split())
        assert "PLAY INTERRUPTED by SIGINT" in text, text
        assert "local: NOT done: third; tell" in text, text
        assert "agent run-playbook finisher --limit local --yes" in text, text
        assert "nothing re-runs it" in text, text  # Ctrl-C is a decision: the agent tells, never re-runs
        assert (marks / "second-done").exists() and not (marks / "third").exists()
        assert "PLAY RECAP" in out.decode()
        (run,) = runs(world, "finisher")
        assert (run.outcome, run.signal) == ("interrupted", "SIGINT")
    finally:
        if cli.poll() is None:
            cli.kill()
        world.stop()


def test_a_run_under_way_in_a_live_process_is_left_alone(tmp_path: Path, supervisor: Any,
                                                        receiver: JsonReceiver) -> None:
    """The sweep judges the owner, not the age: a long run of a live `run-playbook` is not cut short."""
    world = AgentWorld(tmp_path / "w", supervisor.url, receiver.url)
    marks = tmp_path / "marks"
    marks.mkdir()
    world.write_playbook("slow", play("slow", marks, second_s=60))
    cli = start_cli(world, "slow", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: (marks / "second-started").exists(), 30, what="the second task under way")
        world.start()
        wait_until(lambda: any(e.message.startswith("agent started") for e in world.events("start")), 30,
                   what="the agent started")
        deadline = time.monotonic() + 7  # more than one sweep (SWEEP_SECONDS): bounded wait, behaviour asserted
        while time.monotonic() < deadline:
            assert runs(world, "slow")[0].handled_at is None
            time.sleep(0.5)
        assert not world.events("play-run-cut-short")
    finally:
        if cli.poll() is None:
            cli.kill()
        world.stop()


@pytest.mark.parametrize("shape", ["anchor", "until"])
def test_a_message_a_run_sends_twice_on_purpose_is_sent_twice(tmp_path: Path, supervisor: Any,
                                                              receiver: JsonReceiver, shape: str) -> None:
    """One run, never cut short: a notify task written once and run twice (a YAML anchor used
    again later in the play; `retries` with an `until` not met) sends its message each time, as
    it did before messages had a key per play run. The key (task name and line, title) is the
    same both times: the second message was taken for the run cut short's and dropped."""
    world = AgentWorld(tmp_path / "w", supervisor.url, receiver.url)
    if shape == "anchor":
        tasks = """\
  - &progress
    name: progress
    notify: {title: "{{ host }}: maintenance under way", body: "a step", severity: critical}
  - name: step
    command: {argv: ["true"]}
  - *progress
"""
    else:
        tasks = """\
  - name: progress
    notify: {title: "{{ host }}: maintenance under way", body: "a step", severity: critical}
    retries: 1
    delay: 0s
    until: "false"
    ignore_errors: true
"""
    world.write_playbook("twice", f"version: 1\nname: twice\nhosts: local\ntasks:\n{tasks}")
    cli = start_cli(world, "twice", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert cli.wait(60) == 0
        got = wait_drained(world, receiver)
        assert [m["title"] for m in got] == ["local: maintenance under way"] * 2, got
    finally:
        if cli.poll() is None:
            cli.kill()
        world.stop()


def test_the_agent_restarted_while_its_run_again_waits_for_a_lock_still_finishes_the_play(
        tmp_path: Path, supervisor: Any, receiver: JsonReceiver) -> None:
    """A run cut short is claimed (handled once), then its run again waits for the host's lock,
    held by an operator's `agent run-playbook` of another play. The agent is restarted meanwhile
    (`supervisorctl restart agent`, a kill): the run cut short was claimed but its run again
    never started. The agent started again must still finish it (it was never run again, nor
    told: lost, with its page)."""
    world = AgentWorld(tmp_path / "w", supervisor.url, receiver.url)
    marks = tmp_path / "marks"
    marks.mkdir()
    lock = """\
  - name: the shared lock (never acts)
    supervisor: {action: stop, program: shared}
    when: "false"
"""
    world.write_playbook("finisher", play("finisher", marks, resume=True).replace("  - name: tell", lock + "  - name: tell"))
    world.write_playbook("holder", f"""\
version: 1
name: holder
hosts: local
tasks:
  - name: hold
    command: {{argv: [sh, -c, "touch {marks}/holding; sleep 120"]}}
    timeout: 150s
{lock}""")
    cli = start_cli(world, "finisher", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    holder: subprocess.Popen[bytes] | None = None
    try:
        wait_until(lambda: (marks / "second-started").exists() and first_done(world, "finisher"), 30,
                   what="the play under way in its second task")
        cli.kill()
        cli.wait(10)
        holder = start_cli(world, "holder", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: (marks / "holding").exists(), 30, what="the operator's play holding the lock")
        world.start()
        wait_until(lambda: runs(world, "finisher")[-1].handled_at is not None, 30, what="the run claimed")
        time.sleep(1)  # waiting for the lock (bounded; nothing asserted on time)
        world.stop(signal.SIGKILL)
        holder.kill()
        holder.wait(10)
        assert not (marks / "third").exists()
        world.start()
        wait_until(lambda: (marks / "third").exists(), 30, what="the agent started again finishing the play")
        wait_until(lambda: runs(world, "finisher")[0].ended_at is not None
                   and (runs(world, "finisher")[1].handled or "").startswith("resumed as"), 30,
                   what="the run again ended")
        got = wait_drained(world, receiver)
        titles = sorted(m["title"] for m in got)
        assert titles.count("local: play done") == 1, titles
        last, waited, first = runs(world, "finisher")
        assert (waited.run, last.run) == (f"{first.run}.2", f"{first.run}.3"), (waited, last)
        assert waited.done == () and last.outcome == "done", (waited, last)
    finally:
        for p in (cli, holder):
            if p is not None and p.poll() is None:
                p.kill()
        world.stop()


def killed_in_its_second_task(world: AgentWorld, name: str, marks: Path) -> PlayRunRecord:
    """A resumable run of ``name`` SIGKILLed while its second task runs (its first done)."""
    cli = start_cli(world, name, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: (marks / "second-started").exists() and first_done(world, name), 30,
                   what="the play under way in its second task")
    finally:
        cli.kill()
        cli.wait(10)
    (run,) = runs(world, name)
    return run


def test_a_run_cut_short_that_the_operator_finished_by_hand_is_not_run_again(
        tmp_path: Path, supervisor: Any, receiver: JsonReceiver) -> None:
    """The emergency cut short, the operator ran it again by hand (to its end) before the agent
    started: the agent must not run the old one again (it would halt and flatten what the
    operator may have started since) nor page it; the operator's run said what it did."""
    world = AgentWorld(tmp_path / "w", supervisor.url, receiver.url)
    marks = tmp_path / "marks"
    marks.mkdir()
    world.write_playbook("finisher", play("finisher", marks, resume=True))
    cut = killed_in_its_second_task(world, "finisher", marks)
    by_hand = start_cli(world, "finisher", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert by_hand.wait(60) == 0
        (marks / "third").unlink()
        world.start()
        wait_until(lambda: next(r for r in runs(world, "finisher") if r.run == cut.run).handled_at is not None, 30,
                   what="the run cut short handled")
        later = next(r for r in runs(world, "finisher") if r.run != cut.run)
        got = wait_drained(world, receiver)
        world.stop()
        assert [m["title"] for m in got] == ["local: play done"]  # the operator's run's own message
        assert not (marks / "third").exists()
        assert next(r for r in runs(world, "finisher") if r.run == cut.run).handled == f"superseded by run {later.run}"
        assert len(runs(world, "finisher")) == 2  # no run again
    finally:
        if by_hand.poll() is None:
            by_hand.kill()
        world.stop()


def test_a_run_cut_short_long_ago_is_told_not_run_again(tmp_path: Path, supervisor: Any,
                                                        receiver: JsonReceiver) -> None:
    """The agent was down for an hour after the emergency was cut short: running it again now
    could flatten positions opened on purpose since; it is paged, with what to type."""
    import sqlite3
    from datetime import UTC, datetime, timedelta

    world = AgentWorld(tmp_path / "w", supervisor.url, receiver.url)
    marks = tmp_path / "marks"
    marks.mkdir()
    world.write_playbook("finisher", play("finisher", marks, resume=True))
    cut = killed_in_its_second_task(world, "finisher", marks)
    with sqlite3.connect(world.db_path) as db:  # an hour passes
        db.execute("UPDATE play_runs SET started_at = ? WHERE run = ?",
                   ((datetime.now(UTC) - timedelta(hours=1)).replace(tzinfo=None).isoformat(sep=" "), cut.run))
    try:
        world.start()
        wait_until(lambda: next(r for r in runs(world, "finisher") if r.run == cut.run).handled_at is not None, 30,
                   what="the run cut short handled")
        got = wait_drained(world, receiver)
        world.stop()
        assert len(got) == 1, got
        text = got[0]["title"] + "\n" + got[0]["message"]
        assert "finisher cut short on local" in text and "more than 15 minutes ago" in text, text
        assert "agent run-playbook finisher --limit local --yes" in text, text
        assert not (marks / "third").exists() and len(runs(world, "finisher")) == 1
    finally:
        world.stop()


def test_two_runs_of_a_play_cut_short_on_one_host_are_finished_by_one_run_again(
        tmp_path: Path, supervisor: Any, receiver: JsonReceiver) -> None:
    """The emergency cut short twice on one host (the agent's hand-over, then the operator's run
    by hand, each killed in its second task): the agent that comes back finishes it once. Before,
    the sweep read the runs that supersede once, before the first run again: the second run cut
    short was run again too (a second emergency on the host, a second 'play done' page)."""
    world = AgentWorld(tmp_path / "w", supervisor.url, receiver.url)
    marks = tmp_path / "marks"
    marks.mkdir()
    world.write_playbook("finisher", play("finisher", marks, resume=True))
    cut = []
    for _ in range(2):
        (marks / "second-started").unlink(missing_ok=True)
        known = {r.run for r in runs(world, "finisher")} if cut else set()  # no store before the first run
        cli = start_cli(world, "finisher", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda known=known: (marks / "second-started").exists() and any(
                r.run not in known and any(d.get("task") == "first" for d in r.done) for r in runs(world, "finisher")),
                30, what="the play under way in its second task")
        finally:
            cli.kill()
            cli.wait(10)
        cut.append(next(r.run for r in runs(world, "finisher") if r.run not in known))
    try:
        world.start()
        wait_until(lambda: all(r.handled_at is not None for r in runs(world, "finisher") if r.run in cut), 60,
                   what="both runs cut short handled")
        got = wait_drained(world, receiver)
        world.stop()
        again = [r for r in runs(world, "finisher") if r.resumed_from is not None]
        assert len(again) == 1, [(r.run, r.resumed_from, r.handled) for r in runs(world, "finisher")]
        assert [m["title"] for m in got] == ["local: play done"]
        assert (marks / "third").exists()
    finally:
        world.stop()
