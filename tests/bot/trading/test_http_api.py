"""The bot's HTTP surface against a real engine on a real paper exchange."""
from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.trading.http_api import BotHttpServer
from bot.trading.jsonlog import configure_logging
from tests.support import loopback
from tests.support.promtool import promtool_problems

TOKEN = "s3cret-control-token-value"


@pytest.fixture
def served(make_engine: Callable[..., Any]) -> Iterator[Callable[..., tuple[Any, str]]]:
    servers: list[BotHttpServer] = []

    def serve(token: str | None = TOKEN) -> tuple[Any, str]:
        engine = make_engine()
        srv = BotHttpServer("127.0.0.1", 0, status=engine.status, metrics=engine.metrics, token=token,
                            token_env="BOTWARDEN_BOT_TOKEN", controls=lambda: engine)
        srv.start()
        servers.append(srv)
        return engine, f"http://127.0.0.1:{srv.port}"

    yield serve
    for s in servers:
        s.stop()


def test_metrics_parse_and_carry_the_operator_names(served: Callable[..., tuple[Any, str]]) -> None:
    engine, url = served()
    engine.reconcile()
    engine.iterate()
    text = loopback.get(f"{url}/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ["trading_equity_usd", "trading_pnl_usd", "trading_pnl_daily_percent", "trading_win_rate",
                 "trading_exposure_percent", "trading_positions_active", "trading_open_orders",
                 "api_request_duration_seconds", "api_errors", "api_requests", "trading_loop_duration_seconds",
                 "process_resident_memory_bytes"]:
        assert name in families, name
    assert promtool_problems(text) == []
    equity = families["trading_equity_usd"].samples[0].value
    assert equity > 0
    assert families["trading_positions_active"].samples[0].value == 2  # BTC and ETH entered


def test_health_reflects_a_halt_and_a_resume(served: Callable[..., tuple[Any, str]]) -> None:
    engine, url = served()
    engine.reconcile()
    engine.iterate()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    answer = loopback.post(f"{url}/control/halt?reason=maintenance&by=alice", headers=auth).json()
    assert answer["ok"] is True and answer["halted"] is True and answer["durable"] is True
    assert answer["halt"]["reason"] == "maintenance" and answer["halt"]["by"] == "alice"
    assert answer["halts"] == [answer["halt"]]
    health = loopback.get(f"{url}/health").json()
    assert health["status"] == "halted" and health["halts"] == [answer["halt"]]
    assert health["halted_reason"] == "control: maintenance"
    assert {"loop_age_s", "market_data_age_s", "last_trade_at", "positions", "open_orders", "version",
            "uptime_s"} <= set(health)
    resumed = loopback.post(f"{url}/control/resume", headers=auth).json()
    assert resumed["cleared"] == 1 and resumed["ended"] == [answer["halt"]] and resumed["halts"] == []
    assert loopback.get(f"{url}/health").json()["halted_reason"] is None


def test_halt_and_resume_work_before_the_trading_loop_exists(make_engine: Callable[..., Any]) -> None:
    """Exchange unreachable at start-up: no engine yet, but a halt must still be taken."""
    engine = make_engine()
    srv = BotHttpServer("127.0.0.1", 0, status=engine.status, metrics=engine.metrics, token=TOKEN,
                        token_env="BOTWARDEN_BOT_TOKEN", controls=lambda: None, halts=engine.halts)
    srv.start()
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        url = f"http://127.0.0.1:{srv.port}"
        answer = loopback.post(f"{url}/control/halt", headers=auth).json()
        assert answer["halted"] and answer["durable"] and [h.id for h in engine.halts.active()] == [answer["halt"]["id"]]
        assert loopback.post(f"{url}/control/cancel-all", headers=auth).status_code == 503
        assert loopback.post(f"{url}/control/resume", headers=auth).json()["cleared"] == 1
        assert engine.halts.active() == []
    finally:
        srv.stop()


def test_a_bot_waiting_for_its_wallet_reports_the_halt_files_halts_and_no_equity(
        make_engine: Callable[..., Any]) -> None:
    """A bot restarted while its API wallet is revoked waits before its engine exists: its /health
    still names the halts standing in the halt file (else the agent tells a false "resolved"), and
    its equity is unknown (NaN), never 0 (else a false equity-drift alert)."""
    from bot.trading.metrics import BotMetrics
    from bot.trading.status import RuntimeStatus

    previous = make_engine()
    halt, _ = previous.halt("error", "placing the stop-loss of BTC refused by the exchange: ...")
    status, metrics = RuntimeStatus(loop_seconds=1.0, candle_seconds=60), BotMetrics()
    srv = BotHttpServer("127.0.0.1", 0, status=status, metrics=metrics, token=TOKEN,
                        token_env="BOTWARDEN_BOT_TOKEN", controls=lambda: None, halts=previous.halts)
    srv.start()
    try:
        url = f"http://127.0.0.1:{srv.port}"
        health = loopback.get(f"{url}/health").json()
        assert health["status"] == "halted" and [h["id"] for h in health["halts"]] == [halt.id]
        assert health["halted_reason"] and "placing the stop-loss of BTC" in health["halted_reason"]
        families = {f.name: f for f in text_string_to_metric_families(loopback.get(f"{url}/metrics").text)}
        assert math.isnan(families["trading_equity_usd"].samples[0].value)
        previous.halts.clear()  # `agent resume` meanwhile
        assert loopback.get(f"{url}/health").json()["halts"] == []
    finally:
        srv.stop()


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
def test_control_without_the_token_is_401(served: Callable[..., tuple[Any, str]], headers: dict[str, str]) -> None:
    engine, url = served()
    r = loopback.post(f"{url}/control/halt", headers=headers)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert engine.status.halted_reason is None


def test_control_is_refused_with_503_when_no_token_is_configured(
        served: Callable[..., tuple[Any, str]]) -> None:
    engine, url = served(token=None)
    r = loopback.post(f"{url}/control/halt", headers={"Authorization": "Bearer anything"})
    assert r.status_code == 503 and "BOTWARDEN_BOT_TOKEN" in r.json()["error"]
    assert engine.status.halted_reason is None


def test_cancel_all_and_close_all_flatten_the_account(served: Callable[..., tuple[Any, str]]) -> None:
    engine, url = served()
    engine.reconcile()
    engine.iterate()
    assert engine.gw.open_orders()  # stop-losses rest
    auth = {"Authorization": f"Bearer {TOKEN}"}
    result = loopback.post(f"{url}/control/close-all", headers=auth, timeout=30).json()
    assert result["ok"] and sorted(result["closed"]) == ["BTC", "ETH"] and result["still_open"] == []
    assert engine.gw.account().positions == {} and engine.gw.open_orders() == []
    assert loopback.get(f"{url}/health").json()["status"] == "halted"


def test_token_and_key_never_reach_the_logs(served: Callable[..., tuple[Any, str]]) -> None:
    from botwarden.settings import PAPER_DEV_PRIVATE_KEY

    buf = io.StringIO()
    configure_logging([TOKEN, PAPER_DEV_PRIVATE_KEY], stream=buf)
    try:
        _, url = served()
        loopback.post(f"{url}/control/halt", headers={"Authorization": f"Bearer {TOKEN}x"})
        loopback.post(f"{url}/control/halt", headers={"Authorization": f"Bearer {TOKEN}"})
        log = logging.getLogger("bot.test")
        try:
            raise RuntimeError(f"boom with {TOKEN} and {PAPER_DEV_PRIVATE_KEY[2:]}")
        except RuntimeError:
            log.exception("failure", extra={"event": "x", "header": f"Bearer {TOKEN}"})
    finally:
        configure_logging([], stream=io.StringIO())
    out = buf.getvalue()
    lines = [json.loads(line) for line in out.splitlines()]
    assert any(e.get("event") == "control_refused" for e in lines)
    assert any(e.get("event") == "x" and "***" in e["exc"] for e in lines)
    assert TOKEN not in out and PAPER_DEV_PRIVATE_KEY[2:] not in out
