"""The paper account as an operator reads it on the exchange: positions, open orders and the
reduce-only stops that cover them, through the unmodified SDK (no bot, no agent in the way)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info

from botwarden.settings import PAPER_DEV_PRIVATE_KEY

if TYPE_CHECKING:
    from tests.support.stack import StackUnderTest

DEV = Account.from_key(PAPER_DEV_PRIVATE_KEY).address


def sdk(stack: StackUnderTest) -> tuple[Info, Exchange]:
    return (Info(stack.exchange_url, skip_ws=True, timeout=10),
            Exchange(Account.from_key(PAPER_DEV_PRIVATE_KEY), stack.exchange_url, timeout=10))


def account(info: Info) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """({coin: signed size}, open orders) of the dev account, as the exchange holds them."""
    pos = {p["position"]["coin"]: float(p["position"]["szi"]) for p in info.user_state(DEV)["assetPositions"]}
    return pos, list(info.frontend_open_orders(DEV))


def stop_cover(info: Info) -> dict[str, float]:
    """coin -> size of the reduce-only stop triggers resting on the closing side of its position."""
    pos, orders = account(info)
    cover: dict[str, float] = {}
    for o in orders:
        size = pos.get(o["coin"])
        if size and o["reduceOnly"] and o["isTrigger"] and o["orderType"].startswith("Stop") \
                and o["side"] == ("B" if size < 0 else "A"):
            cover[o["coin"]] = cover.get(o["coin"], 0.0) + float(o["sz"])
    return cover


def unprotected(info: Info) -> dict[str, float]:
    """coin -> signed size of every open position not fully covered by reduce-only stops."""
    pos = account(info)[0]
    cover = stop_cover(info)
    return {c: s for c, s in pos.items() if s and cover.get(c, 0.0) + 1e-12 < abs(s)}
