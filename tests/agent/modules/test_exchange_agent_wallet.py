"""The agent's exchange actions sign with its own API wallet: the guard still cancels and
flattens the account when the bot's API wallet is revoked (issue 16), against a real paper
exchange through the unmodified SDK."""
from __future__ import annotations

import secrets
from typing import Any

import pytest
from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info

from agent.modules import _hyperliquid as hl
from agent.modules.actions.exchange import ExchangeAction, ExchangeActionParams
from agent.modules.base import HostContext, RunContext
from bot import api_wallets
from bot.exchange import RunningExchange
from botwarden.errors import ModuleError
from botwarden.settings import PAPER_DEV_PRIVATE_KEY
from tests.agent.modules.paper import paper  # noqa: F401 (fixture)

DEV = Account.from_key(PAPER_DEV_PRIVATE_KEY)
BOT_ENV, AGENT_ENV = "BOTWARDEN_TEST_BOT_WALLET", "BOTWARDEN_TEST_AGENT_WALLET"


@pytest.fixture
def wallets(paper: RunningExchange, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    keys = {who: "0x" + secrets.token_hex(32) for who in ("bot", "agent")}
    for who, env in (("bot", BOT_ENV), ("agent", AGENT_ENV)):
        monkeypatch.setenv(env, keys[who])
        api_wallets.approve(paper.url, PAPER_DEV_PRIVATE_KEY, Account.from_key(keys[who]).address,
                            f"botwarden-{who}")
    return {who: Account.from_key(k) for who, k in keys.items()}


def ctx(paper: RunningExchange) -> RunContext:
    host_vars = {"exchange": {"url": paper.url},
                 "bot": {"network": "paper", "private_key_env": "BOTWARDEN_TEST_NO_SUCH_KEY",
                         "api_wallet_key_env": BOT_ENV},
                 "agent": {"api_wallet_key_env": AGENT_ENV, "api_wallet_name": "botwarden-agent"}}
    return RunContext(host=HostContext("paper", host_vars), timeout=10.0, check_mode=False)


async def act(action: str, paper: RunningExchange) -> Any:
    return await ExchangeAction().run(ExchangeActionParams(action=action), ctx(paper))


async def test_the_guard_flattens_with_its_own_wallet_after_the_bots_is_revoked(
        paper: RunningExchange, wallets: dict[str, Any]) -> None:
    info = Info(paper.url, skip_ws=True, timeout=10)
    as_bot = Exchange(wallets["bot"], paper.url, account_address=DEV.address, timeout=10)
    assert as_bot.market_open("BTC", True, 0.01)["status"] == "ok"
    px = round(float(info.all_mids()["ETH"]) * 0.8, 1)
    placed = as_bot.order("ETH", True, 0.1, px, {"limit": {"tif": "Gtc"}})
    assert "resting" in placed["response"]["data"]["statuses"][0]
    api_wallets.revoke(paper.url, PAPER_DEV_PRIVATE_KEY, "botwarden-bot")  # the bot's key is gone
    assert as_bot.market_close("BTC")["status"] == "err"

    ledger = paper.exchange.ledger
    master_nonces = list(ledger.nonces.get(DEV.address.lower(), []))  # its approvals and the revocation
    target = hl.resolve_target(ctx(paper), None, None)
    assert target.signer.lower() == wallets["agent"].address.lower()
    assert target.address.lower() == DEV.address.lower()
    closed = await act("close_all", paper)
    cancelled = await act("cancel_all", paper)
    assert not closed.failed and not cancelled.failed, (closed.msg, cancelled.msg)
    assert info.user_state(DEV.address)["assetPositions"] == [] and info.open_orders(DEV.address) == []
    # every signed request came from the agent's wallet: its nonces, none more from the account's key
    assert len(ledger.nonces.get(wallets["agent"].address.lower(), [])) == 2
    assert ledger.nonces.get(DEV.address.lower(), []) == master_nonces


async def test_a_revoked_guard_wallet_is_reported_not_retried_as_someone_else(
        paper: RunningExchange, wallets: dict[str, Any]) -> None:
    Exchange(wallets["bot"], paper.url, account_address=DEV.address).market_open("ETH", True, 0.1)
    api_wallets.revoke(paper.url, PAPER_DEV_PRIVATE_KEY, "botwarden-agent")
    result = await act("close_all", paper)
    assert result.failed and "does not exist" in result.msg
    assert PAPER_DEV_PRIVATE_KEY[2:] not in repr(result)


def test_an_api_wallet_without_an_account_off_paper_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AGENT_ENV, "0x" + secrets.token_hex(32))
    host_vars = {"exchange": {"url": "http://127.0.0.1:1"},
                 "bot": {"network": "mainnet", "private_key_env": "BOTWARDEN_TEST_NO_SUCH_KEY"},
                 "agent": {"api_wallet_key_env": AGENT_ENV}}
    with pytest.raises(ModuleError, match=r"set bot\.account_address"):
        hl.resolve_target(RunContext(host=HostContext("m", host_vars), timeout=1.0, check_mode=False), None, None)
