"""The bot action against the bot's real HTTP surface and engine on a real paper exchange."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.http import close_shared_clients
from agent.modules.actions.bot import BotAction, BotActionParams
from agent.modules.base import HostContext, RunContext
from bot.exchange import RunningExchange, serve_in_thread
from botwarden.settings import PAPER_DEV_PRIVATE_KEY, StackSettings

TOKEN = "bot-action-test-token-value"
TOKEN_ENV = "BOTWARDEN_TEST_BOT_TOKEN"


@pytest.fixture
def paper(tmp_path: Path) -> Iterator[RunningExchange]:
    ex = serve_in_thread(state=tmp_path / "exchange.db", seed=42, tick_seconds=0.2)
    try:
        yield ex
    finally:
        ex.stop()


@pytest.fixture
def bot(tmp_path: Path, paper: RunningExchange) -> Iterator[tuple[Any, str]]:
    """A real TradingEngine behind the real BotHttpServer; returns (engine, base URL)."""
    from bot.trading.engine import TradingEngine
    from bot.trading.gateway import Gateway
    from bot.trading.http_api import BotHttpServer
    from bot.trading.metrics import BotMetrics
    from bot.trading.status import RuntimeStatus
    from bot.trading.store import Store

    settings = StackSettings.model_validate({
        "root": str(tmp_path), "exchange": {"port": paper.port},
        "bot": {"port": 0, "db": "bot.db", "loop_seconds": 0.5, "candle_interval": "1h"}})
    metrics = BotMetrics()
    status = RuntimeStatus(loop_seconds=0.5, candle_seconds=3600)
    gateway = Gateway(settings.exchange_url, PAPER_DEV_PRIVATE_KEY, timeout_s=5, metrics=metrics)
    store = Store(settings.path("bot.db"))
    engine = TradingEngine(settings, gateway, store, metrics, status)
    status.connected = True
    server = BotHttpServer("127.0.0.1", 0, status=status, metrics=metrics, token=TOKEN, token_env=TOKEN_ENV,
                           controls=lambda: engine)
    server.start()
    try:
        yield engine, f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()
        store.close()


@pytest.fixture
def ctx() -> Callable[..., RunContext]:
    def make(url: str, check_mode: bool = False) -> RunContext:
        return RunContext(host=HostContext("box", {"bot": {"url": url, "control_token_env": TOKEN_ENV}}),
                          timeout=10.0, check_mode=check_mode)

    return make


@pytest.fixture(autouse=True)
async def _clients() -> Any:
    yield
    await close_shared_clients()


async def run(action: str, ctx: RunContext) -> Any:
    return await BotAction().run(BotActionParams(action=action), ctx)


async def test_halt_previews_then_halts_then_is_idempotent_then_resumes(
        bot: tuple[Any, str], ctx: Callable[..., RunContext], monkeypatch: pytest.MonkeyPatch) -> None:
    engine, url = bot
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    preview = await run("halt", ctx(url, check_mode=True))
    assert preview.changed and preview.msg.startswith("would halt (currently ")
    assert engine.status.halted_reason is None
    halted = await run("halt", ctx(url))
    assert halted.changed and not halted.failed and halted.data["halted"] is True
    assert "halted by operator" in (engine.status.halted_reason or "")
    again = await run("halt", ctx(url))
    assert not again.changed and again.msg.startswith("already halted")
    resumed = await run("resume", ctx(url))
    assert resumed.changed and resumed.data["halted"] is False and engine.status.halted_reason is None
    assert TOKEN not in repr([preview, halted, again, resumed])


async def test_close_all_flattens_the_bots_positions(bot: tuple[Any, str], ctx: Callable[..., RunContext],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    engine, url = bot
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    engine.reconcile()
    engine.iterate()  # the MACD regime: the bot enters BTC and ETH
    assert engine.status.positions
    preview = await run("close-all", ctx(url, check_mode=True))
    assert preview.changed and f"{len(engine.status.positions)} position(s)" in preview.msg
    done = await run("close-all", ctx(url))
    assert done.changed and not done.failed, done.msg
    assert done.data["positions_after"] == 0 and engine.gw.account().positions == {}


async def test_a_wrong_token_is_a_clear_failure_without_the_token(
        bot: tuple[Any, str], ctx: Callable[..., RunContext], monkeypatch: pytest.MonkeyPatch) -> None:
    engine, url = bot
    monkeypatch.setenv(TOKEN_ENV, "not-the-token")
    result = await run("halt", ctx(url))
    assert result.failed and "401" in result.msg and TOKEN_ENV in result.msg
    assert "not-the-token" not in result.msg and engine.status.halted_reason is None
    monkeypatch.delenv(TOKEN_ENV)
    unset = await run("halt", ctx(url))
    assert unset.failed and "is not set" in unset.msg


async def test_a_dead_bot_is_a_failed_task(ctx: Callable[..., RunContext]) -> None:
    result = await run("halt", ctx("http://127.0.0.1:9"))
    assert result.failed and result.msg == "the bot does not answer: GET http://127.0.0.1:9/health failed: " \
                                           "Connection refused"
