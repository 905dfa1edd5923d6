"""The report action end to end in-process: real SQLite stores, the real Notifications and
outbox, apprise delivering to a JsonReceiver on loopback. Check mode renders and sends nothing."""
from __future__ import annotations

from pathlib import Path

import pytest

from agent.modules.actions.report import ReportAction
from agent.modules.base import HostContext, RunContext
from agent.modules.registry import default_registry
from agent.notify import Notifications, Outbox
from agent.notify.routing import Router, RouteSpec, TargetSpec
from agent.store import Store
from tests.agent.reports.history import EXPECTED, build_agent_db, build_bot_db, build_bot_log
from tests.support.receivers import JsonReceiver

WINDOW = {"period": "day", "until": "2024-03-15T16:00:00+00:00", "timezone": "UTC"}


@pytest.fixture
def world(tmp_path: Path):
    bot_db = build_bot_db(tmp_path / "bot.db")
    agent_db = build_agent_db(tmp_path / "agent.db")
    build_bot_log(tmp_path / "log")
    store = Store(f"sqlite:///{agent_db}")
    with JsonReceiver() as receiver:
        targets = {"inbox": TargetSpec("inbox", receiver.url)}
        notes = Notifications(store, Router([RouteSpec("reports", ("inbox",))], targets))
        # The host vars as bot/settings.py gives them (risk, program, logdir).
        host = HostContext("local", {
            "bot": {"db_path": str(bot_db), "program": "bot", "risk": {"daily_loss_limit_pct": 5.0}},
            "agent": {"db_path": str(agent_db)}, "supervisor": {"logdir": str(tmp_path / "log")},
            "var_dir": str(tmp_path / "var")})
        yield store, notes, Outbox(store, targets), receiver, host
    store.close()


def ctx(host: HostContext, notes: Notifications, check_mode: bool = False) -> RunContext:
    return RunContext(host=host, notifier=notes, check_mode=check_mode, template_vars={})


async def test_sends_the_report_with_the_exact_figures(world) -> None:
    store, notes, outbox, receiver, host = world
    params = ReportAction.Params.model_validate({**WINDOW, "route": "reports"})
    result = await ReportAction().run(params, ctx(host, notes))
    assert (result.failed, result.changed) == (False, True), result.msg
    assert result.msg == ("sent day 2024-03-15 report to 1 target(s): 4 trade(s), realized P&L -2.00, "
                          "3 incident(s); chart attached for email")
    assert Path(result.data["chart"]).read_bytes().startswith(b"\x89PNG")
    report = result.data["report"]
    for key in ("trades", "wins", "losses", "win_rate", "realized_pnl", "total_pnl", "fees", "fills",
                "max_drawdown_usd", "max_drawdown_pct", "incident_count", "incident_seconds",
                "remediation_runs", "halts", "downtime_seconds"):
        assert report[key] == EXPECTED[key], key
    assert (report["best_trade"]["pnl"], report["worst_trade"]["pnl"]) == (4.75, -10.25)

    await outbox.drain(timeout=10)
    [message] = receiver.wait_for(1)
    assert message["title"] == "Trading report day 2024-03-15 on local"
    body = message["message"]
    for line in (
        "2024-03-15 00:00 UTC to 2024-03-15 16:00 UTC",
        "- trades closed: 4 (opened: 6; wins 2, losses 1)",
        "- win rate: 50.0 %",
        "- realized P&L: -2.00 USD (net of fees)",
        "- total P&L (equity change): +18.00 USD (1000.00 -> 1018.00)",
        "- best trade: +4.75 USD (BTC long, #1)",
        "- worst trade: -10.25 USD (ETH short, #2)",
        "- max drawdown: 2.50 % (25.50 USD)",
        "- profit factor: 0.80 (gross profit 8.25 / gross loss 10.25 USD)",
        "- Sharpe ratio (daily returns, not annualised): n/a (1 daily return(s); needs 2 or more that vary)",
        "- daily loss used on 2024-03-15 (UTC): 0.0 % of the 5 % limit (day P&L +1.80 %; worst -0.55 %, "
        "11.0 % of the limit)",
        "- bot log: 9 line(s) (critical 1, error 5, info 2, warning 1), 2 unstructured",
        "  - 3 x error loop_error: exchange refused a request",
        "  - 1 x error order_error: order rejected for key ***",
        "- fees: 4.06 USD over 11 fill(s)",
        "Open positions: 2 (unrealized +1.25 USD)",
        "- BTC -0.01 @ 61000.00 (unrealized -0.25 USD)",
        "- uptime of the trading loop: 75.16 % (down 14310 s)",
        "- incidents: 3 (19800 s in total)",
        "#3 warning bot-health/bot memory on local: 3600 s (still open)",
        "- remediations run: 3",
        "- restart-bot: 2 run(s), 1 failed",
        "- #2 ETH short 0.5: -10.25 USD (stop_loss)",
    ):
        assert line in body, f"{line!r} not in:\n{body}"
    assert "ab" * 32 not in body  # the key in the log line is redacted
    assert "API calls" not in body  # a past day: the counters read now would not be its figures
    [row] = [n for n in store.list_notifications() if n.kind == "task"]
    assert row.status == "sent"


async def test_check_mode_renders_and_sends_nothing(world) -> None:
    store, notes, outbox, receiver, host = world
    params = ReportAction.Params.model_validate({**WINDOW, "route": "reports"})
    result = await ReportAction().run(params, ctx(host, notes, check_mode=True))
    assert (result.failed, result.changed) == (False, True)
    assert result.msg.startswith("would send day 2024-03-15 report to 1 target(s): 4 trade(s)")
    assert "- win rate: 50.0 %" in result.data["body"]
    assert result.data["queued"] == []
    await outbox.drain(timeout=2)
    assert store.list_notifications() == []
    assert receiver.messages == []


@pytest.fixture
def bot_metrics_server():
    """The bot's own metrics (BotMetrics, some API calls observed) served on loopback."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from bot.trading.metrics import BotMetrics

    metrics = BotMetrics()
    for method, error in (("info", None), ("info", None), ("order", "rejected")):
        metrics.observe_api(method, 0.01, error)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = metrics.render()
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


async def test_a_window_ending_now_shows_the_api_call_volume(world, bot_metrics_server) -> None:
    _, notes, _, _, host = world
    host = HostContext("local", {**host.vars, "bot": {**host.vars["bot"], "metrics_url": bot_metrics_server}})
    params = ReportAction.Params.model_validate({"since": "1h", "route": "reports"})
    result = await ReportAction().run(params, ctx(host, notes, check_mode=True))
    assert not result.failed, result.msg
    calls = result.data["report"]["api_calls"]
    assert (calls["calls"], calls["failed"]) == (3, 1)
    body = result.data["body"]
    assert "- exchange API calls by the bot since it started (" in body and "): 3, failed 1 (33.3 %)" in body
    assert "  - info: 2" in body and "  - order: 1 (1 failed)" in body


async def test_an_unreachable_metrics_endpoint_is_a_note_not_a_failure(world) -> None:
    from tests.support.stack import free_port

    _, notes, _, _, host = world
    url = f"http://127.0.0.1:{free_port()}/metrics"
    host = HostContext("local", {**host.vars, "bot": {**host.vars["bot"], "metrics_url": url}})
    result = await ReportAction().run(ReportAction.Params.model_validate({"since": "1h", "route": "reports"}),
                                      ctx(host, notes, check_mode=True))
    assert not result.failed and result.data["report"]["api_calls"] is None
    assert f"API call volume: GET {url} failed: Connection refused" in result.data["body"]


async def test_missing_bot_database_fails_with_the_reason(world, tmp_path: Path) -> None:
    _, notes, _, receiver, _ = world
    host = HostContext("local", {"bot": {"db_path": str(tmp_path / "missing.db")}})
    result = await ReportAction().run(ReportAction.Params.model_validate(WINDOW), ctx(host, notes))
    assert result.failed and "missing.db does not exist" in result.msg
    assert receiver.messages == []


async def test_unknown_route_fails(world) -> None:
    _, notes, _, _, host = world
    params = ReportAction.Params.model_validate({**WINDOW, "route": "nowhere"})
    result = await ReportAction().run(params, ctx(host, notes))
    assert result.failed and result.msg.startswith("cannot notify")


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"since": "yesterday"}, "neither a duration"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"template": "../secrets"}, "must be a file name"),
        ({"period": "year"}, "day"),
        ({"since": "2024-03-16T00:00:00Z", "until": "2024-03-15T00:00:00Z"}, None),
        ({"colour": "red"}, "Extra inputs"),
    ],
)
def test_bad_parameters_are_refused_at_load(params, error) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=error):
        ReportAction.Params.model_validate(params)


def test_registered() -> None:
    assert default_registry().actions["report"] is ReportAction


async def test_a_template_is_given_the_step_vars_and_exactly_the_names_validate_allows(world) -> None:
    """``agent validate`` checks a report template against the step's variables plus
    ``ReportAction.template_vars``: the action must give those, and no others."""
    store, notes, _outbox, _receiver, host = world
    given: list[set[str]] = []

    class Recorder:
        def render_template(self, name: str, vars: dict) -> str:
            given.append(set(vars))
            return "rendered"

    recording = Notifications(store, notes.router, templating=Recorder())
    params = ReportAction.Params.model_validate({**WINDOW, "route": "reports"})
    step_vars = {"play_var": 1, "bot": {}}
    await ReportAction().run(params, RunContext(host=host, notifier=recording, check_mode=True,
                                                template_vars=step_vars))
    assert given == [set(step_vars) | ReportAction.template_vars]
