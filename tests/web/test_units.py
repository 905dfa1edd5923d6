"""The page's pure parts: the verdict, users and sign-in throttling, stops, sparklines, metrics,
and the read-only store (it cannot write, and never holds up a writer)."""
from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.web.auth import Sessions, SignInThrottle, User, UsersError, tokens_match, users_from_env
from agent.web.sparkline import sparkline
from agent.web.trading import Order, bucket_quantile, day_from_points, parse_agent_metrics, stop_for
from agent.web.verdict import Facts, decide

facts = st.builds(
    Facts, agent_running=st.booleans(), agent_fresh=st.booleans(), store_readable=st.booleans(),
    bot_running=st.booleans(), bot_status=st.sampled_from([None, "healthy", "degraded", "halted"]),
    halted_reason=st.sampled_from([None, "control", "daily loss"]), exchange_ok=st.booleans(),
    open_incidents=st.integers(0, 5), positions_without_stop=st.lists(st.sampled_from(["BTC", "ETH"]),
                                                                      max_size=2).map(tuple),
    halts=st.lists(st.sampled_from(["control: operator", "daily_loss: -5 %"]), max_size=2).map(tuple),
    agent_answers=st.booleans(),
    exposure_orders=st.lists(st.sampled_from(["ETH buy 0.5 @ 1800"]), max_size=1).map(tuple),
    account_now=st.booleans(), account_seen_at=st.sampled_from([None, "12:00:00 UTC"]),
    agent_missed_last_read=st.booleans(), programs_known=st.booleans(),
    agent_loop_stale_s=st.sampled_from([None, 4.0, 12.0]), agent_loop_blocked=st.booleans(),
).filter(lambda f: f.agent_loop_stale_s is not None or not f.agent_loop_blocked).filter(lambda f: f.account_seen_at is not None or not (f.positions_without_stop or f.exposure_orders)).filter(
    lambda f: f.programs_known or not (f.agent_running or f.bot_running))


@given(facts)
def test_verdict_is_the_worst_that_holds(f: Facts) -> None:
    v = decide(f)
    unprotected = (not f.agent_running or not f.agent_answers or not f.agent_fresh
                   or bool(f.positions_without_stop) or f.agent_loop_blocked)
    halted = f.bot_status == "halted" or bool(f.halts)  # the halt file holds while the bot is down
    missed = f.agent_running and f.agent_answers and f.agent_missed_last_read
    loop_stale = (f.agent_running and f.agent_answers and not f.agent_loop_blocked
                  and f.agent_loop_stale_s is not None)
    degraded = (not f.store_readable or f.open_incidents > 0 or not f.bot_running or f.bot_status != "healthy"
                or not f.exchange_ok or bool(f.exposure_orders) or not f.account_now or missed or loop_stale)
    expected = "UNPROTECTED" if unprotected else "HALTED" if halted else "DEGRADED" if degraded else "SAFE"
    assert v.level == expected
    assert (v.level == "SAFE") == (v.reasons == ())
    # New entries only from a running bot that answers and is not halted.
    assert v.entries_allowed == (f.bot_running and f.bot_status in ("healthy", "degraded") and not f.halts)
    for coin in f.positions_without_stop:
        assert any(coin in r for r in v.reasons)
    for halt in f.halts:  # named whatever else is wrong
        assert any(halt in r for r in v.reasons) and halt in v.entries_reason
    if f.agent_running and not f.agent_answers:  # hung: said as such, not as a calm page
        assert any("the agent does not answer" in r for r in v.reasons)
    for order in f.exposure_orders:
        assert any(order in r for r in v.reasons)
        if halted:  # a halt does not stop a resting order filling: the answer to "new entries?" says so
            assert "still fill and add exposure" in v.entries_reason
    if not f.account_now:  # unknown now: said as such, never read as "none" (issue 17, F1)
        assert any("unknown" in r for r in v.reasons)
        if f.account_seen_at:
            assert any(f.account_seen_at in r for r in v.reasons)
        if halted:
            assert "resting orders unknown" in v.entries_reason
    if not f.programs_known:  # supervisord silent: unknown, never "not running"
        assert not any("is not running" in r for r in v.reasons) and "not running" not in v.entries_reason
        assert any("supervisord does not answer" in r for r in v.reasons)
    if missed:  # one unanswered read: visible, not yet "hung" (issue 17, F3)
        assert any("the agent did not answer its last read" in r for r in v.reasons)
    if loop_stale:  # its loop found not run once: visible, not yet "blocked" (issue 17, w3 1)
        assert any("the agent's loop has not run for" in r for r in v.reasons)
    if f.agent_running and f.agent_answers and f.agent_loop_blocked:
        assert any("event loop has not run" in r for r in v.reasons)
    if f.programs_known and f.bot_running and f.bot_status is None and not halted:
        # running for supervisord but silent (SIGSTOP): unknown, not "not running" (issue 17, w3 5)
        assert v.entries_reason.startswith("unknown: the bot does not answer /health"), v.entries_reason


def test_users_from_env_roles_and_named_users() -> None:
    users = users_from_env({"OP": "secret-op-1234", "VIEW": "secret-view-1234", "OP_ALICE": "alice-pw-1234",
                            "VIEW_BOB": "bob-pw-12345", "OPX": "not-a-user", "VIEW_EMPTY": ""},
                           operator_env="OP", viewer_env="VIEW")
    assert len(users) == 4
    assert users.authenticate("operator", "secret-op-1234") == User("operator", "operator")
    assert users.authenticate("alice", "alice-pw-1234") == User("alice", "operator")
    assert users.authenticate("bob", "bob-pw-12345") == User("bob", "viewer")
    assert users.authenticate("viewer", "secret-op-1234") is None  # another user's password
    assert users.authenticate("empty", "") is None
    assert users.authenticate("opx", "not-a-user") is None
    with pytest.raises(UsersError, match="two roles"):
        users_from_env({"OP_SAM": "a-pw-12345", "VIEW_SAM": "b-pw-12345"}, operator_env="OP", viewer_env="VIEW")


@given(st.text(max_size=40), st.text(max_size=40))
def test_authenticate_accepts_exactly_the_password(name: str, password: str) -> None:
    users = users_from_env({"OP": "the-right-password"}, operator_env="OP", viewer_env="VIEW")
    ok = users.authenticate(name, password)
    assert (ok is not None) == (name == "operator" and password == "the-right-password")


def test_csrf_tokens_match_only_when_equal_and_present() -> None:
    assert tokens_match("abc", "abc")
    assert not tokens_match("abc", "abd") and not tokens_match("abc", "") and not tokens_match(None, None)


def test_sessions_expire_and_end() -> None:
    now = [1000.0]
    sessions = Sessions(lifetime=60, clock=lambda: now[0])
    s = sessions.create(User("operator", "operator"))
    assert sessions.get(s.id) is s and len(s.id) >= 40 and s.csrf != s.id
    now[0] += 61
    assert sessions.get(s.id) is None
    s2 = sessions.create(User("viewer", "viewer"))
    sessions.end(s2.id)
    assert sessions.get(s2.id) is None and sessions.get("") is None


def test_sign_in_throttle_window_slides() -> None:
    now = [0.0]
    t = SignInThrottle(limit=3, window=100, clock=lambda: now[0])
    for i in range(3):
        assert t.retry_after("user:x", "addr:1") == 0
        now[0] = i * 10.0
        t.failed("user:x", "addr:1")
    assert t.retry_after("user:x") == pytest.approx(80)  # now=20; the first failure (t=0) leaves at 100
    assert t.retry_after("addr:1") > 0 and t.retry_after("user:y", "addr:2") == 0
    now[0] = 100.5
    assert t.retry_after("user:x") == 0


@given(st.floats(1, 1e6), st.floats(-0.5, 0.5), st.booleans())
def test_stop_distance_is_positive_until_triggered(mark: float, offset: float, long: bool) -> None:
    stop = mark * (1 - offset) if long else mark * (1 + offset)
    side = "A" if long else "B"
    order = Order("BTC", side, 1.0, stop, stop, True, "Stop Market", 1)
    shown = stop_for(1.0 if long else -1.0, mark, [order])
    assert shown.px == stop and shown.protected
    assert shown.distance_pct == pytest.approx(offset * 100, abs=1e-6)


def test_stop_needs_a_reduce_only_stop_loss_on_the_closing_side() -> None:
    same_side = Order("BTC", "B", 1.0, 90, 90, True, "Stop Market", 1)
    not_reduce = Order("BTC", "A", 1.0, 90, 90, False, "Stop Market", 2)
    plain_limit = Order("BTC", "A", 1.0, 110, None, True, "Limit", 3)
    take_profit = Order("BTC", "A", 1.0, 110, 110, True, "Take Profit Market", 6)
    shown = stop_for(1.0, 100.0, [same_side, not_reduce, plain_limit, take_profit])
    assert (shown.px, shown.distance_pct, shown.protected) == (None, None, False)
    near = Order("BTC", "A", 0.5, 95, 95, True, "Stop Market", 4)
    far = Order("BTC", "A", 0.5, 80, 80, True, "Stop Limit", 5)
    shown = stop_for(1.0, 100.0, [far, near])
    assert (shown.px, shown.distance_pct, shown.protected) == (95, pytest.approx(5.0), True)
    shown = stop_for(1.0, 100.0, [near, take_profit])  # half the size: shown, not protected
    assert (shown.px, shown.protected) == (95, False)
    short_stop = Order("BTC", "B", 1.0, 105, 105, True, "Stop Market", 7)
    assert stop_for(-1.0, 100.0, [short_stop]).protected
    # A stop-loss past the entry (a gain locked in; the emergency places its stops from the
    # current price) still closes the position on an adverse move: it protects.
    locked_gain = Order("BTC", "A", 1.0, 104, 104, True, "Stop Market", 8)
    assert stop_for(1.0, 110.0, [locked_gain]).protected


def test_day_loss_and_drawdown_follow_the_bots_definition() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    day = day_from_points("2026-01-01", [(t, 1000.0), (t + timedelta(minutes=1), 1100.0),
                                         (t + timedelta(minutes=2), 960.0)], limit_pct=5.0)
    assert day is not None
    assert day.loss_pct == pytest.approx(4.0) and day.used_pct == pytest.approx(80.0)
    assert day.drawdown_pct == pytest.approx((1100 - 960) / 1100 * 100)
    assert day_from_points("x", [], 5.0) is None


def test_sparkline_draws_values_and_bounds_and_escapes_the_title() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    svg = str(sparkline([(t, 1.0, "OK"), (t + timedelta(seconds=10), 95.0, "CRITICAL")], 80, 90, title="<x>"))
    assert svg.count("stroke-dasharray") == 2 and "<polyline" in svg and "&lt;x&gt;" in svg and "<x>" not in svg
    assert str(sparkline([(t, 1.0, "OK")])) == ""


METRICS = """# TYPE botwarden_scheduler_lateness_seconds histogram
botwarden_scheduler_lateness_seconds_bucket{le="0.001"} %d
botwarden_scheduler_lateness_seconds_bucket{le="0.01"} %d
botwarden_scheduler_lateness_seconds_bucket{le="0.1"} %d
botwarden_scheduler_lateness_seconds_bucket{le="+Inf"} %d
botwarden_scheduler_lateness_seconds_count %d
botwarden_scheduler_lateness_seconds_sum 1.0
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 9.5e+07
"""


def test_lateness_quantiles_come_from_the_interval_since_the_last_read() -> None:
    first, buckets = parse_agent_metrics(METRICS % (900, 990, 1000, 1000, 1000), None)
    assert first["lateness_p50_ms"] == 1.0 and first["lateness_p99_ms"] == 10.0
    assert first["rss_mb"] == pytest.approx(95.0)
    # 100 new runs since, all between 10 and 100 ms: the window says so, the lifetime would not.
    later, _ = parse_agent_metrics(METRICS % (900, 990, 1100, 1100, 1100), buckets)
    assert later["lateness_p50_ms"] == 100.0 and later["lateness_samples"] == 100
    assert bucket_quantile({math.inf: 0.0}, 0.5) is None


def test_read_only_store_cannot_write_and_never_blocks_the_writer(tmp_path: Path) -> None:
    from agent.core.states import State
    from agent.store import Store
    from agent.store.read_only import ReadOnlyStore, StoreMissingError

    url = f"sqlite:///{tmp_path / 'agent.db'}"
    with pytest.raises(StoreMissingError):
        ReadOnlyStore(url)
    assert not (tmp_path / "agent.db").exists()  # a reader never creates the store
    writer = Store(url)
    writer.migrate()
    reader = ReadOnlyStore(url)
    try:
        with pytest.raises(Exception, match=r"readonly|read-only"):
            reader.add_event("x", None, None, "must not land", {})
        now = datetime.now(UTC)
        # A reader in the middle of reading (its statement open) does not stop a commit.
        done = threading.Event()
        with reader._session() as s:
            s.execute(__import__("sqlalchemy").text("SELECT count(*) FROM events")).all()

            def write() -> None:
                writer.record_result(play="p", host="h", check="c", state=State.OK, observed_at=now, value=1)
                done.set()

            th = threading.Thread(target=write)
            th.start()
            assert done.wait(2.0), "the writer waited for the reader"
            th.join()
        series = reader.recent_results_per_check(since=now - timedelta(minutes=1))
        assert [r.value for r in series["p/h/c"]] == ["1"]
        assert reader.recent_events(kind="x") == []
    finally:
        reader.close()
        writer.close()
