"""A real paper exchange for the exchange module tests, and the SDK on its development account.

Fixtures (import them into a test module): ``paper`` (the exchange, seed 7, in a thread, the
agent's cached SDK clients forgotten around it) and ``sdk`` (the unmodified SDK's ``Info`` and
``Exchange`` on the paper development account, as a bot would use them).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info

from agent.modules import _hyperliquid as hl
from bot.exchange import RunningExchange, serve_in_thread
from botwarden.settings import PAPER_DEV_PRIVATE_KEY

DEV = Account.from_key(PAPER_DEV_PRIVATE_KEY).address
UNSET_KEY_ENV = "BOTWARDEN_TEST_KEY_THAT_IS_NOT_SET"
"""A key variable nobody sets: on paper the development key is used, as the bot would."""


@pytest.fixture
def paper(tmp_path: Path) -> Iterator[RunningExchange]:
    hl.forget_clients()
    ex = serve_in_thread(state=tmp_path / "exchange.db", seed=7, tick_seconds=0.2)
    try:
        yield ex
    finally:
        ex.stop()
        hl.forget_clients()


@pytest.fixture
def sdk(paper: RunningExchange) -> tuple[Info, Exchange]:
    return Info(paper.url, skip_ws=True, timeout=10), Exchange(Account.from_key(PAPER_DEV_PRIVATE_KEY), paper.url,
                                                              timeout=10)
