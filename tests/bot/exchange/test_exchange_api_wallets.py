"""API (agent) wallets through the unmodified SDK: ``approve_agent`` by the master, then trading with
``Exchange(agent_wallet, base_url, account_address=master)``; revocation by re-approval, expiry,
the named-wallet limit, and nonces kept per signer."""
from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.signing import get_timestamp_ms, sign_l1_action

from bot.exchange import RunningExchange
from tests.support import loopback


def approve(master: Exchange, name: str | None) -> tuple[LocalAccount, dict[str, Any]]:
    resp, key = master.approve_agent(name)
    return Account.from_key(key), resp


def rest_order(ex: Exchange, info: Info, coin: str = "BTC") -> dict[str, Any]:
    px = round(float(info.all_mids()[coin]) * 0.9)
    return ex.order(coin, True, 0.01, px, {"limit": {"tif": "Gtc"}})


def test_agent_trades_for_its_master(paper_exchange: RunningExchange, hl_exchange: Exchange, hl_info: Info,
                                     dev_wallet: LocalAccount) -> None:
    agent, resp = approve(hl_exchange, "bot")
    assert resp == {"status": "ok", "response": {"type": "default"}}
    as_agent = Exchange(agent, paper_exchange.url, account_address=dev_wallet.address)
    placed = rest_order(as_agent, hl_info)
    oid = placed["response"]["data"]["statuses"][0]["resting"]["oid"]
    assert [o["oid"] for o in hl_info.open_orders(dev_wallet.address)] == [oid]  # on the master's book
    assert hl_info.open_orders(agent.address) == []
    assert hl_info.user_role(agent.address) == {"role": "agent", "data": {"user": dev_wallet.address.lower()}}
    assert hl_info.user_role(dev_wallet.address) == {"role": "user"}
    assert [(a["name"], a["address"]) for a in hl_info.extra_agents(dev_wallet.address)] == \
        [("bot", agent.address.lower())]
    assert as_agent.cancel("BTC", oid)["response"]["data"]["statuses"] == ["success"]


def test_unnamed_agent_and_several_named_ones(paper_exchange: RunningExchange, hl_exchange: Exchange,
                                              hl_info: Info, dev_wallet: LocalAccount) -> None:
    unnamed, resp = approve(hl_exchange, None)  # the SDK signs agentName "" and drops the key
    assert resp["status"] == "ok"
    named = [approve(hl_exchange, n)[0] for n in ("a", "b", "c")]
    _, fourth = approve(hl_exchange, "d")
    assert fourth["status"] == "err" and "Too many named API wallets (max 3)" in fourth["response"]
    for wallet in [unnamed, *named]:
        ex = Exchange(wallet, paper_exchange.url, account_address=dev_wallet.address)
        assert "resting" in rest_order(ex, hl_info)["response"]["data"]["statuses"][0]
    assert sorted(a["name"] for a in hl_info.extra_agents(dev_wallet.address)) == ["a", "b", "c"]


def test_reapproval_revokes_the_previous_wallet_of_that_name(paper_exchange: RunningExchange,
                                                             hl_exchange: Exchange, hl_info: Info,
                                                             dev_wallet: LocalAccount) -> None:
    old, _ = approve(hl_exchange, "bot")
    new, _ = approve(hl_exchange, "bot")
    refused = rest_order(Exchange(old, paper_exchange.url, account_address=dev_wallet.address), hl_info)
    assert refused == {"status": "err", "response": f"User or API Wallet {old.address.lower()} does not exist."}
    assert hl_info.user_role(old.address) == {"role": "missing"}
    ok = rest_order(Exchange(new, paper_exchange.url, account_address=dev_wallet.address), hl_info)
    assert ok["status"] == "ok"
    # the unnamed wallet is replaced the same way
    first, _ = approve(hl_exchange, None)
    approve(hl_exchange, None)
    again = rest_order(Exchange(first, paper_exchange.url, account_address=dev_wallet.address), hl_info)
    assert again["response"] == f"User or API Wallet {first.address.lower()} does not exist."


def test_expired_agent_is_refused_in_hyperliquids_words(paper_exchange: RunningExchange, hl_exchange: Exchange,
                                                        hl_info: Info, dev_wallet: LocalAccount) -> None:
    until = get_timestamp_ms() + 1500
    agent, resp = approve(hl_exchange, f"short valid_until {until}")
    assert resp["status"] == "ok"
    assert hl_info.extra_agents(dev_wallet.address) == [{"name": "short", "address": agent.address.lower(),
                                                         "validUntil": until}]
    ex = Exchange(agent, paper_exchange.url, account_address=dev_wallet.address)
    assert rest_order(ex, hl_info)["status"] == "ok"
    while get_timestamp_ms() <= until:
        time.sleep(0.05)
    assert rest_order(ex, hl_info) == {"status": "err",
                                       "response": f"User or API Wallet {agent.address.lower()} does not exist."}
    _, past = approve(hl_exchange, f"late valid_until {get_timestamp_ms() - 1}")
    assert past["status"] == "err" and "valid_until" in past["response"]


def test_agents_cannot_sign_user_signed_actions(paper_exchange: RunningExchange, hl_exchange: Exchange,
                                                dev_wallet: LocalAccount) -> None:
    agent, _ = approve(hl_exchange, "bot")
    as_agent = Exchange(agent, paper_exchange.url, account_address=dev_wallet.address)
    for resp in (as_agent.usd_transfer(1.0, "0x" + "2" * 40), as_agent.approve_agent("sneaky")[0]):
        assert resp == {"status": "err", "response": f"User or API Wallet {agent.address.lower()} does not exist."}


def test_an_account_cannot_be_approved_as_an_agent(paper_exchange: RunningExchange,
                                                   hl_exchange: Exchange) -> None:
    other = Account.create()
    paper_exchange.admin("POST", "/admin/accounts", {"address": other.address, "usdc": 100})
    action = {"type": "approveAgent", "agentAddress": other.address, "agentName": "x", "nonce": get_timestamp_ms()}
    from hyperliquid.utils.signing import sign_agent

    signature = sign_agent(hl_exchange.wallet, action, False)
    resp = loopback.post(paper_exchange.url + "/exchange", json={"action": action, "nonce": action["nonce"],
                                                                "signature": signature}).json()
    assert resp["status"] == "err" and "it is a user" in resp["response"]


def test_an_api_wallet_cannot_receive_funds(paper_exchange: RunningExchange, hl_exchange: Exchange,
                                            hl_info: Info, dev_wallet: LocalAccount) -> None:
    """An API wallet signs for its master and holds nothing: a usdSend to it (or funding it) is
    refused and it stays an agent, still able to trade for its master."""
    agent, _ = approve(hl_exchange, "bot")
    before = float(hl_info.user_state(dev_wallet.address)["withdrawable"])
    resp = hl_exchange.usd_transfer(5.0, agent.address)
    assert resp["status"] == "err" and agent.address.lower() in resp["response"], resp
    assert "API wallet" in resp["response"] and "holds no funds" in resp["response"]
    assert float(hl_info.user_state(dev_wallet.address)["withdrawable"]) == pytest.approx(before)
    assert hl_info.user_role(agent.address) == {"role": "agent", "data": {"user": dev_wallet.address.lower()}}
    with pytest.raises(httpx.HTTPStatusError) as refused:
        paper_exchange.admin("POST", "/admin/accounts", {"address": agent.address, "usdc": 100})
    assert refused.value.response.status_code == 400 and "API wallet" in refused.value.response.text
    as_agent = Exchange(agent, paper_exchange.url, account_address=dev_wallet.address)
    placed = rest_order(as_agent, hl_info)["response"]["data"]["statuses"][0]
    assert [o["oid"] for o in hl_info.open_orders(dev_wallet.address)] == [placed["resting"]["oid"]]
    assert hl_info.user_non_funding_ledger_updates(agent.address, 0) == []
    # nor can it be a builder that fees are credited to (a builder holds >= 100 USDC: a user)
    as_builder = hl_exchange.approve_builder_fee(agent.address, "0.01%")
    assert as_builder["status"] == "err" and "at least 100 USDC" in as_builder["response"], as_builder


def _cancel_payload(wallet: LocalAccount, nonce: int) -> dict[str, Any]:
    action = {"type": "cancel", "cancels": [{"a": 0, "o": 123456}]}
    return {"action": action, "nonce": nonce, "signature": sign_l1_action(wallet, action, None, nonce, None, False),
            "vaultAddress": None, "expiresAfter": None}


def test_nonces_are_kept_per_signer(paper_exchange: RunningExchange, hl_exchange: Exchange,
                                    dev_wallet: LocalAccount) -> None:
    a, _ = approve(hl_exchange, "a")
    b, _ = approve(hl_exchange, "b")
    nonce = get_timestamp_ms() + 10
    with httpx.Client(base_url=paper_exchange.url) as http:
        for signer in (dev_wallet, a, b):  # one nonce, three signers of one account: all accepted
            assert http.post("/exchange", json=_cancel_payload(signer, nonce)).json()["status"] == "ok"
        again = http.post("/exchange", json=_cancel_payload(a, nonce)).json()
        assert again == {"status": "err", "response": f"Invalid nonce: duplicate nonce {nonce}"}
        # a signer's own window: 100 newer nonces on `a` push `nonce` out for `a` only
        for i in range(100):
            assert http.post("/exchange", json=_cancel_payload(a, nonce + 1 + i)).json()["status"] == "ok"
        assert http.post("/exchange", json=_cancel_payload(a, nonce - 1)).json()["response"].startswith(
            "Invalid nonce: nonce too low")
        assert http.post("/exchange", json=_cancel_payload(b, nonce - 1)).json()["status"] == "ok"


@pytest.mark.parametrize("name", ["bot", None])
def test_revoked_bot_wallet_leaves_the_guards_wallet_working(paper_exchange: RunningExchange,
                                                            hl_exchange: Exchange, hl_info: Info,
                                                            dev_wallet: LocalAccount, name: str | None) -> None:
    bot, _ = approve(hl_exchange, name)
    guard, _ = approve(hl_exchange, "guard")
    as_bot = Exchange(bot, paper_exchange.url, account_address=dev_wallet.address)
    assert as_bot.market_open("ETH", True, 0.05)["status"] == "ok"
    approve(hl_exchange, name)  # the operator revokes the bot's wallet by approving a fresh one
    assert as_bot.market_close("ETH")["status"] == "err"
    as_guard = Exchange(guard, paper_exchange.url, account_address=dev_wallet.address)
    closed = as_guard.market_close("ETH")
    assert "filled" in closed["response"]["data"]["statuses"][0]
    assert hl_info.user_state(dev_wallet.address)["assetPositions"] == []
