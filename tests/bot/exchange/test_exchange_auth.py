"""Signatures and nonces are checked as Hyperliquid checks them."""
from __future__ import annotations

import httpx
from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.signing import get_timestamp_ms, sign_l1_action

from bot.exchange import RunningExchange
from botwarden.settings import PAPER_DEV_PRIVATE_KEY
from tests.support import loopback

DEV = Account.from_key(PAPER_DEV_PRIVATE_KEY)


def signed_cancel(nonce: int, key: str = PAPER_DEV_PRIVATE_KEY) -> dict:
    action = {"type": "cancel", "cancels": [{"a": 0, "o": 123456}]}
    signature = sign_l1_action(Account.from_key(key), action, None, nonce, None, False)
    return {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": None, "expiresAfter": None}


def test_request_signed_by_unknown_key_is_rejected(paper_exchange: RunningExchange) -> None:
    stranger = Account.create()
    ex = Exchange(stranger, paper_exchange.url)
    resp = ex.order("BTC", True, 0.01, 50_000, {"limit": {"tif": "Gtc"}})
    assert resp == {"status": "err", "response": f"User or API Wallet {stranger.address.lower()} does not exist."}


def test_admin_created_account_can_trade(paper_exchange: RunningExchange) -> None:
    newcomer = Account.create()
    paper_exchange.admin("POST", "/admin/accounts", {"address": newcomer.address, "usdc": 5_000})
    state = Info(paper_exchange.url, skip_ws=True).user_state(newcomer.address)
    assert float(state["marginSummary"]["accountValue"]) == 5_000
    resp = Exchange(newcomer, paper_exchange.url).order("BTC", True, 0.01, 50_000, {"limit": {"tif": "Gtc"}})
    assert "resting" in resp["response"]["data"]["statuses"][0]


def test_replayed_nonce_is_rejected(paper_exchange: RunningExchange) -> None:
    payload = signed_cancel(get_timestamp_ms())
    first = loopback.post(paper_exchange.url + "/exchange", json=payload).json()
    assert first["status"] == "ok"
    replay = loopback.post(paper_exchange.url + "/exchange", json=payload).json()
    assert replay == {"status": "err", "response": f"Invalid nonce: duplicate nonce {payload['nonce']}"}


def test_nonce_outside_the_window_is_rejected(paper_exchange: RunningExchange) -> None:
    now = get_timestamp_ms()
    too_old = loopback.post(paper_exchange.url + "/exchange", json=signed_cancel(now - 3 * 86_400_000)).json()
    assert too_old["status"] == "err" and too_old["response"].startswith("Invalid nonce: nonce too low")
    too_new = loopback.post(paper_exchange.url + "/exchange", json=signed_cancel(now + 2 * 86_400_000)).json()
    assert too_new["status"] == "err" and too_new["response"].startswith("Invalid nonce: nonce too high")


def test_nonce_must_exceed_the_smallest_of_the_last_100(paper_exchange: RunningExchange) -> None:
    base = get_timestamp_ms()
    with httpx.Client(base_url=paper_exchange.url) as client:
        for i in range(100):
            assert client.post("/exchange", json=signed_cancel(base + i)).json()["status"] == "ok"
        older = client.post("/exchange", json=signed_cancel(base - 1)).json()
        assert older == {"status": "err", "response": f"Invalid nonce: nonce too low {base - 1} < {base}"}
        newer = client.post("/exchange", json=signed_cancel(base + 1000)).json()
        assert newer["status"] == "ok"


def test_tampered_action_recovers_a_different_signer(paper_exchange: RunningExchange) -> None:
    payload = signed_cancel(get_timestamp_ms())
    payload["action"]["cancels"][0]["o"] = 654321  # signature no longer matches: another address recovers
    resp = loopback.post(paper_exchange.url + "/exchange", json=payload).json()
    assert resp["status"] == "err" and resp["response"].startswith("User or API Wallet 0x")
    assert DEV.address.lower() not in resp["response"]


def test_auth_failure_fault_rejects_every_signed_request(paper_exchange: RunningExchange) -> None:
    paper_exchange.admin("POST", "/admin/faults", {"auth_failure": True})
    resp = Exchange(DEV, paper_exchange.url).order("BTC", True, 0.01, 50_000, {"limit": {"tif": "Gtc"}})
    assert resp == {"status": "err", "response": f"User or API Wallet {DEV.address.lower()} does not exist."}
    paper_exchange.admin("DELETE", "/admin/faults")
    resp = Exchange(DEV, paper_exchange.url).order("BTC", True, 0.01, 50_000, {"limit": {"tif": "Gtc"}})
    assert resp["status"] == "ok"


def test_admin_requires_the_bearer_token(paper_exchange: RunningExchange) -> None:
    assert loopback.get(paper_exchange.url + "/admin/state").status_code == 401
    wrong = loopback.post(paper_exchange.url + "/admin/faults", json={"outage": "503"},
                       headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert paper_exchange.admin("GET", "/admin/state")["faults"]["outage"] == "off"
