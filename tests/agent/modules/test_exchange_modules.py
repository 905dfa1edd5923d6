"""The exchange check and action against a real paper exchange through the unmodified SDK.

The account is the paper development account (the key the modules pick on ``paper`` when
``bot.private_key_env`` is unset); positions and orders are set up with the SDK directly.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info

from agent.modules import _hyperliquid as hl
from agent.modules.actions.exchange import ExchangeAction, ExchangeActionParams
from agent.modules.base import HostContext, RunContext
from agent.modules.checks.exchange import ExchangeCheck, ExchangeCheckParams, position_opened_ms
from bot.exchange import RunningExchange
from botwarden.errors import ModuleError
from botwarden.settings import PAPER_DEV_PRIVATE_KEY
from tests.agent.modules.paper import DEV, UNSET_KEY_ENV, paper, sdk  # noqa: F401 (fixtures)


@pytest.fixture
def ctx(paper: RunningExchange) -> Callable[..., RunContext]:
    def make(check_mode: bool = False, **bot: Any) -> RunContext:
        host_vars = {"exchange": {"url": paper.url},
                     "bot": {"network": "paper", "private_key_env": UNSET_KEY_ENV, **bot}}
        return RunContext(host=HostContext("paper", host_vars), timeout=10.0, check_mode=check_mode)

    return make


async def check(metric: str, ctx: RunContext, **params: Any) -> Any:
    return await ExchangeCheck().run(ExchangeCheckParams(metric=metric, **params), ctx)


async def act(action: str, ctx: RunContext, **params: Any) -> Any:
    return await ExchangeAction().run(ExchangeActionParams(action=action, **params), ctx)


def open_positions_and_orders(info: Info, ex: Exchange) -> list[int]:
    """BTC long and ETH short by market orders, two resting BTC bids far below the market."""
    assert ex.market_open("BTC", True, 0.01)["status"] == "ok"
    assert ex.market_open("ETH", False, 0.2)["status"] == "ok"
    px = round(float(info.all_mids()["BTC"]) * 0.8)
    resp = ex.bulk_orders([{"coin": "BTC", "is_buy": True, "sz": 0.001, "limit_px": px - i,
                            "order_type": {"limit": {"tif": "Gtc"}}, "reduce_only": False} for i in range(2)])
    return [s["resting"]["oid"] for s in resp["response"]["data"]["statuses"]]


def signed_requests(paper: RunningExchange) -> int:
    """How many signed /exchange requests the dev account made (one nonce each)."""
    return len(paper.exchange.ledger.nonces.get(DEV.lower(), []))


# --- check ---------------------------------------------------------------------------------------
async def test_equity_and_margin_read_the_dev_account(ctx: Callable[..., RunContext], sdk: Any) -> None:
    result = await check("equity", ctx())
    assert result.error is None
    assert result.value == pytest.approx(100_000.0) and result.facts["address"] == DEV
    assert PAPER_DEV_PRIVATE_KEY[2:] not in repr(result)
    open_positions_and_orders(*sdk)
    margin = await check("margin_usage", ctx())
    assert 0 < margin.value < 100 and margin.facts["margin_used"] > 0


async def test_positions_orders_and_their_sizes(ctx: Callable[..., RunContext], sdk: Any) -> None:
    flat = await check("positions", ctx())
    assert flat.value == 0 and flat.facts["largest_percent"] == 0 and flat.facts["oldest_age_s"] == 0
    oids = open_positions_and_orders(*sdk)
    time.sleep(0.3)
    pos = await check("positions", ctx())
    assert pos.value == 2
    by_coin = {p["coin"]: p for p in pos.facts["positions"]}
    assert by_coin["BTC"]["side"] == "long" and by_coin["ETH"]["side"] == "short"
    expected = max(p["notional"] for p in by_coin.values()) / pos.facts["account_value"] * 100
    assert pos.facts["largest_percent"] == pytest.approx(expected, rel=1e-3)
    assert 0.2 <= pos.facts["oldest_age_s"] < 30
    orders = await check("orders", ctx())
    assert orders.value == 2 and sorted(o["oid"] for o in orders.facts["orders"]) == sorted(oids)
    assert all(o["side"] == "buy" and o["coin"] == "BTC" for o in orders.facts["orders"])


@pytest.mark.parametrize("fills, size, expected", [
    ([], 1.0, None),
    ([{"coin": "BTC", "time": 10, "startPosition": "0.0"}], 1.0, 10),
    # added to the position later: still opened at 10
    ([{"coin": "BTC", "time": 10, "startPosition": "0.0"}, {"coin": "BTC", "time": 20, "startPosition": "1.0"}],
     2.0, 10),
    # flipped from short to long at 30
    ([{"coin": "BTC", "time": 10, "startPosition": "0.0"}, {"coin": "BTC", "time": 30, "startPosition": "-1.0"}],
     1.0, 30),
    # other coins do not count; without an opening fill the oldest fill is the lower bound
    ([{"coin": "ETH", "time": 50, "startPosition": "0.0"}, {"coin": "BTC", "time": 40, "startPosition": "2.0"}],
     3.0, 40),
])
def test_position_opened_from_fills(fills: list[dict[str, Any]], size: float, expected: int | None) -> None:
    pos = hl.Position(coin="BTC", size=size, entry_px=1.0, notional=1.0, unrealized_pnl=0.0, margin_used=0.0)
    assert position_opened_ms(pos, fills) == expected


async def test_pnl_counts_todays_realized_loss(ctx: Callable[..., RunContext], sdk: Any) -> None:
    _info, ex = sdk
    assert ex.market_open("BTC", True, 0.05)["status"] == "ok"
    assert ex.market_close("BTC")["status"] == "ok"  # spread and fees: a small realized loss
    result = await check("pnl", ctx())
    assert result.facts["realized_pnl_today"] < 0
    assert result.facts["largest_realized_loss"] > 0
    assert result.value == pytest.approx(result.facts["pnl_today"] / (result.facts["account_value"]
                                                                      - result.facts["pnl_today"]) * 100, rel=1e-3)


async def test_auth_is_a_signed_noop_and_a_refusal_is_a_fact(ctx: Callable[..., RunContext],
                                                            paper: RunningExchange, sdk: Any) -> None:
    oids = open_positions_and_orders(*sdk)
    ok = await check("auth", ctx())
    assert ok.value is True and ok.facts["auth_error"] is None
    assert sorted(o["oid"] for o in sdk[0].frontend_open_orders(DEV)) == sorted(oids)  # nothing cancelled
    paper.admin("POST", "/admin/faults", {"auth_failure": True})
    refused = await check("auth", ctx())
    assert refused.error is None and refused.value is False
    assert "does not exist" in refused.facts["auth_error"] and "REFUSED" in refused.summary
    assert PAPER_DEV_PRIVATE_KEY[2:] not in repr(refused)


async def test_api_latency_and_rate_limit(ctx: Callable[..., RunContext], paper: RunningExchange) -> None:
    fast = await check("api_latency", ctx())
    assert fast.value < 300
    paper.admin("POST", "/admin/faults", {"latency_ms": 300})
    slow = await check("api_latency", ctx())
    assert slow.value >= 300
    paper.admin("DELETE", "/admin/faults")
    limit = await check("rate_limit", ctx())
    assert limit.facts["headroom"] == limit.facts["requests_cap"] - limit.facts["requests_used"]
    assert 0 < limit.value <= 100


async def test_last_fill_age_and_unreachable_bot(ctx: Callable[..., RunContext], sdk: Any) -> None:
    none_yet = await check("last_fill_age", ctx(url="http://127.0.0.1:9"))
    assert none_yet.value is None and none_yet.facts["has_fills"] is False
    assert none_yet.facts["bot_status"] == "unreachable"
    assert sdk[1].market_open("BTC", True, 0.01)["status"] == "ok"
    fresh = await check("last_fill_age", ctx(url="http://127.0.0.1:9"))
    assert 0 <= fresh.value < 30 and fresh.facts["has_fills"] is True


async def test_an_unreachable_exchange_is_a_clear_error(paper: RunningExchange) -> None:
    ctx = RunContext(host=HostContext("gone", {"exchange": {"url": "http://127.0.0.1:9"}}), timeout=3.0)
    with pytest.raises(ModuleError, match="unreachable"):
        await check("equity", ctx)


async def test_a_missing_mainnet_key_names_the_variable_not_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(UNSET_KEY_ENV, raising=False)
    ctx = RunContext(host=HostContext("real", {"exchange": {"url": "http://127.0.0.1:9"},
                                               "bot": {"network": "mainnet", "private_key_env": UNSET_KEY_ENV}}))
    with pytest.raises(ModuleError, match=UNSET_KEY_ENV):
        await check("equity", ctx)


# --- action --------------------------------------------------------------------------------------
async def test_check_mode_lists_exact_orders_and_positions_and_changes_nothing(
        ctx: Callable[..., RunContext], paper: RunningExchange, sdk: Any) -> None:
    info, _ = sdk
    oids = open_positions_and_orders(*sdk)
    before = signed_requests(paper)
    cancel = await act("cancel_all", ctx(check_mode=True))
    assert cancel.changed and not cancel.failed and cancel.data["open_orders"] == 0
    for oid in oids:
        assert f"(oid {oid})" in cancel.msg
    assert "BTC buy 0.001 @" in cancel.msg
    close = await act("close_all", ctx(check_mode=True))
    assert close.changed and close.data["open_positions"] == 0
    assert "BTC long 0.01" in close.msg and "ETH short 0.2" in close.msg and "reduce-only IOC" in close.msg
    assert signed_requests(paper) == before
    assert sorted(o["oid"] for o in info.frontend_open_orders(DEV)) == sorted(oids)
    assert len(info.user_state(DEV)["assetPositions"]) == 2


async def test_cancel_all_is_one_request_and_close_all_goes_flat(
        ctx: Callable[..., RunContext], paper: RunningExchange, sdk: Any) -> None:
    info, _ = sdk
    oids = open_positions_and_orders(*sdk)
    before = signed_requests(paper)
    cancel = await act("cancel_all", ctx())
    assert signed_requests(paper) == before + 1
    assert cancel.changed and not cancel.failed and sorted(cancel.data["cancelled"]) == sorted(oids)
    assert cancel.data["open_orders"] == 0 and info.frontend_open_orders(DEV) == []
    close = await act("close_all", ctx())
    assert signed_requests(paper) == before + 2  # every position in one bulk order request
    assert close.changed and not close.failed, close.msg
    assert close.data["open_positions"] == 0 and sorted(close.data["closed"]) == ["BTC", "ETH"]
    assert info.user_state(DEV)["assetPositions"] == []
    again = await act("close_all", ctx())
    assert not again.changed and again.msg == "no open positions"


async def test_actions_refused_by_the_exchange_fail_clearly(ctx: Callable[..., RunContext],
                                                           paper: RunningExchange, sdk: Any) -> None:
    open_positions_and_orders(*sdk)
    paper.admin("POST", "/admin/faults", {"auth_failure": True})
    cancel = await act("cancel_all", ctx())
    assert cancel.failed and "refused" in cancel.msg and "does not exist" in cancel.msg
    assert cancel.data["open_orders"] == 2
    close = await act("close_all", ctx())
    assert close.failed and close.data["open_positions"] == 2


async def test_schedule_cancel_where_eligible_and_a_clean_report_where_not(
        ctx: Callable[..., RunContext], paper: RunningExchange, sdk: Any) -> None:
    paper.admin("POST", "/admin/config", {"schedule_cancel_min_volume": 1_000_000})
    refused = await act("schedule_cancel", ctx(), after=60)
    assert refused.skipped and not refused.failed and refused.data["eligible"] is False
    assert "not eligible" in refused.msg
    paper.admin("POST", "/admin/config", {"schedule_cancel_min_volume": 0})
    armed = await act("schedule_cancel", ctx(), after=60)
    assert armed.changed and armed.data["eligible"] is True
    state = paper.admin("GET", "/admin/state")["accounts"][DEV.lower()]
    assert state["schedule_cancel_ms"] == armed.data["time_ms"]
    cleared = await act("schedule_cancel", ctx())
    assert cleared.changed and paper.admin("GET", "/admin/state")["accounts"][DEV.lower()]["schedule_cancel_ms"] \
        is None


def test_after_is_validated() -> None:
    with pytest.raises(ValueError, match="at least 5s"):
        ExchangeActionParams(action="schedule_cancel", after=1)
    with pytest.raises(ValueError, match="only for action schedule_cancel"):
        ExchangeActionParams(action="cancel_all", after=60)


READS_WITHOUT_THE_SDK = """
import asyncio, json, sys
from agent.modules.base import HostContext, RunContext
from agent.modules.checks.exchange import ExchangeCheck, ExchangeCheckParams

async def main():
    ctx = RunContext(host=HostContext("paper", {"exchange": {"url": sys.argv[1]},
                                                "bot": {"network": "paper", "private_key_env": "UNSET_X"}}),
                     timeout=10.0)
    out = {}
    for metric in ("equity", "positions", "orders", "pnl", "margin_usage", "rate_limit", "api_latency", "auth"):
        result = await ExchangeCheck().run(ExchangeCheckParams(metric=metric), ctx)
        out[metric] = result.error
    heavy = [m for m in ("hyperliquid", "eth_account", "coincurve", "Crypto", "requests") if m in sys.modules]
    print(json.dumps({"errors": out, "heavy": heavy}))

asyncio.run(main())
"""


def test_the_checks_read_and_probe_the_account_without_loading_the_sdk_into_the_agent(paper: RunningExchange) -> None:
    """Every metric works while the checking process never imports the SDK, eth_account or the
    secp256k1/Keccak libraries (about 20 MB for the resident agent): reads go through /info, the
    key's address and the signed auth probe are computed in short-lived children."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", READS_WITHOUT_THE_SDK, paper.url], capture_output=True, text=True,
                         timeout=120, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["errors"] == dict.fromkeys(seen["errors"]), seen
    assert seen["heavy"] == [], seen
