"""The agent's exchange actions sign with its own API wallet: the guard still cancels and
flattens the account when the bot's API wallet is revoked (issue 16), against a real paper
exchange through the unmodified SDK."""
from __future__ import annotations

import asyncio
import secrets
import time
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


async def auth(paper: RunningExchange) -> Any:
    from agent.modules.checks.exchange import ExchangeCheck, ExchangeCheckParams

    return await ExchangeCheck().run(ExchangeCheckParams(metric="auth"), ctx(paper))


async def test_a_revoked_guard_wallet_is_told_apart_from_a_refused_account(
        paper: RunningExchange, wallets: dict[str, Any]) -> None:
    """The credentials check signs with the agent's API wallet: once that wallet is revoked the
    exchange refuses it in the same words as an unknown key, and only its userRole tells a lapsed
    approval (remedy: approve a new wallet; the account is fine) from refused credentials."""
    as_bot = Exchange(wallets["bot"], paper.url, account_address=DEV.address, timeout=10)
    assert as_bot.market_open("BTC", True, 0.01)["status"] == "ok"
    px = round(float(Info(paper.url, skip_ws=True).all_mids()["BTC"]) * 0.9)
    stop = {"trigger": {"triggerPx": px, "isMarket": True, "tpsl": "sl"}}
    assert "resting" in as_bot.order("BTC", False, 0.01, px, stop, reduce_only=True)["response"]["data"]["statuses"][0]
    assert (await auth(paper)).facts["refused"] is None

    api_wallets.revoke(paper.url, PAPER_DEV_PRIVATE_KEY, "botwarden-agent")
    lapsed = await auth(paper)
    assert lapsed.value is False and "does not exist" in lapsed.facts["auth_error"]
    assert lapsed.facts["refused"] == "api_wallet" and lapsed.facts["api_wallet"] is True
    assert lapsed.facts["signer"] == wallets["agent"].address.lower()
    assert lapsed.facts["signer_role"] == "missing"
    assert "approve a new API wallet" in lapsed.summary and "REFUSED" not in lapsed.summary
    # whose key it is, what still works, and the exchange's words once (breaker x4 F6.1)
    assert "the agent's own" in lapsed.summary and "would halt the bot but not flatten" in lapsed.summary
    assert "exist.." not in lapsed.summary and "does not exist. The account" in lapsed.summary
    # read during an emergency run for another cause, it must not say that nothing was done
    assert "closed nothing" not in lapsed.summary and "halted or closed" not in lapsed.summary
    assert "starts no emergency response of its own" in lapsed.summary
    assert "under way for another cause goes on and reports in its own messages" in lapsed.summary
    assert "BTC long 0.01 @" in lapsed.facts["protection"] and "stop-loss resting at" in lapsed.facts["protection"]
    assert PAPER_DEV_PRIVATE_KEY[2:] not in repr(lapsed)

    # approved again, then the exchange refuses a key it lists as approved: credentials in question
    api_wallets.approve(paper.url, PAPER_DEV_PRIVATE_KEY, wallets["agent"].address, "botwarden-agent")
    paper.admin("POST", "/admin/faults", {"auth_failure": True})
    refused = await auth(paper)
    assert refused.value is False and refused.facts["refused"] == "account", refused.facts
    assert "REFUSED" in refused.summary


async def test_an_expired_guard_wallet_is_a_lapsed_approval(paper: RunningExchange, wallets: dict[str, Any]) -> None:
    soon = int(time.time() * 1000) + 1500
    api_wallets.approve(paper.url, PAPER_DEV_PRIVATE_KEY, wallets["agent"].address,
                        f"botwarden-agent valid_until {soon}")
    await asyncio.sleep(2.0)  # past its validity (a bound of the exchange's clock, not a wait for an outcome)
    lapsed = await auth(paper)
    assert lapsed.facts["refused"] == "api_wallet", lapsed.facts
    assert lapsed.facts["protection"] == "no open position"


async def test_the_shipped_playbook_runs_the_emergency_only_for_refused_credentials() -> None:
    """The emergency response's guard, evaluated as the agent evaluates a step's `when`."""
    import yaml

    from tests.support.stack import REPO

    doc = yaml.safe_load((REPO / "playbooks" / "exchange.yaml").read_text())
    [block] = doc["remediations"]["emergency-response"]["steps"]
    from agent.playbook.templating import Templating

    def runs(facts: dict[str, Any]) -> bool:
        return bool(Templating().evaluate(block["when"], {"check": {"state": "CRITICAL", "facts": facts}}))

    assert not runs({"auth_ok": False, "refused": "api_wallet"})
    assert runs({"auth_ok": False, "refused": "account"})


def test_a_wallet_approved_again_between_the_refusal_and_its_role_read_is_no_emergency(
        paper: RunningExchange, wallets: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Breaker x4 F4: revoked, the probe is refused; approved again before the probe reads
    userRole, the signer reads as an approved agent refused anyway, i.e. the account's key in
    question: halt, flatten, stop, page "rotate the account key". Asked once more, it is accepted."""
    from agent.modules.checks.exchange_auth_probe import probe

    real = Info.user_role
    approved: list[bool] = []

    def approve_first(self: Info, address: str) -> Any:
        if not approved:
            api_wallets.approve(paper.url, PAPER_DEV_PRIVATE_KEY, wallets["agent"].address, "botwarden-agent")
            approved.append(True)
        return real(self, address)

    monkeypatch.setattr(Info, "user_role", approve_first)
    api_wallets.revoke(paper.url, PAPER_DEV_PRIVATE_KEY, "botwarden-agent")
    out = probe(paper.url, "0x" + wallets["agent"].key.hex().removeprefix("0x"), DEV.address, 10.0)
    assert approved and out["auth_ok"] is True and out["refused"] is None, out
    assert "accepted when asked again" in out["note"]

    # A key listed as approved and refused twice (the drill's auth_failure) is still the account's.
    paper.admin("POST", "/admin/faults", {"auth_failure": True})
    refused = probe(paper.url, "0x" + wallets["agent"].key.hex().removeprefix("0x"), DEV.address, 10.0)
    assert refused["refused"] == "account" and refused["auth_ok"] is False, refused
