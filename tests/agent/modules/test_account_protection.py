"""The account is never left unprotected: the exchange action's cancel_all, flatten and protect
against a real paper exchange through the unmodified SDK, with its faults (the close refused,
the signer refused, every request rate limited), and the rules themselves as properties.

Positions and orders are set up with the SDK directly, as a bot would leave them: a long with
its reduce-only stop-loss resting, a short without one, an entry bid that could add exposure.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hypothesis import given
from hypothesis import strategies as st

from agent.modules import _hyperliquid as hl
from agent.modules.actions import _account_protection as guard
from agent.modules.actions.exchange import ExchangeAction, ExchangeActionParams
from agent.modules.base import HostContext, RunContext
from bot.exchange import RunningExchange
from tests.agent.modules.paper import DEV, UNSET_KEY_ENV, paper, sdk  # noqa: F401 (fixtures)


@pytest.fixture
def ctx(paper: RunningExchange) -> Callable[..., RunContext]:
    def make(check_mode: bool = False, timeout: float = 20.0) -> RunContext:
        host_vars = {"exchange": {"url": paper.url},
                     "bot": {"network": "paper", "private_key_env": UNSET_KEY_ENV, "risk": {"stop_loss_pct": 3}}}
        return RunContext(host=HostContext("paper", host_vars), timeout=timeout, check_mode=check_mode)

    return make


async def act(action: str, ctx: RunContext, **params: Any) -> Any:
    return await ExchangeAction().run(ExchangeActionParams(action=action, **params), ctx)


def orders(info: Info) -> list[dict[str, Any]]:
    return list(info.frontend_open_orders(DEV))


def positions(info: Info) -> dict[str, float]:
    return {p["position"]["coin"]: float(p["position"]["szi"]) for p in info.user_state(DEV)["assetPositions"]}


def stops_covering(info: Info) -> dict[str, float]:
    """coin -> size of the reduce-only stop triggers resting on the closing side of its position."""
    pos = positions(info)
    out: dict[str, float] = {}
    for o in orders(info):
        size = pos.get(o["coin"])
        closing_side = "B" if size is not None and size < 0 else "A"
        if size and o["reduceOnly"] and o["isTrigger"] and o["side"] == closing_side \
                and o["orderType"].startswith("Stop"):
            out[o["coin"]] = out.get(o["coin"], 0.0) + float(o["sz"])
    return out


def a_bots_leftovers(info: Info, ex: Exchange) -> dict[str, int]:
    """BTC long with its stop, ETH short with none, a stray stop on SOL (flat), an ETH entry bid."""
    assert ex.market_open("BTC", True, 0.01)["status"] == "ok"
    assert ex.market_open("ETH", False, 0.2)["status"] == "ok"
    mids = {k: float(v) for k, v in info.all_mids().items()}
    btc_stop = round(mids["BTC"] * 0.9)
    stop = ex.order("BTC", False, 0.01, round(btc_stop * 0.95), {"trigger": {"triggerPx": btc_stop, "isMarket": True,
                                                                             "tpsl": "sl"}}, reduce_only=True)
    sol_stop = round(mids["SOL"] * 0.9, 2)
    stray = ex.order("SOL", False, 1, round(sol_stop * 0.95, 2), {"trigger": {"triggerPx": sol_stop, "isMarket": True,
                                                                              "tpsl": "sl"}}, reduce_only=True)
    bid = ex.order("ETH", True, 0.05, round(mids["ETH"] * 0.7, 1), {"limit": {"tif": "Gtc"}})
    oids = {name: r["response"]["data"]["statuses"][0]["resting"]["oid"]
            for name, r in (("btc_stop", stop), ("sol_stray", stray), ("eth_bid", bid))}
    assert len(orders(info)) == 3
    return oids


async def test_cancel_all_keeps_the_stop_of_an_open_position(ctx: Callable[..., RunContext], sdk: Any) -> None:
    info, ex = sdk
    oids = a_bots_leftovers(info, ex)
    preview = await act("cancel_all", ctx(check_mode=True))
    assert f"(oid {oids['btc_stop']})" in preview.msg.split("kept", 1)[1]
    done = await act("cancel_all", ctx())
    assert not done.failed, done.msg
    assert sorted(done.data["cancelled"]) == sorted([oids["sol_stray"], oids["eth_bid"]])
    assert [o["oid"] for o in orders(info)] == [oids["btc_stop"]]
    assert [o["oid"] for o in done.data["kept"]] == [oids["btc_stop"]] and "kept 1 protecting" in done.msg
    everything = await act("cancel_all", ctx(), keep_protective=False)  # said explicitly: the stop goes too
    assert everything.data["cancelled"] == [oids["btc_stop"]] and orders(info) == []
    # the emergency's "verify the account is flat" step: nothing to cancel, but a position still
    # open is named, not hidden behind "no open orders to cancel"
    verify = await act("cancel_all", ctx())
    assert verify.msg.startswith("no open orders to cancel") and "position(s) still open: " in verify.msg
    assert "BTC" in verify.msg.split("still open: ", 1)[1], verify.msg


async def test_flatten_closes_then_cancels_and_leaves_nothing(ctx: Callable[..., RunContext], sdk: Any) -> None:
    info, ex = sdk
    a_bots_leftovers(info, ex)
    preview = await act("flatten", ctx(check_mode=True))
    assert preview.changed and "close 2 position(s) reduce-only" in preview.msg and "keep 1 reduce-only order(s)" in preview.msg
    assert len(orders(info)) == 3 and len(positions(info)) == 2
    done = await act("flatten", ctx())
    assert done.changed and not done.failed, done.msg
    assert positions(info) == {} and orders(info) == []
    assert sorted(done.data["closed"]) == ["BTC", "ETH"] and done.data["open_positions"] == 0
    assert done.msg.startswith("flat: closed ")


async def test_a_refused_close_keeps_the_stop_and_puts_one_on_the_bare_position(
        ctx: Callable[..., RunContext], paper: RunningExchange, sdk: Any) -> None:
    info, ex = sdk
    oids = a_bots_leftovers(info, ex)
    before = positions(info)
    paper.admin("POST", "/admin/faults", {"ioc_no_fill": True})  # nothing inside the IOC band
    done = await act("flatten", ctx(), attempts=2, delay=0.1)
    assert done.failed and positions(info) == before
    assert oids["btc_stop"] in [o["oid"] for o in orders(info)]  # never cancelled while BTC is open
    assert oids["eth_bid"] not in [o["oid"] for o in orders(info)]  # could add exposure: gone
    covering = stops_covering(info)
    assert covering == {"BTC": 0.01, "ETH": 0.2}
    eth_stop = next(s for s in done.data["stops_placed"] if s["coin"] == "ETH")
    mid = float(info.all_mids()["ETH"])
    assert eth_stop["trigger_px"] == pytest.approx(mid * 1.03, rel=0.01)  # the host's stop_loss_pct, above a short
    assert done.data["unprotected"] == [] and all(p["protected"] for p in done.data["positions"])
    assert done.msg.startswith("2 POSITIONS STILL OPEN") and "WITHOUT A STOP" not in done.msg
    assert done.msg.count("protected by a reduce-only stop") == 2 and "could not immediately match" in done.msg


def refuse_signed_requests(paper: RunningExchange, how: str) -> str:
    """Make every further signed request fail; returns the exchange's words for it."""
    if how == "the signer refused":
        paper.admin("POST", "/admin/faults", {"auth_failure": True})
        return "does not exist"
    used = paper.admin("GET", "/admin/state")["accounts"][DEV.lower()]["n_requests"]
    paper.admin("POST", "/admin/config", {"address_request_cap": used})  # the request cap reached
    return "Too many cumulative requests"


@pytest.mark.parametrize("how", ["the signer refused", "the request cap reached"])
async def test_a_position_that_cannot_get_a_stop_is_reported_without_one(
        ctx: Callable[..., RunContext], paper: RunningExchange, sdk: Any, how: str) -> None:
    info, ex = sdk
    assert ex.market_open("ETH", False, 0.2)["status"] == "ok"
    words = refuse_signed_requests(paper, how)
    done = await act("flatten", ctx(), attempts=2, delay=0.1)
    assert done.failed and done.data["unprotected"] == ["ETH"] and stops_covering(info) == {}
    assert done.msg.startswith("POSITION STILL OPEN: ETH short 0.2") and "WITHOUT A STOP" in done.msg
    assert words in done.msg
    paper.admin("DELETE", "/admin/faults")
    paper.admin("POST", "/admin/config", {"address_request_cap": None})
    protected = await act("protect", ctx())
    assert protected.changed and not protected.failed, protected.msg
    assert stops_covering(info) == {"ETH": 0.2} and "protected by a reduce-only stop" in protected.msg
    again = await act("protect", ctx())
    assert not again.changed and len(orders(info)) == 1


async def test_an_unreadable_account_is_reported_as_unknown(ctx: Callable[..., RunContext],
                                                            paper: RunningExchange, sdk: Any) -> None:
    _, ex = sdk
    assert ex.market_open("BTC", True, 0.01)["status"] == "ok"
    hl.forget_clients()
    paper.admin("POST", "/admin/faults", {"rate_limit_rate": 1.0})
    done = await act("flatten", ctx(timeout=8), attempts=2, delay=0.1)
    assert done.failed and done.data["open_positions"] is None and done.data["unprotected"] is None
    assert "positions and stops UNKNOWN" in done.msg and "HTTP 429" in done.msg


# --- the rules, as properties -------------------------------------------------------------------
COINS = ["BTC", "ETH", "SOL"]
a_position = st.builds(lambda coin, size: hl.Position(coin, size, 100.0, 0.0, 0.0, 0.0), st.sampled_from(COINS),
                       st.sampled_from([-2.0, -0.5, 0.5, 2.0]))
an_order = st.builds(
    lambda oid, coin, side, size, reduce_only, trigger, kind, limit: hl.OpenOrder(
        coin, side, size, limit, oid, reduce_only, 90.0 if trigger else None,
        (kind if trigger else "Limit")),
    st.integers(1, 10**6), st.sampled_from(COINS), st.sampled_from(["buy", "sell"]), st.sampled_from([0.5, 1.0, 2.0]),
    st.booleans(), st.booleans(), st.sampled_from(["Stop Market", "Take Profit Market"]),
    st.sampled_from([80.0, 90.0, 100.0]))


@given(st.lists(a_position, max_size=3, unique_by=lambda p: p.coin), st.lists(an_order, max_size=8))
def test_a_cancel_never_takes_what_protects_an_open_position(pos: list[hl.Position],
                                                             resting: list[hl.OpenOrder]) -> None:
    by_coin = {p.coin: p for p in pos}
    cancel = guard.to_cancel(resting, by_coin)
    for o in resting:
        p = by_coin.get(o.coin)
        closes_it = p is not None and (o.side == "buy") == (p.size < 0)
        if o.reduce_only and closes_it:
            assert o not in cancel  # the position's protection stays
        else:
            assert o in cancel  # could add exposure, or protects nothing
    for fact, p in zip(guard.position_facts(pos, resting), pos, strict=True):
        stops = [o for o in resting if o.coin == p.coin and o.reduce_only and (o.side == "buy") == (p.size < 0)
                 and o.trigger_px is not None and o.order_type == "Stop Market"
                 and (o.price >= o.trigger_px if o.side == "buy" else o.price <= o.trigger_px)]  # it can fill
        assert fact["protected"] == (sum(o.size for o in stops) >= abs(p.size))
        assert len(fact["stops"]) == len(stops)  # a take-profit is no stop, nor a stop that cannot fill
