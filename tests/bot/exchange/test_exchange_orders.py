"""Order semantics through the unmodified SDK against a real paper exchange."""
from __future__ import annotations

from typing import Any

import pytest
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.types import Cloid

from bot.exchange import RunningExchange

BTC, ETH = 0, 1


def statuses(resp: dict[str, Any]) -> list[Any]:
    assert resp["status"] == "ok", resp
    return resp["response"]["data"]["statuses"]


def mid(info: Info, coin: str) -> float:
    return float(info.all_mids()[coin])


def position(info: Info, address: str, coin: str) -> dict[str, Any] | None:
    for p in info.user_state(address)["assetPositions"]:
        if p["position"]["coin"] == coin:
            return p["position"]
    return None


def test_place_rest_and_cancel(hl_info: Info, hl_exchange: Exchange) -> None:
    px = round(mid(hl_info, "BTC") * 0.95)
    [st] = statuses(hl_exchange.order("BTC", True, 0.01, px, {"limit": {"tif": "Gtc"}}))
    oid = st["resting"]["oid"]
    [open_order] = hl_info.open_orders(hl_exchange.wallet.address)
    assert open_order["oid"] == oid and open_order["side"] == "B" and float(open_order["limitPx"]) == px
    assert hl_info.query_order_by_oid(hl_exchange.wallet.address, oid)["order"]["status"] == "open"
    assert statuses(hl_exchange.cancel("BTC", oid)) == ["success"]
    assert hl_info.open_orders(hl_exchange.wallet.address) == []
    assert hl_info.query_order_by_oid(hl_exchange.wallet.address, oid)["order"]["status"] == "canceled"
    # a second cancel of the same order is Hyperliquid's per-order error
    assert statuses(hl_exchange.cancel("BTC", oid)) == [
        {"error": f"Order was never placed, already canceled, or filled. asset={BTC}"}]


def test_cloid_status_and_cancel_by_cloid(hl_info: Info, hl_exchange: Exchange) -> None:
    cloid = Cloid.from_int(77)
    px = round(mid(hl_info, "ETH") * 0.9, 1)
    [st] = statuses(hl_exchange.order("ETH", True, 0.1, px, {"limit": {"tif": "Gtc"}}, cloid=cloid))
    assert st["resting"]["cloid"] == cloid.to_raw()
    found = hl_info.query_order_by_cloid(hl_exchange.wallet.address, cloid)
    assert found["status"] == "order" and found["order"]["order"]["oid"] == st["resting"]["oid"]
    assert statuses(hl_exchange.cancel_by_cloid("ETH", cloid)) == ["success"]
    assert hl_info.query_order_by_cloid(hl_exchange.wallet.address, cloid)["order"]["status"] == "canceled"
    assert hl_info.query_order_by_oid(hl_exchange.wallet.address, 999_999)["status"] == "unknownOid"


def test_bulk_cancel_of_100_orders_is_one_request(hl_info: Info, hl_exchange: Exchange,
                                                  paper_exchange: RunningExchange) -> None:
    px = round(mid(hl_info, "BTC") * 0.9)
    orders = [{"coin": "BTC", "is_buy": True, "sz": 0.001, "limit_px": px - i, "order_type": {"limit": {"tif": "Gtc"}},
               "reduce_only": False} for i in range(100)]
    placed = statuses(hl_exchange.bulk_orders(orders))
    oids = [s["resting"]["oid"] for s in placed]
    assert len(set(oids)) == 100
    before = paper_exchange.admin("GET", "/admin/state")["accounts"]
    result = statuses(hl_exchange.bulk_cancel([{"coin": "BTC", "oid": o} for o in oids]))
    assert result == ["success"] * 100
    assert hl_info.open_orders(hl_exchange.wallet.address) == []
    after = paper_exchange.admin("GET", "/admin/state")["accounts"]
    address = hl_exchange.wallet.address.lower()
    # one signed request, counted as 100 for the address-based limit (Hyperliquid's batch rule)
    assert after[address]["n_requests"] - before[address]["n_requests"] == 100


def test_market_open_and_close_books_pnl_and_fees(hl_info: Info, hl_exchange: Exchange) -> None:
    address = hl_exchange.wallet.address
    [st] = statuses(hl_exchange.market_open("ETH", True, 0.5))
    assert float(st["filled"]["totalSz"]) == 0.5
    pos = position(hl_info, address, "ETH")
    assert pos is not None and float(pos["szi"]) == 0.5
    assert float(pos["entryPx"]) == pytest.approx(float(st["filled"]["avgPx"]))
    assert pos["leverage"]["type"] == "cross"
    [closed] = statuses(hl_exchange.market_close("ETH"))
    assert float(closed["filled"]["totalSz"]) == 0.5
    assert position(hl_info, address, "ETH") is None
    fills = hl_info.user_fills(address)
    assert [f["dir"] for f in fills] == ["Close Long", "Open Long"]
    close_fill = fills[0]
    expected_pnl = 0.5 * (float(close_fill["px"]) - float(fills[1]["px"]))
    assert float(close_fill["closedPnl"]) == pytest.approx(expected_pnl, abs=1e-6)
    assert all(f["crossed"] and float(f["fee"]) > 0 for f in fills)
    value = float(hl_info.user_state(address)["marginSummary"]["accountValue"])
    fees = sum(float(f["fee"]) for f in fills)
    assert value == pytest.approx(100_000 + expected_pnl - fees, abs=1e-4)


@pytest.mark.parametrize(
    ("coin", "is_buy", "sz", "px_factor", "order_type", "reduce_only", "expected"),
    [
        ("BTC", True, 0.01, 0.9, {"limit": {"tif": "Ioc"}}, False,
         "Order could not immediately match against any resting orders. asset=0"),
        ("BTC", False, 0.01, 1.1, {"limit": {"tif": "Gtc"}}, True, "Reduce only order would increase position. asset=0"),
        ("ETH", True, 0.001, 0.9, {"limit": {"tif": "Gtc"}}, False, "Order must have minimum value of $10. asset=1"),
        ("BTC", True, 0.00001234, 0.9, {"limit": {"tif": "Gtc"}}, False, "Order has invalid size. asset=0"),
    ],
)
def test_order_rejections_use_hyperliquid_text(hl_info: Info, hl_exchange: Exchange, coin: str, is_buy: bool,
                                               sz: float, px_factor: float, order_type: dict[str, Any],
                                               reduce_only: bool, expected: str) -> None:
    px = round(float(f"{mid(hl_info, coin) * px_factor:.5g}"))
    [st] = statuses(hl_exchange.order(coin, is_buy, sz, px, order_type, reduce_only=reduce_only))
    assert st == {"error": expected}
    assert hl_info.open_orders(hl_exchange.wallet.address) == []


@pytest.mark.parametrize(("coin", "px", "expected"), [
    # off the tick grid (6 significant figures; 3 decimals with szDecimals 4): Hyperliquid's tick error
    ("BTC", 60_000.5, "Price must be divisible by tick size. asset=0"),
    ("BTC", 61_234.56, "Price must be divisible by tick size. asset=0"),
    ("ETH", 3_000.125, "Price must be divisible by tick size. asset=1"),
    # not a price at all
    ("BTC", 0.0, "Order has invalid price. asset=0"),
])
def test_invalid_price_is_rejected(hl_exchange: Exchange, coin: str, px: float, expected: str) -> None:
    [st] = statuses(hl_exchange.order(coin, True, 0.01, px, {"limit": {"tif": "Gtc"}}))
    assert st == {"error": expected}


def test_post_only_that_would_cross_is_rejected(hl_info: Info, hl_exchange: Exchange) -> None:
    px = round(mid(hl_info, "BTC") * 1.02)
    [st] = statuses(hl_exchange.order("BTC", True, 0.01, px, {"limit": {"tif": "Alo"}}))
    assert st["error"].startswith("Post only order would have immediately matched, bbo was ")
    assert st["error"].endswith(" asset=0")


def test_stop_loss_fires_on_price_shock(hl_info: Info, hl_exchange: Exchange,
                                        paper_exchange: RunningExchange) -> None:
    address = hl_exchange.wallet.address
    statuses(hl_exchange.market_open("BTC", True, 0.02))
    trigger = round(mid(hl_info, "BTC") * 0.95)
    [st] = statuses(hl_exchange.order("BTC", False, 0.02, trigger, {"trigger": {"triggerPx": trigger, "isMarket": True,
                                                                                  "tpsl": "sl"}}, reduce_only=True))
    oid = st["resting"]["oid"]
    [fe] = hl_info.frontend_open_orders(address)
    assert fe["isTrigger"] and fe["orderType"] == "Stop Market" and fe["triggerCondition"].startswith("Price below")
    shock = paper_exchange.admin("POST", "/admin/shock", {"coin": "BTC", "pct": -10})
    assert shock["after"] < trigger
    assert position(hl_info, address, "BTC") is None
    assert hl_info.query_order_by_oid(address, oid)["order"]["status"] == "filled"
    stop_fill = hl_info.user_fills(address)[0]
    assert stop_fill["oid"] == oid and stop_fill["dir"] == "Close Long" and float(stop_fill["closedPnl"]) < 0


def test_resting_buy_fills_as_maker_when_price_crosses(hl_info: Info, hl_exchange: Exchange,
                                                       paper_exchange: RunningExchange) -> None:
    address = hl_exchange.wallet.address
    px = round(mid(hl_info, "BTC") * 0.97)
    [st] = statuses(hl_exchange.order("BTC", True, 0.01, px, {"limit": {"tif": "Gtc"}}))
    paper_exchange.admin("POST", "/admin/shock", {"coin": "BTC", "pct": -6})
    [fill] = hl_info.user_fills(address)
    assert fill["oid"] == st["resting"]["oid"] and float(fill["px"]) == px and fill["crossed"] is False
    assert float(position(hl_info, address, "BTC")["szi"]) == 0.01  # type: ignore[index]


def test_update_leverage_and_batch_modify(hl_info: Info, hl_exchange: Exchange) -> None:
    address = hl_exchange.wallet.address
    assert hl_exchange.update_leverage(5, "ETH", is_cross=False) == {"status": "ok", "response": {"type": "default"}}
    statuses(hl_exchange.market_open("ETH", True, 0.2))
    pos = position(hl_info, address, "ETH")
    assert pos is not None and pos["leverage"]["type"] == "isolated" and pos["leverage"]["value"] == 5
    px = round(mid(hl_info, "ETH") * 0.9, 1)
    [st] = statuses(hl_exchange.order("ETH", True, 0.1, px, {"limit": {"tif": "Gtc"}}))
    new_px = round(px * 0.99, 1)
    [mod] = statuses(hl_exchange.modify_order(st["resting"]["oid"], "ETH", True, 0.2, new_px, {"limit": {"tif": "Gtc"}}))
    [open_order] = hl_info.open_orders(address)
    assert open_order["oid"] == mod["resting"]["oid"] and float(open_order["limitPx"]) == new_px
    assert float(open_order["sz"]) == 0.2


@pytest.mark.parametrize("change", ["bad tick", "insufficient margin", "another asset", "far from reference"])
def test_a_refused_modify_leaves_the_original_resting(hl_info: Info, hl_exchange: Exchange, change: str) -> None:
    address = hl_exchange.wallet.address
    px = round(mid(hl_info, "ETH") * 0.9, 1)
    [st] = statuses(hl_exchange.order("ETH", True, 0.1, px, {"limit": {"tif": "Gtc"}}, cloid=Cloid("0x" + "ab" * 16)))
    oid = st["resting"]["oid"]
    coin, sz, new_px = "ETH", 0.1, px
    if change == "bad tick":
        new_px = px + 0.01234
    elif change == "insufficient margin":
        sz = 1000.0
    elif change == "another asset":
        coin, new_px = "BTC", float(round(mid(hl_info, "BTC") * 0.9))
    else:
        new_px = round(px * 0.1, 1)
    [refused] = statuses(hl_exchange.modify_order(oid, coin, True, sz, new_px, {"limit": {"tif": "Gtc"}}))
    assert "error" in refused, refused
    expected = {"bad tick": "Price must be divisible by tick size.",
                "insufficient margin": "Insufficient margin to place order.",
                "another asset": "another asset",
                "far from reference": "Order price cannot be more than 80% away from the reference price"}[change]
    assert expected in refused["error"]
    [still] = hl_info.open_orders(address)  # the original rests, unchanged
    assert still["oid"] == oid and float(still["limitPx"]) == px and float(still["sz"]) == 0.1
    assert hl_info.query_order_by_oid(address, oid)["order"]["status"] == "open"


def test_orders_more_than_80_percent_from_the_reference_price_are_refused(hl_info: Info,
                                                                          hl_exchange: Exchange) -> None:
    ref = mid(hl_info, "BTC")
    far = "Order price cannot be more than 80% away from the reference price"
    [low] = statuses(hl_exchange.order("BTC", True, 0.01, float(round(ref * 0.15)), {"limit": {"tif": "Gtc"}}))
    [high] = statuses(hl_exchange.order("BTC", False, 0.001, float(round(ref * 1.85)), {"limit": {"tif": "Gtc"}}))
    trigger = {"trigger": {"triggerPx": float(round(ref * 0.1)), "isMarket": True, "tpsl": "sl"}}
    [trig] = statuses(hl_exchange.order("BTC", False, 0.01, float(round(ref * 0.5)), trigger, reduce_only=True))
    assert low == {"error": far} and high == {"error": far} and trig == {"error": far}
    [inside] = statuses(hl_exchange.order("BTC", True, 0.01, float(round(ref * 0.25)), {"limit": {"tif": "Gtc"}}))
    assert "resting" in inside


@pytest.mark.parametrize("is_cross", [True, False])
def test_lowering_leverage_below_what_the_position_can_post_is_refused(paper_exchange: RunningExchange,
                                                                        hl_info: Info, is_cross: bool) -> None:
    """Lower leverage asks more initial margin of an open position: refused when the account cannot
    post it (the leverage stays), accepted when it can; raising it is always accepted."""
    from eth_account import Account

    trader = Exchange(Account.create(), paper_exchange.url, timeout=10)
    address = trader.wallet.address
    paper_exchange.admin("POST", "/admin/accounts", {"address": address, "usdc": 1000})
    assert trader.update_leverage(20, "ETH", is_cross=is_cross)["status"] == "ok"
    size = round(10_000 / mid(hl_info, "ETH"), 2)  # ~$10k notional: ~$500 of margin at 20x
    statuses(trader.market_open("ETH", True, size))
    for refused_at in (2, 5):  # ~$5000, ~$2000 of margin: more than the $1000 account
        resp = trader.update_leverage(refused_at, "ETH", is_cross=is_cross)
        assert resp["status"] == "err" and resp["response"].startswith(
            f"Insufficient margin to set leverage {refused_at}x"), resp
        pos = position(hl_info, address, "ETH")
        assert pos is not None and pos["leverage"]["value"] == 20
    assert trader.update_leverage(15, "ETH", is_cross=is_cross) == {"status": "ok", "response": {"type": "default"}}
    assert trader.update_leverage(25, "ETH", is_cross=is_cross)["status"] == "ok"
    pos = position(hl_info, address, "ETH")
    assert pos is not None and pos["leverage"]["value"] == 25
    assert pos["leverage"]["type"] == ("cross" if is_cross else "isolated")


def test_a_cloid_already_used_by_the_account_is_refused(hl_info: Info, hl_exchange: Exchange) -> None:
    """A cloid names one order: a second order with it is refused, whether the first rests, was
    canceled or sits earlier in the same batch; a modify keeps it; a refused order never took it."""
    address = hl_exchange.wallet.address
    px = round(mid(hl_info, "BTC") * 0.9)
    cloid = Cloid("0x" + "cd" * 16)
    dup = f"Duplicate cloid {cloid.to_raw()}: an order of this account already has it. asset=0"
    [first] = statuses(hl_exchange.order("BTC", True, 0.01, px, {"limit": {"tif": "Gtc"}}, cloid=cloid))
    oid = first["resting"]["oid"]
    [again] = statuses(hl_exchange.order("BTC", True, 0.02, px - 10, {"limit": {"tif": "Gtc"}}, cloid=cloid))
    assert again == {"error": dup}
    assert [o["oid"] for o in hl_info.open_orders(address)] == [oid]
    [mod] = statuses(hl_exchange.modify_order(cloid, "BTC", True, 0.01, px - 5, {"limit": {"tif": "Gtc"}},
                                              cloid=cloid))
    assert mod["resting"]["cloid"] == cloid.to_raw()
    assert statuses(hl_exchange.cancel_by_cloid("BTC", cloid)) == ["success"]
    [after_cancel] = statuses(hl_exchange.order("BTC", True, 0.01, px, {"limit": {"tif": "Gtc"}}, cloid=cloid))
    assert after_cancel == {"error": dup}
    assert hl_info.open_orders(address) == []
    # one batch: the second order with a cloid is refused, the first rests
    other = Cloid("0x" + "ef" * 16)
    order = {"coin": "BTC", "is_buy": True, "sz": 0.01, "limit_px": px, "order_type": {"limit": {"tif": "Gtc"}},
             "reduce_only": False, "cloid": other}
    placed, refused = statuses(hl_exchange.bulk_orders([order, order]))
    assert "resting" in placed and refused == {"error": dup.replace(cloid.to_raw(), other.to_raw())}
    # an order refused for another reason never took its cloid
    fresh = Cloid("0x" + "12" * 16)
    [tiny] = statuses(hl_exchange.order("BTC", True, 0.0001, px, {"limit": {"tif": "Gtc"}}, cloid=fresh))
    assert tiny["error"].startswith("Order must have minimum value of $10")
    [ok] = statuses(hl_exchange.order("BTC", True, 0.01, px, {"limit": {"tif": "Gtc"}}, cloid=fresh))
    assert ok["resting"]["cloid"] == fresh.to_raw()


def test_a_position_opened_and_closed_in_one_request_and_reopened_in_the_next(hl_info: Info,
                                                                             hl_exchange: Exchange) -> None:
    """One batch may open and close a position (or close one and open it again): the ledger writes
    what happened instead of refusing the whole request with an internal error."""
    address = hl_exchange.wallet.address
    m = mid(hl_info, "BTC")

    def ioc(is_buy: bool, reduce_only: bool) -> dict[str, Any]:
        return {"coin": "BTC", "is_buy": is_buy, "sz": 0.01, "limit_px": round(m * (1.02 if is_buy else 0.98)),
                "order_type": {"limit": {"tif": "Ioc"}}, "reduce_only": reduce_only}

    opened, closed = statuses(hl_exchange.bulk_orders([ioc(True, False), ioc(False, True)]))
    assert "filled" in opened and "filled" in closed, (opened, closed)
    assert position(hl_info, address, "BTC") is None
    statuses(hl_exchange.bulk_orders([ioc(True, False)]))
    closed, reopened = statuses(hl_exchange.bulk_orders([ioc(False, True), ioc(True, False)]))
    assert "filled" in closed and "filled" in reopened, (closed, reopened)
    pos = position(hl_info, address, "BTC")
    assert pos is not None and float(pos["szi"]) == 0.01
    assert [f["dir"] for f in hl_info.user_fills(address)][:2] == ["Open Long", "Close Long"]
