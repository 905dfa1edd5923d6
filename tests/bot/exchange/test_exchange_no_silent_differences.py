"""No silent differences: what the paper exchange supports behaves like Hyperliquid, and what it
does not is refused by name, never accepted and ignored. One test per item of issue 16, point 3,
through the unmodified SDK."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.error import ClientError
from hyperliquid.utils.signing import get_timestamp_ms
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.exchange import RunningExchange, catalog, serve_in_thread
from bot.exchange.market import coin_spec, round_to_tick, tick_size
from bot.exchange.rules import on_tick
from tests.support import loopback

REPO = Path(__file__).resolve().parents[3]
BUILDER = "0x" + "b" * 40


def rest_px(info: Info, coin: str = "BTC") -> float:
    return round(float(info.all_mids()[coin]) * 0.9)


def test_vault_address_is_refused_not_ignored(paper_exchange: RunningExchange, dev_wallet: LocalAccount,
                                              hl_info: Info) -> None:
    vault = "0x" + "9" * 40
    ex = Exchange(dev_wallet, paper_exchange.url, vault_address=vault)
    resp = ex.order("BTC", True, 0.01, rest_px(hl_info), {"limit": {"tif": "Gtc"}})
    assert resp["status"] == "err"
    assert resp["response"].startswith("Unsupported by the paper exchange: vaultAddress")
    assert hl_info.open_orders(dev_wallet.address) == []  # not placed on the signer's own account either


def test_builder_needs_an_approved_fee_and_is_paid(paper_exchange: RunningExchange, hl_exchange: Exchange,
                                                  hl_info: Info, dev_wallet: LocalAccount) -> None:
    refused = hl_exchange.market_open("ETH", True, 0.1, builder={"b": BUILDER, "f": 10})
    assert refused == {"status": "err", "response": "Builder fee has not been approved."}
    assert hl_info.user_fills(dev_wallet.address) == []
    unfunded = hl_exchange.approve_builder_fee(BUILDER, "0.01%")
    assert unfunded["status"] == "err" and "at least 100 USDC in perps account value" in unfunded["response"]
    paper_exchange.admin("POST", "/admin/accounts", {"address": BUILDER, "usdc": 100})
    assert hl_exchange.approve_builder_fee(BUILDER, "0.01%")["status"] == "ok"
    assert hl_info.post("/info", {"type": "maxBuilderFee", "user": dev_wallet.address, "builder": BUILDER}) == 10
    too_much = hl_exchange.market_open("ETH", True, 0.1, builder={"b": BUILDER, "f": 11})
    assert too_much["response"] == "Builder fee has not been approved."
    filled = hl_exchange.market_open("ETH", True, 0.1, builder={"b": BUILDER, "f": 10})
    assert "filled" in filled["response"]["data"]["statuses"][0]
    [fill] = hl_info.user_fills(dev_wallet.address)
    notional = float(fill["px"]) * float(fill["sz"])
    # amounts are wire strings with 6 decimals: compare to within their rounding
    assert float(fill["builderFee"]) == pytest.approx(notional * 10e-5, abs=1e-6)  # 10 tenths of a bp = 1 bp
    assert float(fill["fee"]) == pytest.approx(notional * 0.00045 + notional * 10e-5, abs=1e-6)
    builder_value = float(hl_info.user_state(BUILDER)["marginSummary"]["accountValue"])
    assert builder_value == pytest.approx(100 + notional * 10e-5, abs=1e-6)
    assert hl_exchange.approve_builder_fee(BUILDER, "0.2%")["response"].startswith("Builder fee rate 0.2%")


def test_user_signed_actions_are_verified_as_user_signed(paper_exchange: RunningExchange, hl_exchange: Exchange,
                                                         hl_info: Info, dev_wallet: LocalAccount) -> None:
    friend = Account.create().address
    before = float(hl_info.user_state(dev_wallet.address)["withdrawable"])
    assert hl_exchange.usd_transfer(250.0, friend) == {"status": "ok", "response": {"type": "default"}}
    assert float(hl_info.user_state(friend)["marginSummary"]["accountValue"]) == 250.0
    assert hl_exchange.withdraw_from_bridge(100.0, friend)["status"] == "ok"
    after = float(hl_info.user_state(dev_wallet.address)["withdrawable"])
    assert after == pytest.approx(before - 350.0)
    updates = hl_info.user_non_funding_ledger_updates(dev_wallet.address, 0)
    assert [u["delta"]["type"] for u in updates] == ["internalTransfer", "withdraw"]
    assert updates[1]["delta"]["fee"] == "1.0"
    # a stranger's usdSend recovers the stranger, exactly as an L1 action would
    stranger = Exchange(Account.create(), paper_exchange.url)
    resp = stranger.usd_transfer(1.0, friend)
    assert resp == {"status": "err", "response": f"User or API Wallet {stranger.wallet.address.lower()} does not exist."}
    assert hl_exchange.usd_transfer(10_000_000.0, friend)["response"].startswith("Insufficient balance")


@pytest.mark.parametrize(("call", "kind"), [
    (lambda ex: ex.usd_class_transfer(10.0, True), "usdClassTransfer"),
    (lambda ex: ex.spot_transfer(1.0, "0x" + "3" * 40, "PURR:0xc4bf3f870c0e9465323c0b6ed28096c2"), "spotSend"),
    (lambda ex: ex.send_asset("0x" + "3" * 40, "", "spot", "USDC", 1.0), "sendAsset"),
    (lambda ex: ex.token_delegate("0x" + "4" * 40, 10, False), "tokenDelegate"),
    (lambda ex: ex.user_dex_abstraction(ex.wallet.address, True), "userDexAbstraction"),
    (lambda ex: ex.set_referrer("CODE"), "setReferrer"),
    (lambda ex: ex.create_sub_account("sub"), "createSubAccount"),
    (lambda ex: ex.vault_usd_transfer("0x" + "5" * 40, True, 10), "vaultTransfer"),
])
def test_unsupported_actions_are_refused_by_name(hl_exchange: Exchange, call: Any, kind: str) -> None:
    resp = call(hl_exchange)
    assert resp["status"] == "err"
    assert resp["response"].startswith(f"Unsupported by the paper exchange: action {kind} (")


def test_an_action_hyperliquid_does_not_know_fails_to_deserialize(paper_exchange: RunningExchange,
                                                                  dev_wallet: LocalAccount) -> None:
    from hyperliquid.utils.signing import sign_l1_action

    action, nonce = {"type": "teleport"}, get_timestamp_ms()
    body = {"action": action, "nonce": nonce, "signature": sign_l1_action(dev_wallet, action, None, nonce, None, False)}
    r = loopback.post(paper_exchange.url + "/exchange", json=body)
    assert (r.status_code, r.text) == (422, "Failed to deserialize the JSON body into the target type")


def test_update_isolated_margin(hl_exchange: Exchange, hl_info: Info, dev_wallet: LocalAccount) -> None:
    assert hl_exchange.update_isolated_margin(50, "BTC")["response"].startswith("Cannot update isolated margin: no open")
    assert hl_exchange.update_leverage(5, "BTC", is_cross=False)["status"] == "ok"
    assert hl_exchange.market_open("BTC", True, 0.01)["status"] == "ok"
    assert hl_exchange.update_leverage(5, "BTC", is_cross=True)["response"] == \
        "Cannot switch leverage type with open position."

    def state() -> tuple[dict[str, Any], float]:
        s = hl_info.user_state(dev_wallet.address)
        return s["assetPositions"][0]["position"], float(s["withdrawable"])
    pos, free = state()
    assert pos["leverage"]["type"] == "isolated"
    margin = float(pos["marginUsed"])
    assert hl_exchange.update_isolated_margin(100, "BTC") == {"status": "ok", "response": {"type": "default"}}
    pos2, free2 = state()
    assert float(pos2["marginUsed"]) == pytest.approx(margin + 100, abs=1e-6)
    assert free2 == pytest.approx(free - 100, abs=1.0)  # the mark moves a little between the reads
    assert float(pos2["liquidationPx"]) < float(pos["liquidationPx"])  # more margin, further away
    too_much = hl_exchange.update_isolated_margin(-(margin + 100), "BTC")
    assert too_much["status"] == "err" and "below" in too_much["response"]
    assert hl_exchange.update_isolated_margin(-100, "BTC")["status"] == "ok"
    hl_exchange.market_open("ETH", True, 0.1)
    assert "cross margin" in hl_exchange.update_isolated_margin(10, "ETH")["response"]


def test_schedule_cancel_fires_at_its_time_without_the_market_tick(tmp_path: Path, dev_wallet: LocalAccount) -> None:
    # A market tick once an hour: only the scheduled cancel's own timer can cancel the order.
    ex = serve_in_thread(state=tmp_path / "slow.db", tick_seconds=3600)
    try:
        info, exchange = Info(ex.url, skip_ws=True, timeout=10), Exchange(dev_wallet, ex.url, timeout=10)
        placed = exchange.order("BTC", True, 0.01, rest_px(info), {"limit": {"tif": "Gtc"}})
        oid = placed["response"]["data"]["statuses"][0]["resting"]["oid"]
        at = get_timestamp_ms() + 5_200
        assert exchange.schedule_cancel(at)["status"] == "ok"
        deadline = at + 20_000
        while info.query_order_by_oid(dev_wallet.address, oid)["order"]["status"] == "open":
            assert get_timestamp_ms() < deadline, "the scheduled cancel never fired"
            import time

            time.sleep(0.05)
        status = info.query_order_by_oid(dev_wallet.address, oid)["order"]
        assert status["status"] == "scheduledCancel" and status["statusTimestamp"] >= at
    finally:
        ex.stop()


def test_expires_after_in_the_past_is_refused_and_charged(hl_exchange: Exchange, hl_info: Info,
                                                          dev_wallet: LocalAccount) -> None:
    used = hl_info.user_rate_limit(dev_wallet.address)["nRequestsUsed"]
    hl_exchange.set_expires_after(get_timestamp_ms() - 1_000)
    resp = hl_exchange.order("BTC", True, 0.01, rest_px(hl_info), {"limit": {"tif": "Gtc"}})
    assert resp["status"] == "err" and resp["response"].startswith("Action expired")
    assert hl_info.open_orders(dev_wallet.address) == []
    assert hl_info.user_rate_limit(dev_wallet.address)["nRequestsUsed"] == used + 5  # 5x, as documented
    # user-signed actions do not take expiresAfter at all
    assert "not supported for user-signed" in hl_exchange.usd_transfer(1.0, "0x" + "6" * 40)["response"]
    hl_exchange.set_expires_after(get_timestamp_ms() + 60_000)
    assert hl_exchange.order("BTC", True, 0.01, rest_px(hl_info), {"limit": {"tif": "Gtc"}})["status"] == "ok"


def test_price_off_the_tick_grid_is_hyperliquids_tick_error(hl_exchange: Exchange) -> None:
    resp = hl_exchange.order("BTC", True, 0.01, 60_000.5, {"limit": {"tif": "Gtc"}})
    assert resp["response"]["data"]["statuses"] == [{"error": "Price must be divisible by tick size. asset=0"}]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["BTC", "ETH", "SOL", "DOGE", "ARB"]), st.floats(min_value=1e-4, max_value=2e6),
       st.booleans())
def test_every_price_the_market_rounds_to_is_on_the_tick_grid(coin: str, px: float, up: bool) -> None:
    """The market's own rounding and the order rule agree: a price it quotes is never refused."""
    d = coin_spec(coin).sz_decimals
    rounded = round_to_tick(px, tick_size(px, d), up=up)
    if rounded > 0:
        assert on_tick(Decimal(repr(rounded)), d), (coin, px, rounded)


@pytest.mark.parametrize(("body", "text"), [
    ({"type": "portfolio", "user": "0x" + "1" * 40}, "info type portfolio (no portfolio history)"),
    ({"type": "l2Book", "coin": "BTC", "nSigFigs": 3}, "l2Book nSigFigs/mantissa"),
    ({"type": "clearinghouseState", "user": "0x" + "1" * 40, "dex": "xyz"}, "perp dex 'xyz'"),
    ({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1M", "startTime": 0}}, "candle interval 1M"),
])
def test_unsupported_info_requests_are_refused_by_name(paper_exchange: RunningExchange, body: dict[str, Any],
                                                       text: str) -> None:
    r = loopback.post(paper_exchange.url + "/info", json=body)
    assert r.status_code == 422 and r.text.startswith("Unsupported by the paper exchange: ") and text in r.text


def test_sdk_sees_a_refused_info_type_as_a_client_error(hl_info: Info, dev_wallet: LocalAccount) -> None:
    with pytest.raises(ClientError) as refused:
        hl_info.portfolio(dev_wallet.address)
    assert refused.value.status_code == 422 and "portfolio" in str(refused.value.error_message)


def test_fills_aggregate_by_time(hl_exchange: Exchange, hl_info: Info, dev_wallet: LocalAccount) -> None:
    assert hl_exchange.market_open("BTC", True, 5.0, slippage=0.02)["status"] == "ok"  # walks several levels
    fills = hl_info.user_fills(dev_wallet.address)
    merged = hl_info.post("/info", {"type": "userFills", "user": dev_wallet.address, "aggregateByTime": True})
    assert len(fills) > 1 and len(merged) == 1
    assert float(merged[0]["sz"]) == pytest.approx(sum(float(f["sz"]) for f in fills))


def test_docs_table_is_the_catalogue() -> None:
    doc = (REPO / "docs" / "bot-and-exchange.md").read_text(encoding="utf-8")
    assert catalog.markdown() in doc, "docs/bot-and-exchange.md: paste the output of bot.exchange.catalog.markdown()"


def test_every_sdk_exchange_action_is_in_the_catalogue() -> None:
    """Each action type the SDK can send is either served or refused by name, never unknown."""
    import inspect

    import hyperliquid.exchange as sdk

    source = inspect.getsource(sdk)
    kinds = {json.loads(f'"{m}"') for m in __import__("re").findall(r'"type": "([A-Za-z0-9]+)"', source)}
    assert kinds - set(catalog.ACTIONS) == set()


@pytest.mark.parametrize("body", [{"type": ["allMids"]}, {"type": {"allMids": 1}}, {"type": 7}, ["allMids"]])
def test_an_info_request_of_the_wrong_shape_fails_to_deserialize(paper_exchange: RunningExchange,
                                                                 body: Any) -> None:
    """A ``type`` that is a list or an object (not hashable) answered 500 "Internal Server Error"
    from the request weight's lookup, before the view could refuse it; Hyperliquid answers such a
    body 422 in its deserialization words, as the paper exchange does for every other bad shape."""
    r = loopback.post(paper_exchange.url + "/info", json=body)
    assert (r.status_code, r.text) == (422, "Failed to deserialize the JSON body into the target type")


@pytest.mark.parametrize("body", [
    {"type": "orderStatus", "user": "0x" + "1" * 40, "oid": 10**30},
    {"type": "userFillsByTime", "user": "0x" + "1" * 40, "startTime": 10**30},
    {"type": "userNonFundingLedgerUpdates", "user": "0x" + "1" * 40, "startTime": 10**30},
])
def test_a_number_beyond_64_bits_fails_to_deserialize(paper_exchange: RunningExchange, body: Any) -> None:
    """Hyperliquid's oids and times are 64-bit; a larger number answered 500 (SQLite's OverflowError
    escaped the view) where Hyperliquid cannot deserialize the body (422)."""
    r = loopback.post(paper_exchange.url + "/info", json=body)
    assert (r.status_code, r.text) == (422, "Failed to deserialize the JSON body into the target type")


U = "0x" + "1" * 40
NOW = 1_800_000_000_000


@pytest.mark.parametrize("body", [
    {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m", "startTime": -5, "endTime": NOW}},
    {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m", "startTime": 1.5, "endTime": NOW}},
    {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m", "startTime": "0", "endTime": NOW}},
    {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m", "startTime": 0, "endTime": True}},
    {"type": "userFillsByTime", "user": U, "startTime": -1},
    {"type": "userFillsByTime", "user": U, "startTime": 0, "endTime": 2.5},
    {"type": "userNonFundingLedgerUpdates", "user": U, "startTime": True},
    {"type": "orderStatus", "user": U, "oid": -1},
    {"type": "orderStatus", "user": U, "oid": 1000.5},
])
def test_a_time_or_oid_that_is_not_an_unsigned_integer_fails_to_deserialize(
        paper_exchange: RunningExchange, body: Any) -> None:
    """Hyperliquid's times and oids are unsigned 64-bit integers: a negative, fractional, string or
    boolean one cannot be deserialized (422). They were coerced (``int(...)``) and answered: a
    startTime -5 or 1.5 read as 0, "0" as 0, true as 1, an oid 1000.5 as order 1000: accepted and
    quietly changed."""
    r = loopback.post(paper_exchange.url + "/info", json=body)
    assert (r.status_code, r.text) == (422, "Failed to deserialize the JSON body into the target type")


WIRE = {"a": 1, "b": True, "p": "2000", "s": "0.01", "r": False, "t": {"limit": {"tif": "Gtc"}}}


@pytest.mark.parametrize("action", [
    {"type": "order", "orders": ["x"], "grouping": "na"},
    {"type": "order", "orders": [None], "grouping": "na"},
    {"type": "order", "orders": [{**WIRE, "t": ["x"]}], "grouping": "na"},
    {"type": "order", "orders": [{**WIRE, "t": {"limit": ["x"]}}], "grouping": "na"},
    {"type": "order", "orders": [{**WIRE, "t": {"trigger": ["x"]}}], "grouping": "na"},
    {"type": "cancel", "cancels": ["x"]},
    {"type": "cancelByCloid", "cancels": [None]},
    {"type": "modify", "oid": [], "order": WIRE},
    {"type": "batchModify", "modifies": ["x"]},
    {"type": "batchModify", "modifies": [{"oid": [], "order": WIRE}]},
    # scalars of the wrong type were coerced (bool(), int()) and applied (r16c): leverage true set
    # leverage 1, isCross 1 cross margin, a wire's "b": "false" a buy; an oid -1 or 1.5 and an asset
    # true were looked up ("asset=True" in the answer)
    {"type": "updateLeverage", "asset": 0, "isCross": True, "leverage": True},
    {"type": "updateLeverage", "asset": 0, "isCross": 1, "leverage": 3},
    {"type": "updateLeverage", "asset": 0, "isCross": True, "leverage": 2.5},
    {"type": "order", "orders": [{**WIRE, "b": "false"}], "grouping": "na"},
    {"type": "order", "orders": [{**WIRE, "r": 0}], "grouping": "na"},
    {"type": "order", "orders": [{**WIRE, "a": True}], "grouping": "na"},
    {"type": "cancel", "cancels": [{"a": 0, "o": -1}]},
    {"type": "cancel", "cancels": [{"a": True, "o": 5}]},
    {"type": "cancel", "cancels": [{"a": 0, "o": 1.5}]},
    {"type": "cancelByCloid", "cancels": [{"asset": -1, "cloid": "0x" + "0" * 32}]},
    {"type": "modify", "oid": -1, "order": WIRE},
    {"type": "scheduleCancel", "time": True},
    {"type": "scheduleCancel", "time": 1.5},
    {"type": "updateIsolatedMargin", "asset": True, "isBuy": True, "ntli": 1_000_000},
    {"type": "updateIsolatedMargin", "asset": 0, "isBuy": 1, "ntli": 1_000_000},
])
def test_a_trading_action_of_the_wrong_structure_fails_to_deserialize(
        paper_exchange: RunningExchange, dev_wallet: LocalAccount, action: dict[str, Any]) -> None:
    """Found by fuzzing signed actions: each of these answered {"status": "err", "response":
    "Internal error while applying the action"} (the paper exchange's words for its own bug) and
    logged a traceback; Hyperliquid cannot deserialize such a body and answers 422 in its words."""
    from hyperliquid.utils.signing import sign_l1_action

    nonce = get_timestamp_ms()
    body = {"action": action, "nonce": nonce, "signature": sign_l1_action(dev_wallet, action, None, nonce, None, False)}
    r = loopback.post(paper_exchange.url + "/exchange", json=body)
    assert (r.status_code, r.text) == (422, "Failed to deserialize the JSON body into the target type")
