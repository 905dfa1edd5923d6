"""The CLI never creates the agent's database (issue 14, item 6): `agent status`, `ack`,
`silence`, `history`, `explain` and `run-playbook --check` (which changes nothing, a database
file included) on a database that is not there fail loudly (exit 4, what to
check) instead of writing where the resident agent never reads."""
from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli.main import main
from tests.e2e.harness import AgentWorld


@pytest.mark.parametrize("args", [["status"], ["ack", "1"], ["silence", "--list"], ["history"], ["explain", "1"],
                                  ["run-playbook", "p", "--check"]])
def test_a_command_on_a_missing_database_exits_4_and_creates_nothing(tmp_path: Path, args: list[str],
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    world = AgentWorld(tmp_path / "world", "unix:///nonexistent.sock", "json://127.0.0.1:9/")
    world.write_playbook("p", "version: 1\nname: p\nhosts: local\ntasks:\n  - name: nothing\n"
                              "    command: {argv: [\"true\"]}\n")
    assert not world.db_path.exists()
    code = main([*args, "--inventory", str(world.inventory), "--store", world.store_url])
    assert code == 4
    assert "does not exist" in capsys.readouterr().err
    assert not world.db_path.exists()


@pytest.mark.parametrize("args", [["status"], ["run-playbook", "emergency", "--check"], ["history"], ["halt", "--status"]])
def test_an_inventory_named_on_the_command_line_must_exist(tmp_path: Path, args: list[str],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Only the default inventory may be absent (the built-in one stands in); a named one that
    is not there is a usage error, never a silent switch to the built-in inventory."""
    code = main([*args, "--inventory", str(tmp_path / "no-such-inventory.yaml")])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_history_says_what_people_did(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Plays run by people (here and on the web page: the same audit), silences and acks are in
    `agent history`, one line per run, beside the incidents; the agent's own tasks are not."""
    from datetime import UTC, datetime

    from agent.engine.operator_actions import create_silence
    from agent.store import Store

    world = AgentWorld(tmp_path / "world", "unix:///nonexistent.sock", "json://127.0.0.1:9/")
    world.write_playbook("p", "version: 1\nname: p\nhosts: local\ntasks:\n  - name: one\n    command: {argv: [\"true\"]}\n"
                              "  - name: two\n    command: {argv: [\"true\"]}\n")
    args = ["--inventory", str(world.inventory), "--store", world.store_url]
    for _ in range(2):
        assert main(["run-playbook", "p", "--yes", *args]) == 0
    st = Store(world.store_url)
    try:
        now = datetime.now(UTC)
        create_silence(st, {"check": "bot*"}, seconds=600, reason="deploy", by="ana (web)", now=now)
        st.record_action_run(play="bot-health", host="local", task="restart", module="supervisor", actor="agent",
                             started_at=now)
    finally:
        st.close()
    capsys.readouterr()
    assert main(["history", *args]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert out.count("ran p on local: 2 task(s)") == 2, out
    assert "silence #1 by ana (web) for 10m:" in out and "check=bot* (deploy)" in out, out
    assert "bot-health" not in out and "restart" not in out, out


def test_history_names_who_acked_and_silenced_and_which_incident(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 17 (F5): the "who" column was empty for acks and silences (the actor only in the
    text), an ack row did not name its incident, and a silence that ran out by time had no row."""
    from datetime import UTC, datetime, timedelta

    from agent.cli.common import console
    from agent.core.states import State
    from agent.engine.operator_actions import acknowledge, create_silence, end_silence
    from agent.store import Store

    world = AgentWorld(tmp_path / "world", "unix:///nonexistent.sock", "json://127.0.0.1:9/")
    world.write_playbook("p", "version: 1\nname: p\nhosts: local\ntasks:\n  - name: one\n    command: {argv: [\"true\"]}\n")
    args = ["--inventory", str(world.inventory), "--store", world.store_url]
    st = Store(world.store_url)
    try:
        st.migrate()
        now = datetime.now(UTC)
        inc = st.open_incident(play="health", host="local", check="disk used", state=State.CRITICAL,
                               severity="critical", opened_at=now - timedelta(minutes=30), summary="disk full")
        acknowledge(st, inc, by="web:ana", comment="on it", now=now - timedelta(minutes=20))
        ran_out = create_silence(st, {"check": "disk*"}, seconds=600, reason="swap", by="bo",
                                 now=now - timedelta(minutes=25))
        ended = create_silence(st, {"host": "local"}, seconds=3600, reason="", by="web:ana",
                               now=now - timedelta(minutes=10))
        end_silence(st, ended, by="carl", now=now - timedelta(minutes=5))
    finally:
        st.close()
    monkeypatch.setattr(console, "width", 300)
    capsys.readouterr()
    assert main(["history", *args]) == 0
    rows = [" ".join(line.replace("│", " ").split()) for line in capsys.readouterr().out.splitlines()]
    assert any(f"web:ana acknowledged incident #{inc} (health/local/disk used): on it" in r for r in rows), rows
    assert any(f"bo silence #{ran_out} by bo for 10m:" in r for r in rows), rows
    assert any(f"(its time) silence #{ran_out} ran out (set by bo for 10m: check=disk* (swap))" in r
               for r in rows), rows
    assert any(f"web:ana silence #{ended} by web:ana for 1h:" in r for r in rows), rows
    assert any(f"carl silence #{ended} expired by carl" in r for r in rows), rows


@pytest.mark.parametrize(("given", "ok"), [("30d", True), ("720h", True), ("31d", False), ("90d", False),
                                           ("0s", False)])
def test_a_silence_lasts_at_most_30_days(given: str, ok: bool) -> None:
    """``--for 90d`` (or the page's duration) was taken as written, and shown without a year."""
    from agent.engine.operator_actions import MAX_SILENCE_S, SilenceUsage, parse_for

    if ok:
        assert parse_for(given) <= MAX_SILENCE_S
    else:
        with pytest.raises(SilenceUsage):
            parse_for(given)
