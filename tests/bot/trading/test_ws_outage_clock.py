"""The websocket's outage clock (``down_for_s``, what bot-health's `bot websocket` check reads) against
a real paper exchange: it survives a bot restart during the outage (kept in the outage file), and a
socket that reconnects but delivers no data (greeting only) is still down."""
from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.trading.ws_client import HyperliquidSocket, WsStatus
from tests.support.stack import wait_until

ALL_CHANNELS = ["allMids", "l2Book", "trades", "candle", "bbo", "orderUpdates", "userFills", "user", "webData2",
                "userNonFundingLedgerUpdates", "activeAssetCtx", "clearinghouseState", "openOrders", "post", "pong",
                "subscriptionResponse"]


wait_for = functools.partial(wait_until, interval=0.05)


@pytest.fixture
def sockets(paper_exchange: Any, tmp_path: Path) -> Iterator[Callable[[], HyperliquidSocket]]:
    made: list[HyperliquidSocket] = []

    def make() -> HyperliquidSocket:
        s = HyperliquidSocket(paper_exchange.url, [{"type": "allMids"}], lambda ch, data: None, stale_s=1.0,
                              outage_file=tmp_path / "var" / "bot.ws-outage.json")
        made.append(s)
        s.start()
        return s

    yield make
    for s in made:
        s.stop()


def live(s: HyperliquidSocket) -> WsStatus | None:
    st = s.status()
    return st if st.state == "connected" and st.down_for_s == 0.0 else None


def test_the_outage_clock_survives_a_bot_restart(sockets: Callable[[], HyperliquidSocket], paper_exchange: Any,
                                                 tmp_path: Path) -> None:
    first = sockets()
    wait_for(lambda: live(first), what="data on the first socket")
    record = tmp_path / "var" / "bot.ws-outage.json"
    assert not record.exists()  # no outage, no record
    paper_exchange.admin("POST", "/admin/faults", {"ws_outage": True})
    try:
        wait_for(lambda: first.status().down_for_s > 1.5, what="the first bot seeing a 1.5 s outage")
        wait_for(record.exists, what="the outage recorded")
        first.stop()  # the bot restarts (recycle-bot) while the socket is still down
        down_before = first.status().down_for_s
        second = sockets()
        assert second.status().down_for_s >= down_before  # goes on from the outage's start
    finally:
        paper_exchange.admin("DELETE", "/admin/faults")
    wait_for(lambda: live(second), what="data on the second socket")
    assert not record.exists()


def test_a_stale_record_of_a_bot_stopped_long_ago_is_not_inherited(sockets: Callable[[], HyperliquidSocket],
                                                                   tmp_path: Path) -> None:
    record = tmp_path / "var" / "bot.ws-outage.json"
    record.parent.mkdir(parents=True)
    now = time.time()
    record.write_text(f'{{"down_since": {now - 7200}, "seen_at": {now - 3600}}}')
    s = sockets()
    assert s.status().down_for_s < 60


def test_a_socket_that_reconnects_without_data_stays_down(sockets: Callable[[], HyperliquidSocket],
                                                          paper_exchange: Any) -> None:
    s = sockets()
    wait_for(lambda: live(s), what="data")
    # ws_stall of every channel: greeted, then nothing (pongs included): dropped after stale_s, reconnected
    paper_exchange.admin("POST", "/admin/faults", {"ws_stall": ALL_CHANNELS})
    try:
        wait_for(lambda: s.status().state != "connected", what="the first drop")
        start = s.status().reconnects
        samples: list[WsStatus] = []
        wait_for(lambda: samples.append(s.status()) or samples[-1].reconnects >= start + 2,
                 what="two reconnects while stalled")
        assert any(x.state == "connected" for x in samples), "never reconnected during the stall"
        assert all(x.down_for_s > 0 for x in samples)  # greeted is not connected, for the clock
        downs = [x.down_for_s for x in samples]
        assert downs == sorted(downs)  # never reset by a reconnect
        assert downs[-1] > downs[0]  # and it kept growing across them
    finally:
        paper_exchange.admin("DELETE", "/admin/faults")
    wait_for(lambda: live(s), what="data again")
