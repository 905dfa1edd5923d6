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
from botwarden.halts import HaltFile
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
                           controls=lambda: engine, halts=engine.halts)
    server.start()
    try:
        yield engine, f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()
        store.close()


@pytest.fixture
def halt_path(tmp_path: Path) -> Path:
    """Where the bot of the ``bot`` fixture keeps its halts (settings.bot.halt_file under root)."""
    return StackSettings.model_validate({"root": str(tmp_path)}).path("var/bot.halt.json")


@pytest.fixture
def ctx(halt_path: Path) -> Callable[..., RunContext]:
    def make(url: str, check_mode: bool = False, reason: str = "") -> RunContext:
        bot_vars = {"url": url, "control_token_env": TOKEN_ENV, "halt_path": str(halt_path)}
        return RunContext(host=HostContext("box", {"bot": bot_vars}), timeout=10.0, check_mode=check_mode,
                          reason=reason)

    return make


@pytest.fixture(autouse=True)
async def _clients() -> Any:
    yield
    await close_shared_clients()


async def run(action: str, ctx: RunContext, **params: Any) -> Any:
    return await BotAction().run(BotActionParams(action=action, **params), ctx)


async def test_halt_previews_then_halts_then_is_idempotent_then_resumes(
        bot: tuple[Any, str], ctx: Callable[..., RunContext], monkeypatch: pytest.MonkeyPatch,
        halt_path: Path) -> None:
    engine, url = bot
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    preview = await run("halt", ctx(url, check_mode=True))
    assert preview.changed and preview.msg.startswith(f"would record a halt in {halt_path} and have the bot confirm")
    assert engine.status.halted_reason is None and engine.halts.active() == []
    halted = await run("halt", ctx(url, reason="operator ran playbook x"))
    assert halted.changed and not halted.failed and halted.data["halted"] is True, halted.msg
    assert halted.data["recorded"] and halted.data["confirmed"] and halted.data["durable"]
    assert "the bot confirmed no entry is in flight" in halted.msg and str(halt_path) in halted.msg
    assert "control: operator ran playbook x" in (engine.status.halted_reason or "")
    assert [h.id for h in engine.halts.active()] == [halted.data["halt_id"]]
    again = await run("halt", ctx(url))
    assert not again.changed and not again.failed and "already recorded" in again.msg
    assert len(engine.halts.active()) == 1
    resumed = await run("resume", ctx(url))
    assert resumed.changed and resumed.data["halted"] is False and engine.status.halted_reason is None
    assert "the bot confirmed" in resumed.msg and engine.halts.active() == []
    assert TOKEN not in repr([preview, halted, again, resumed])


async def test_an_operator_halt_is_recorded_beside_the_bots_own(
        bot: tuple[Any, str], ctx: Callable[..., RunContext], monkeypatch: pytest.MonkeyPatch) -> None:
    """A daily-loss halt ends with its day: the emergency's halt must not be skipped because the
    bot already reports itself halted."""
    engine, url = bot
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    engine.halt("daily_loss", "loss 6%")
    halted = await run("halt", ctx(url))
    assert halted.changed and halted.data["durable"]
    assert sorted(h.kind for h in engine.halts.active()) == ["control", "daily_loss"]


async def test_resume_by_id_ends_only_that_halt(bot: tuple[Any, str], ctx: Callable[..., RunContext],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    engine, url = bot
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    mine = await run("halt", ctx(url))
    engine.halt("reconcile", "unknown BTC position")  # taken meanwhile: not this play's to end
    resumed = await run("resume", ctx(url), halt_ids=[mine.data["halt_id"]])
    assert resumed.changed and [h["id"] for h in resumed.data["ended"]] == [mine.data["halt_id"]]
    assert [h.kind for h in engine.halts.active()] == ["reconcile"] and resumed.data["halted"] is True
    assert "still in force: reconcile: unknown BTC position" in resumed.msg


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
    result = await run("cancel-all", ctx("http://127.0.0.1:9"))
    assert result.failed and result.msg == "the bot does not answer: GET http://127.0.0.1:9/health failed: " \
                                           "Connection refused"


async def test_a_dead_bot_is_halted_through_its_halt_file_and_the_message_says_so(
        ctx: Callable[..., RunContext], halt_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    result = await run("halt", ctx("http://127.0.0.1:9"))
    assert result.failed and result.data["durable"] and not result.data["confirmed"]  # recorded, not confirmed
    assert result.msg.startswith(f"halt recorded in {halt_path}: it holds while the bot is down")
    assert "did not confirm (it does not answer: GET http://127.0.0.1:9/health failed: Connection refused)" \
        in result.msg
    (halt,) = HaltFile(halt_path).active()
    assert halt.kind == "control" and halt.id == result.data["halt_id"]
    resumed = await run("resume", ctx("http://127.0.0.1:9"))
    assert resumed.changed and not resumed.failed and HaltFile(halt_path).active() == []
    assert "it trades once it is running again" in resumed.msg


async def test_no_halt_file_and_no_bot_is_not_halted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    ctx = RunContext(host=HostContext("box", {"bot": {"url": "http://127.0.0.1:9", "control_token_env": TOKEN_ENV}}))
    result = await run("halt", ctx)
    assert result.failed and not result.data["halted"] and result.msg.startswith("NOT halted: ")


async def test_a_secret_written_into_a_halt_reason_is_masked_before_the_bot_and_its_file_keep_it(
        bot: tuple[Any, str], ctx: Callable[..., RunContext], monkeypatch: pytest.MonkeyPatch,
        halt_path: Path) -> None:
    """An operator pastes a token into `agent halt --reason` (or a playbook's reason renders one):
    the bot keeps the reason in its halt file and database and serves it on its unauthenticated
    loopback /health, so the agent masks every secret it knows before sending it anywhere."""
    engine, url = bot
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv("SLACK_WEBHOOK_TOKEN", "xoxb-pasted-into-a-reason-1234")
    halted = await run("halt", ctx(url), reason=f"token {TOKEN} leaked, and xoxb-pasted-into-a-reason-1234 too")
    assert halted.changed and not halted.failed, halted.msg
    (halt,) = [h for h in engine.halts.active() if h.kind == "control"]
    stored = [halt.reason, halt_path.read_text(), str(engine.status.halted_reason), repr(halted)]
    assert halt.reason == "token *** leaked, and *** too", halt.reason
    assert not [s for s in stored if TOKEN in s or "xoxb-pasted" in s], stored
