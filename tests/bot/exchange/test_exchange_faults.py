"""Fault injection: what a client of the paper exchange sees during a drill."""
from __future__ import annotations

import pytest
import requests
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.error import ClientError, ServerError
from hyperliquid.utils.types import Cloid

from bot.exchange import RunningExchange
from tests.support import loopback


def test_5xx_fault(paper_exchange: RunningExchange, hl_info: Info) -> None:
    paper_exchange.admin("POST", "/admin/faults", {"error_rate": 1.0})
    with pytest.raises(ServerError) as err:
        hl_info.all_mids()
    assert err.value.status_code == 500
    paper_exchange.admin("POST", "/admin/faults", {"error_rate": 0.0})
    assert "BTC" in hl_info.all_mids()


def test_429_fault(paper_exchange: RunningExchange, hl_info: Info) -> None:
    paper_exchange.admin("POST", "/admin/faults", {"rate_limit_rate": 1.0})
    with pytest.raises(ClientError) as err:
        hl_info.all_mids()
    assert err.value.status_code == 429


def test_ip_weight_budget_answers_429_once_spent(paper_exchange: RunningExchange, hl_info: Info) -> None:
    # allMids weighs 2, meta 20 (Hyperliquid's weights); a 30-weight budget allows 2 + 20 only
    paper_exchange.admin("DELETE", "/admin/faults")  # also empties the weight window (Info() spent 40)
    paper_exchange.admin("POST", "/admin/faults", {"weight_per_minute": 30})
    hl_info.all_mids()
    hl_info.meta()
    with pytest.raises(ClientError) as err:
        hl_info.meta()
    assert err.value.status_code == 429
    assert paper_exchange.admin("GET", "/admin/state")["weight_used"] >= 42


def test_address_request_cap_is_reported_and_enforced(paper_exchange: RunningExchange, hl_info: Info,
                                                      hl_exchange: Exchange) -> None:
    address = hl_exchange.wallet.address
    paper_exchange.admin("POST", "/admin/config", {"address_request_cap": 2})
    assert hl_exchange.cancel("BTC", 1)["status"] == "ok"
    limits = hl_info.user_rate_limit(address)
    assert limits["nRequestsUsed"] == 1 and limits["nRequestsCap"] == 2
    assert hl_exchange.cancel("BTC", 1)["status"] == "ok"
    px = round(float(hl_info.all_mids()["BTC"]) * 0.9)
    refused = hl_exchange.order("BTC", True, 0.001, px, {"limit": {"tif": "Gtc"}})
    assert refused["status"] == "err" and refused["response"].startswith("Too many cumulative requests sent (3 > 2)")


def test_cancels_have_their_higher_cap_so_a_capped_account_can_still_cancel(
        paper_exchange: RunningExchange, hl_info: Info, hl_exchange: Exchange) -> None:
    """Hyperliquid's rate-limit docs: "Cancels have cumulative limit min(limit + 100000, limit * 2)
    where limit is the default limit for other actions. This way, hitting the address-based rate
    limit will still allow open orders to be canceled." Every action was refused past the cap,
    cancels included: a capped account could not take its resting orders off the book (the agent's
    emergency cancels what can add exposure), where Hyperliquid lets it."""
    px = round(float(hl_info.all_mids()["BTC"]) * 0.9)
    resting = [hl_exchange.order("BTC", True, 0.001, px - i, {"limit": {"tif": "Gtc"}}, cloid=Cloid.from_int(i + 1))
               for i in range(3)]
    oids = [r["response"]["data"]["statuses"][0]["resting"]["oid"] for r in resting]
    paper_exchange.admin("POST", "/admin/config", {"address_request_cap": 3})  # used: 3, the cap reached
    refused = hl_exchange.order("BTC", True, 0.001, px, {"limit": {"tif": "Gtc"}})
    assert refused["status"] == "err" and refused["response"].startswith("Too many cumulative requests sent (4 > 3)")
    cancels = [hl_exchange.cancel("BTC", oids[0]), hl_exchange.cancel_by_cloid("BTC", Cloid.from_int(2)),
               hl_exchange.cancel("BTC", oids[2])]  # the 6th request: min(3 + 100000, 3 * 2)
    assert [c["status"] for c in cancels] == ["ok"] * 3, cancels
    assert [c["response"]["data"]["statuses"] for c in cancels] == [["success"]] * 3
    assert hl_info.open_orders(hl_exchange.wallet.address) == []
    again = hl_exchange.cancel("BTC", oids[2])
    assert again["status"] == "err" and again["response"].startswith("Too many cumulative requests sent (7 > 6)")


def test_latency_fault_delays_answers(paper_exchange: RunningExchange) -> None:
    paper_exchange.admin("POST", "/admin/faults", {"latency_ms": 1500})
    slow = Info(paper_exchange.url, skip_ws=True, spot_meta={"universe": [], "tokens": []},
                meta={"universe": []}, timeout=0.3)
    with pytest.raises(requests.exceptions.Timeout):
        slow.all_mids()
    # the admin API is never delayed, so a drill can always be ended
    assert paper_exchange.admin("GET", "/admin/state")["faults"]["latency_ms"] == 1500


def test_outage_503_and_refuse(paper_exchange: RunningExchange, hl_info: Info) -> None:
    paper_exchange.admin("POST", "/admin/faults", {"outage": "503"})
    with pytest.raises(ServerError) as err:
        hl_info.all_mids()
    assert err.value.status_code == 503
    paper_exchange.admin("POST", "/admin/faults", {"outage": "refuse"})
    with pytest.raises(requests.exceptions.ConnectionError):
        hl_info.all_mids()
    paper_exchange.admin("POST", "/admin/faults", {"outage": "off"})
    assert "BTC" in hl_info.all_mids()


def test_dropped_response_still_applies_the_action(paper_exchange: RunningExchange, hl_info: Info,
                                                   hl_exchange: Exchange) -> None:
    paper_exchange.admin("POST", "/admin/faults", {"drop_responses": 1})
    cloid = Cloid.from_int(4242)
    px = round(float(hl_info.all_mids()["BTC"]) * 0.9)
    with pytest.raises(requests.exceptions.ConnectionError):
        hl_exchange.order("BTC", True, 0.01, px, {"limit": {"tif": "Gtc"}}, cloid=cloid)
    found = hl_info.query_order_by_cloid(hl_exchange.wallet.address, cloid)
    assert found["status"] == "order" and found["order"]["status"] == "open"
    # only the next N responses are dropped
    assert hl_exchange.cancel_by_cloid("BTC", cloid)["response"]["data"]["statuses"] == ["success"]


def test_unknown_fault_is_a_400(paper_exchange: RunningExchange) -> None:
    r = loopback.post(paper_exchange.url + "/admin/faults", json={"latncy_ms": 5},
                   headers={"Authorization": f"Bearer {paper_exchange.admin_token}"})
    assert r.status_code == 400 and "latncy_ms" in r.json()["error"]


def test_reset_clears_faults_and_optionally_state(paper_exchange: RunningExchange, hl_info: Info,
                                                  hl_exchange: Exchange) -> None:
    hl_exchange.market_open("ETH", True, 0.1)
    paper_exchange.admin("POST", "/admin/faults", {"outage": "503"})
    paper_exchange.admin("POST", "/admin/reset", {})
    assert hl_info.user_state(hl_exchange.wallet.address)["assetPositions"]
    paper_exchange.admin("POST", "/admin/reset", {"state": True})
    state = hl_info.user_state(hl_exchange.wallet.address)
    assert state["assetPositions"] == [] and float(state["marginSummary"]["accountValue"]) == 100_000
    assert hl_info.user_fills(hl_exchange.wallet.address) == []
