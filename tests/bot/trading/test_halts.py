"""The halt file: the halts in force, outside the bot's database, shared by the bot and the agent.

Real files, real processes for the concurrent writers, and a randomized sequence of operations
checked against a model (hypothesis).
"""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from botwarden.halts import UNREADABLE, HaltFile, utc_day


def test_halts_hold_across_instances_and_end_only_when_cleared(tmp_path: Path) -> None:
    path = tmp_path / "var" / "bot.halt.json"
    first, new = HaltFile(path).add("control", "emergency playbook", by="agent")
    assert new and path.exists() and oct(path.stat().st_mode & 0o777) == "0o600"
    again, new_again = HaltFile(path).add("control", "halted by the bot", by="control")
    assert not new_again and again == first  # one operator halt is enough
    error, _ = HaltFile(path).add("error", "BTC: no stop-loss", by="bot", same="reason")
    assert [h.id for h in HaltFile(path).active()] == [first.id, error.id]
    assert HaltFile(path).clear([error.id]) == [error]
    assert HaltFile(path).active() == [first]
    assert HaltFile(path).clear() == [first] and HaltFile(path).active() == []


def test_a_daily_loss_halt_ends_with_its_day(tmp_path: Path) -> None:
    halts = HaltFile(tmp_path / "h.json")
    halts.add("daily_loss", "loss 6%", by="bot")
    halts.add("control", "operator", by="me")
    tomorrow = utc_day(datetime.now(UTC) + timedelta(days=1))
    assert [h.kind for h in halts.active()] == ["daily_loss", "control"]
    assert [h.kind for h in halts.active(today=tomorrow)] == ["control"]


def test_an_unreadable_halt_file_halts(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    path.write_text('{"version": 1, "halts": [{"id": "x"')  # torn by hand: fail closed
    (only,) = HaltFile(path).active()
    assert only.kind == UNREADABLE and str(path) in only.reason and "stays halted" in only.reason
    path.write_text(json.dumps({"version": 99, "halts": []}))
    assert [h.kind for h in HaltFile(path).active()] == [UNREADABLE]
    for damaged in ({}, "x", None):  # halts that are not a list: {} read as "no halt" before
        path.write_text(json.dumps({"version": 1, "halts": damaged}))
        assert [h.kind for h in HaltFile(path).active()] == [UNREADABLE], damaged
    assert [h.kind for h in HaltFile(path).clear()] == [UNREADABLE]  # an explicit resume rewrites it
    assert HaltFile(path).active() == []


_WRITER = """
import sys
from botwarden.halts import HaltFile
path, who = sys.argv[1], sys.argv[2]
for i in range(5):
    HaltFile(path).add("error", f"{who}-{i}", by=who, same="reason")
"""


def test_a_halt_file_nested_past_what_json_reads_halts(tmp_path: Path) -> None:
    """[[[[... 100 000 deep (a damaged file) raised RecursionError: the bot crashed at every start
    instead of failing closed (brk15)."""
    path = tmp_path / "halt.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    assert [h.kind for h in HaltFile(path).active()] == [UNREADABLE]


def test_writers_in_several_processes_lose_no_halt(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), f"w{n}"]) for n in range(6)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    reasons = sorted(h.reason for h in HaltFile(path).active())
    assert reasons == sorted(f"w{n}-{i}" for n in range(6) for i in range(5))


operations = st.lists(st.one_of(
    st.tuples(st.just("add"), st.sampled_from(["control", "error", "reconcile"]), st.sampled_from(["a", "b"])),
    st.tuples(st.just("clear_one"), st.integers(0, 5), st.just("")),
    st.tuples(st.just("clear_all"), st.just(""), st.just("")),
), max_size=12)


@settings(max_examples=60, deadline=None)
@given(operations)
def test_the_file_behaves_like_a_list_of_halts(tmp_path_factory: object, ops: list[tuple[str, object, str]]) -> None:
    path = Path(str(tmp_path_factory.mktemp("halts"))) / "h.json"  # type: ignore[attr-defined]
    model: list[tuple[str, str]] = []  # (kind, reason) in force, oldest first
    for op, arg, reason in ops:
        halts = HaltFile(path)
        if op == "add":
            same = "kind" if arg == "control" else "reason"
            halts.add(str(arg), reason, by="test", same=same)  # type: ignore[arg-type]
            if not any(k == arg and (same == "kind" or r == reason) for k, r in model):
                model.append((str(arg), reason))
        elif op == "clear_one":
            active = halts.active()
            if active:
                victim = active[int(str(arg)) % len(active)]
                assert halts.clear([victim.id]) == [victim]
                model.remove((victim.kind, victim.reason))
        else:
            halts.clear()
            model.clear()
        assert [(h.kind, h.reason) for h in HaltFile(path).active()] == model
