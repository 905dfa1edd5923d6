"""The websocket at /ws, driven by the unmodified SDK's own subscriptions (``Info(skip_ws=False)``)
and, for what the SDK does not do (``post``, raw errors, faults), by websocket-client directly."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websocket
from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.signing import (
    get_timestamp_ms,
    order_request_to_order_wire,
    order_wires_to_order_action,
    sign_l1_action,
)

from bot.exchange import RunningExchange
from tests.support import loopback


class Recorder:
    """Messages per channel, as the SDK's callbacks or a raw reader hand them over."""

    def __init__(self) -> None:
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.cond = threading.Condition()

    def callback(self, name: str) -> Callable[[dict[str, Any]], None]:
        def record(msg: dict[str, Any]) -> None:
            with self.cond:
                self.messages.setdefault(name, []).append(msg)
                self.cond.notify_all()
        return record

    def wait(self, pred: Callable[[], Any], timeout: float = 30.0, what: str = "messages") -> Any:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = pred()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; got {list(self.messages)}")
                self.cond.wait(min(left, 0.2))

    def of(self, name: str) -> list[dict[str, Any]]:
        return list(self.messages.get(name, []))


@pytest.fixture
def ws_info(paper_exchange: RunningExchange) -> Iterator[Info]:
    info = Info(paper_exchange.url, skip_ws=False, timeout=10)
    try:
        yield info
    finally:
        info.disconnect_websocket()


def ws_url(ex: RunningExchange) -> str:
    return "ws" + ex.url[len("http"):] + "/ws"


class RawClient:
    """A websocket-client connection with a reader thread that keeps every frame."""

    def __init__(self, ex: RunningExchange) -> None:
        self.ws = websocket.create_connection(ws_url(ex), timeout=10)
        self.rec = Recorder()
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while True:
                text = self.ws.recv()
                if not text:
                    break
                msg = {"channel": "greeting", "data": text} if not text.startswith("{") else json.loads(text)
                self.rec.callback(msg.get("channel", "?"))({**msg, "_at": time.monotonic()})
        except (websocket.WebSocketException, OSError):
            pass
        finally:
            self.closed.set()

    def send(self, msg: dict[str, Any]) -> None:
        self.ws.send(json.dumps(msg))

    def close(self) -> None:
        try:
            self.ws.close()
        except (websocket.WebSocketException, OSError):
            pass


@pytest.fixture
def raw(paper_exchange: RunningExchange) -> Iterator[RawClient]:
    client = RawClient(paper_exchange)
    try:
        yield client
    finally:
        client.close()


def test_every_listed_channel_through_the_sdk(paper_exchange: RunningExchange, ws_info: Info,
                                              hl_exchange: Exchange, dev_wallet: LocalAccount) -> None:
    user = dev_wallet.address
    earlier = hl_exchange.market_open("ETH", True, 0.01)  # a fill before subscribing: the snapshot
    assert earlier["status"] == "ok"
    rec = Recorder()
    subs: list[dict[str, Any]] = [
        {"type": "allMids"}, {"type": "l2Book", "coin": "BTC"}, {"type": "bbo", "coin": "BTC"},
        {"type": "candle", "coin": "BTC", "interval": "1m"}, {"type": "trades", "coin": "BTC"},
        {"type": "orderUpdates", "user": user}, {"type": "userFills", "user": user},
        {"type": "userEvents", "user": user}, {"type": "webData2", "user": user}]
    for sub in subs:
        ws_info.subscribe(dict(sub), rec.callback(sub["type"]))
    rec.wait(lambda: all(rec.of(k) for k in ("allMids", "l2Book", "bbo", "candle", "userFills", "webData2")),
             what="snapshots")
    [snapshot] = rec.of("userFills")
    assert snapshot["data"]["isSnapshot"] is True and snapshot["data"]["user"] == user.lower()
    assert [f["coin"] for f in snapshot["data"]["fills"]] == ["ETH"]

    rest_px = round(float(ws_info.all_mids()["BTC"]) * 0.9)
    resting = hl_exchange.order("BTC", True, 0.01, rest_px, {"limit": {"tif": "Gtc"}})
    oid = resting["response"]["data"]["statuses"][0]["resting"]["oid"]
    filled = hl_exchange.market_open("BTC", True, 0.01)
    taker_oid = filled["response"]["data"]["statuses"][0]["filled"]["oid"]

    def statuses() -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for m in rec.of("orderUpdates"):
            for o in m["data"]:
                out.setdefault(o["order"]["oid"], []).append(o["status"])
        return out
    rec.wait(lambda: statuses().get(taker_oid, [])[-1:] == ["filled"] and statuses().get(oid) == ["open"],
             what="order updates")
    streamed = rec.wait(lambda: [m for m in rec.of("userFills") if not m["data"]["isSnapshot"]], what="fill stream")
    assert streamed[0]["data"]["fills"][0]["oid"] == taker_oid
    event = rec.wait(lambda: rec.of("userEvents"), what="user event")[0]
    assert event["channel"] == "user" and event["data"]["fills"][0]["oid"] == taker_oid
    trade = rec.wait(lambda: rec.of("trades"), what="trade")[-1]["data"][0]
    assert trade["coin"] == "BTC" and trade["side"] == "B" and trade["users"][0] == user.lower()
    rec.wait(lambda: any(p["position"]["coin"] == "BTC" for m in rec.of("webData2")
                         for p in m["data"]["clearinghouseState"]["assetPositions"]), what="webData2 position")

    mids = rec.of("allMids")[-1]["data"]["mids"]
    assert set(mids) == {"BTC", "ETH", "SOL"}
    book = rec.of("l2Book")[-1]["data"]
    assert book["coin"] == "BTC" and len(book["levels"]) == 2 and book["levels"][0][0].keys() == {"px", "sz", "n"}
    bbo = rec.of("bbo")[-1]["data"]
    assert bbo["coin"] == "BTC" and float(bbo["bbo"][0]["px"]) < float(bbo["bbo"][1]["px"])
    candle = rec.of("candle")[-1]["data"]
    assert candle["s"] == "BTC" and candle["i"] == "1m" and candle["T"] - candle["t"] == 59_999
    # market channels keep streaming
    n = len(rec.of("l2Book"))
    rec.wait(lambda: len(rec.of("l2Book")) > n + 1, what="more books")


def test_unsubscribe_stops_the_channel(paper_exchange: RunningExchange, ws_info: Info) -> None:
    rec = Recorder()
    sub_id = ws_info.subscribe({"type": "l2Book", "coin": "ETH"}, rec.callback("l2Book"))
    rec.wait(lambda: len(rec.of("l2Book")) >= 2, what="books")
    assert ws_info.unsubscribe({"type": "l2Book", "coin": "ETH"}, sub_id)
    # the unsubscribe ack comes back first; afterwards nothing more for this channel
    probe = Recorder()
    ws_info.subscribe({"type": "l2Book", "coin": "SOL"}, probe.callback("l2Book"))
    probe.wait(lambda: len(probe.of("l2Book")) >= 3, what="other books")
    frozen = len(rec.of("l2Book"))
    probe.wait(lambda: len(probe.of("l2Book")) >= 5, what="still other books")
    assert len(rec.of("l2Book")) == frozen


def test_greeting_ping_subscription_response_and_errors(raw: RawClient) -> None:
    raw.rec.wait(lambda: raw.rec.of("greeting"), what="greeting")
    assert raw.rec.of("greeting")[0]["data"] == "Websocket connection established."
    raw.send({"method": "ping"})
    raw.rec.wait(lambda: raw.rec.of("pong"), what="pong")
    raw.send({"method": "subscribe", "subscription": {"type": "bbo", "coin": "ETH"}})
    ack = raw.rec.wait(lambda: raw.rec.of("subscriptionResponse"), what="ack")[0]
    assert ack["data"] == {"method": "subscribe", "subscription": {"type": "bbo", "coin": "ETH"}}
    for bad in ({"type": "userFundings", "user": "0x" + "1" * 40}, {"type": "l2Book", "coin": "NOPE"},
                {"type": "l2Book", "coin": "BTC", "nSigFigs": 3}, {"type": "noSuchChannel"}):
        raw.send({"method": "subscribe", "subscription": bad})
    raw.send({"method": "dance"})
    errors = raw.rec.wait(lambda: len(raw.rec.of("error")) >= 5 and raw.rec.of("error"), what="errors")
    texts = [e["data"] for e in errors]
    assert texts[0].startswith("Unsupported by the paper exchange: subscription userFundings")
    assert "unknown coin 'NOPE'" in texts[1]
    assert "nSigFigs" in texts[2]
    assert texts[3].startswith("Invalid subscription")
    assert texts[4].startswith("Error parsing JSON into valid websocket request")


def _signed_order(wallet: LocalAccount, asset: int, px: float, sz: float) -> dict[str, Any]:
    wire = order_request_to_order_wire({"coin": "BTC", "is_buy": True, "sz": sz, "limit_px": px,
                                        "order_type": {"limit": {"tif": "Gtc"}}, "reduce_only": False}, asset)
    action = order_wires_to_order_action([wire])
    nonce = get_timestamp_ms()
    return {"action": action, "nonce": nonce, "signature": sign_l1_action(wallet, action, None, nonce, None, False),
            "vaultAddress": None, "expiresAfter": None}


def test_post_info_and_signed_action_over_the_socket(paper_exchange: RunningExchange, raw: RawClient,
                                                     dev_wallet: LocalAccount, hl_info: Info) -> None:
    raw.send({"method": "post", "id": 7, "request": {"type": "info", "payload": {"type": "l2Book", "coin": "ETH"}}})
    raw.send({"method": "post", "id": 8, "request": {"type": "info", "payload": {"type": "portfolio",
                                                                                  "user": dev_wallet.address}}})
    px = round(float(hl_info.all_mids()["BTC"]) * 0.9)
    raw.send({"method": "post", "id": 9, "request": {"type": "action",
                                                      "payload": _signed_order(dev_wallet, 0, px, 0.01)}})
    posts = raw.rec.wait(lambda: len(raw.rec.of("post")) >= 3 and raw.rec.of("post"), what="post answers")
    by_id = {p["data"]["id"]: p["data"]["response"] for p in posts}
    assert by_id[7]["type"] == "info" and by_id[7]["payload"]["type"] == "l2Book"
    assert by_id[7]["payload"]["data"]["coin"] == "ETH"
    assert by_id[8]["type"] == "error" and "422" in by_id[8]["payload"] and "portfolio" in by_id[8]["payload"]
    assert by_id[9]["type"] == "action" and by_id[9]["payload"]["status"] == "ok"
    oid = by_id[9]["payload"]["response"]["data"]["statuses"][0]["resting"]["oid"]
    assert [o["oid"] for o in hl_info.open_orders(dev_wallet.address)] == [oid]  # the same book as HTTP


def test_drop_cuts_every_connection_and_clients_can_reconnect(paper_exchange: RunningExchange) -> None:
    a, b = RawClient(paper_exchange), RawClient(paper_exchange)
    try:
        for c in (a, b):
            c.rec.wait(lambda c=c: c.rec.of("greeting"), what="greeting")
        assert paper_exchange.admin("POST", "/admin/ws/drop")["dropped"] == 2
        assert a.closed.wait(10) and b.closed.wait(10)
        again = RawClient(paper_exchange)
        again.send({"method": "ping"})
        again.rec.wait(lambda: again.rec.of("pong"), what="pong after reconnect")
        again.close()
    finally:
        a.close()
        b.close()


def test_outage_drops_connections_and_refuses_new_ones_until_cleared(paper_exchange: RunningExchange,
                                                                     raw: RawClient) -> None:
    raw.rec.wait(lambda: raw.rec.of("greeting"), what="greeting")
    paper_exchange.admin("POST", "/admin/faults", {"ws_outage": True})
    assert raw.closed.wait(10)
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(ws_url(paper_exchange), timeout=10)
    assert refused.value.status_code == 503
    assert loopback.post(paper_exchange.url + "/info", json={"type": "meta"}).status_code == 200  # HTTP unaffected
    paper_exchange.admin("DELETE", "/admin/faults")
    back = RawClient(paper_exchange)
    back.send({"method": "ping"})
    back.rec.wait(lambda: back.rec.of("pong"), what="pong")
    back.close()


def test_stalled_channel_goes_silent_while_others_flow(paper_exchange: RunningExchange, raw: RawClient) -> None:
    raw.send({"method": "subscribe", "subscription": {"type": "allMids"}})
    raw.send({"method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTC"}})
    raw.rec.wait(lambda: raw.rec.of("allMids") and raw.rec.of("l2Book"), what="first data")
    paper_exchange.admin("POST", "/admin/faults", {"ws_stall": ["allMids"]})
    stalled_at = time.monotonic()
    n_books = len(raw.rec.of("l2Book"))
    raw.rec.wait(lambda: len(raw.rec.of("l2Book")) >= n_books + 3, what="books during the stall")
    raw.send({"method": "ping"})
    raw.rec.wait(lambda: raw.rec.of("pong"), what="pong during the stall")
    # anything already queued went out within the first moment; nothing after
    late = [m for m in raw.rec.of("allMids") if m["_at"] > stalled_at + 0.2]
    assert late == []
    paper_exchange.admin("DELETE", "/admin/faults")
    cleared = time.monotonic()
    raw.rec.wait(lambda: any(m["_at"] > cleared for m in raw.rec.of("allMids")), what="mids after the stall")


def test_delay_holds_every_message_back_in_order(paper_exchange: RunningExchange, raw: RawClient) -> None:
    raw.rec.wait(lambda: raw.rec.of("greeting"), what="greeting")
    paper_exchange.admin("POST", "/admin/faults", {"ws_delay_ms": 400})
    sent = time.monotonic()
    raw.send({"method": "ping"})
    raw.send({"method": "subscribe", "subscription": {"type": "bbo", "coin": "BTC"}})
    raw.rec.wait(lambda: raw.rec.of("pong") and raw.rec.of("subscriptionResponse"), what="delayed answers")
    pong, ack = raw.rec.of("pong")[0], raw.rec.of("subscriptionResponse")[0]
    assert pong["_at"] - sent >= 0.4 and ack["_at"] >= pong["_at"]


def test_bad_fault_values_are_refused(paper_exchange: RunningExchange) -> None:
    with pytest.raises(httpx.HTTPStatusError) as bad:
        paper_exchange.admin("POST", "/admin/faults", {"ws_stall": ["noSuchChannel"]})
    assert "ws_stall takes channel names" in bad.value.response.text
    with pytest.raises(httpx.HTTPStatusError) as bad:
        paper_exchange.admin("POST", "/admin/faults", {"info_errors": [""]})
    assert "info_errors takes /info request types" in bad.value.response.text


def _subscription_of(kind: str, user: str) -> dict[str, Any]:
    if kind in ("l2Book", "trades", "bbo", "activeAssetCtx"):
        return {"type": kind, "coin": "BTC"}
    if kind == "candle":
        return {"type": kind, "coin": "BTC", "interval": "1m"}
    if kind == "allMids":
        return {"type": kind}
    return {"type": kind, "user": user}


def test_every_channel_listed_as_supported_delivers(paper_exchange: RunningExchange, raw: RawClient,
                                                    hl_exchange: Exchange, dev_wallet: LocalAccount,
                                                    hl_info: Info) -> None:
    """Never accepted and ignored: each channel the catalog (and the docs table) calls supported
    sends data once subscribed and the account trades."""
    from bot.exchange import catalog

    user = dev_wallet.address.lower()
    supported = sorted(k for k, e in catalog.WS_CHANNELS.items() if e.supported)
    for kind in supported:
        raw.send({"method": "subscribe", "subscription": _subscription_of(kind, user)})
    raw.rec.wait(lambda: len(raw.rec.of("subscriptionResponse")) == len(supported), what="acks")
    px = round(float(hl_info.all_mids()["BTC"]) * 0.9)
    assert hl_exchange.order("BTC", True, 0.01, px, {"limit": {"tif": "Gtc"}})["status"] == "ok"
    assert hl_exchange.market_open("BTC", True, 0.01)["status"] == "ok"
    wire = {k: "user" if k == "userEvents" else k for k in supported}
    raw.rec.wait(lambda: all(raw.rec.of(wire[k]) for k in supported),
                 what="a message on every supported channel")
    assert raw.rec.of("error") == []


def test_clearinghouse_state_and_open_orders_in_hyperliquids_shapes(paper_exchange: RunningExchange,
                                                                    raw: RawClient, hl_exchange: Exchange,
                                                                    dev_wallet: LocalAccount, hl_info: Info) -> None:
    user = dev_wallet.address.lower()
    raw.send({"method": "subscribe", "subscription": {"type": "clearinghouseState", "user": user}})
    raw.send({"method": "subscribe", "subscription": {"type": "openOrders", "user": user}})
    first = raw.rec.wait(lambda: raw.rec.of("openOrders"), what="the open orders snapshot")[0]["data"]
    assert first == {"dex": "", "user": user, "orders": []}
    state = raw.rec.wait(lambda: raw.rec.of("clearinghouseState"), what="the state snapshot")[0]["data"]
    assert set(state) == {"dex", "user", "clearinghouseState"} and state["dex"] == "" and state["user"] == user
    assert state["clearinghouseState"] == hl_info.user_state(user) | {"time": state["clearinghouseState"]["time"]}
    px = round(float(hl_info.all_mids()["BTC"]) * 0.9)
    oid = hl_exchange.order("BTC", True, 0.01, px, {"limit": {"tif": "Gtc"}})["response"]["data"]["statuses"][0][
        "resting"]["oid"]
    pushed = raw.rec.wait(lambda: [m for m in raw.rec.of("openOrders") if m["data"]["orders"]], what="the order")
    assert [o["oid"] for o in pushed[0]["data"]["orders"]] == [oid]
    assert pushed[0]["data"]["orders"] == hl_info.frontend_open_orders(user)
    hl_exchange.market_open("ETH", True, 0.05)
    raw.rec.wait(lambda: any(p["position"]["coin"] == "ETH" for m in raw.rec.of("clearinghouseState")
                             for p in m["data"]["clearinghouseState"]["assetPositions"]), what="the position")
    raw.send({"method": "subscribe", "subscription": {"type": "openOrders", "user": user, "dex": "xyz"}})
    err = raw.rec.wait(lambda: raw.rec.of("error"), what="the refused dex")[0]["data"]
    assert "one perp dex only" in err


def test_posts_meet_the_faults_http_meets(paper_exchange: RunningExchange, dev_wallet: LocalAccount,
                                          hl_info: Info) -> None:
    """latency_ms, error_rate, rate_limit_rate and drop_responses act on a websocket post as on HTTP."""
    book = {"type": "info", "payload": {"type": "l2Book", "coin": "ETH"}}

    def post(client: RawClient, ident: int, request: dict[str, Any]) -> dict[str, Any]:
        client.send({"method": "post", "id": ident, "request": request})
        return client.rec.wait(lambda: [p for p in client.rec.of("post") if p["data"]["id"] == ident],
                               what=f"post {ident}")[0]["data"]["response"]

    client = RawClient(paper_exchange)
    try:
        paper_exchange.admin("POST", "/admin/faults", {"error_rate": 1.0})
        assert post(client, 1, book) == {"type": "error", "payload": "500 Internal Server Error"}
        paper_exchange.admin("POST", "/admin/faults", {"error_rate": 0.0, "rate_limit_rate": 1.0})
        assert post(client, 2, book) == {"type": "error", "payload": "429 Too Many Requests"}
        paper_exchange.admin("POST", "/admin/faults", {"rate_limit_rate": 0.0, "latency_ms": 1500})
        sent = time.monotonic()
        assert post(client, 3, book)["type"] == "info"
        assert time.monotonic() - sent >= 1.5  # answered no sooner than the latency
        paper_exchange.admin("POST", "/admin/faults", {"latency_ms": 0, "drop_responses": 1})
        px = round(float(hl_info.all_mids()["BTC"]) * 0.9)
        client.send({"method": "post", "id": 4, "request": {"type": "action",
                                                             "payload": _signed_order(dev_wallet, 0, px, 0.01)}})
        assert client.closed.wait(10), "the connection was not cut"
        assert not [p for p in client.rec.of("post") if p["data"]["id"] == 4]  # the answer is lost...
        assert len(hl_info.open_orders(dev_wallet.address)) == 1  # ...the order was applied
        assert paper_exchange.admin("POST", "/admin/faults", {})["faults"]["drop_responses"] == 0
    finally:
        client.close()
        paper_exchange.admin("DELETE", "/admin/faults")


def test_user_events_says_both_fills_and_non_user_cancels_of_one_commit(
        raw: RawClient, hl_exchange: Exchange, hl_info: Info, dev_wallet: LocalAccount) -> None:
    """A close that fills and takes the position's resting reduce-only order with it (the
    exchange cancels it: ``reduceOnlyCanceled``) commits both at once; ``userEvents`` says both,
    one message each (Hyperliquid's WsUserEvent is one of fills | funding | liquidation |
    nonUserCancel), never the fills alone: a bot listening there was never told its order went."""
    assert hl_exchange.market_open("ETH", True, 0.5)["status"] == "ok"
    px = round(float(hl_info.all_mids()["ETH"]) * 1.5, 1)
    placed = hl_exchange.order("ETH", False, 0.5, px, {"limit": {"tif": "Gtc"}}, reduce_only=True)
    oid = placed["response"]["data"]["statuses"][0]["resting"]["oid"]
    raw.send({"method": "subscribe", "subscription": {"type": "userEvents", "user": dev_wallet.address}})
    raw.rec.wait(lambda: raw.rec.of("subscriptionResponse"), what="ack")
    closed = hl_exchange.market_close("ETH")
    assert "filled" in closed["response"]["data"]["statuses"][0]
    raw.rec.wait(lambda: any("nonUserCancel" in m["data"] for m in raw.rec.of("user")), timeout=10,
                 what="the nonUserCancel of the reduce-only order")
    events = [m["data"] for m in raw.rec.of("user")]
    assert any("fills" in e for e in events)
    cancels = [c for e in events for c in e.get("nonUserCancel", [])]
    assert cancels == [{"coin": "ETH", "oid": oid}]
    assert all(len(e) == 1 for e in events)  # one kind of event per message


def test_a_reduce_only_close_that_flattens_is_filled_never_canceled_on_the_way(
        raw: RawClient, hl_exchange: Exchange, dev_wallet: LocalAccount) -> None:
    """The order whose fill closes the position is the one that filled: the exchange's clean-up of
    the position's reduce-only orders (``reduceOnlyCanceled``) is for the others. It streamed the
    close itself as ``reduceOnlyCanceled`` and only then ``filled``, and userEvents told the
    account the exchange had cancelled its own close."""
    assert hl_exchange.market_open("ETH", True, 0.5)["status"] == "ok"
    raw.send({"method": "subscribe", "subscription": {"type": "orderUpdates", "user": dev_wallet.address}})
    raw.send({"method": "subscribe", "subscription": {"type": "userEvents", "user": dev_wallet.address}})
    raw.rec.wait(lambda: len(raw.rec.of("subscriptionResponse")) >= 2, what="acks")
    closed = hl_exchange.market_close("ETH")
    oid = closed["response"]["data"]["statuses"][0]["filled"]["oid"]
    raw.rec.wait(lambda: any(u["status"] == "filled" for m in raw.rec.of("orderUpdates") for u in m["data"]),
                 timeout=10, what="the close's orderUpdates")
    raw.rec.wait(lambda: raw.rec.of("user"), timeout=10, what="the close's userEvents")
    statuses = [u["status"] for m in raw.rec.of("orderUpdates") for u in m["data"] if u["order"]["oid"] == oid]
    assert "reduceOnlyCanceled" not in statuses and statuses[-1] == "filled"
    assert [list(m["data"]) for m in raw.rec.of("user")] == [["fills"]]


def test_a_slow_post_holds_up_neither_the_pings_nor_the_other_posts(
        paper_exchange: RunningExchange, raw: RawClient) -> None:
    """Posts are in flight side by side, as over HTTP (Hyperliquid allows 100 in flight per IP): with
    every answer 1.5 s late (latency_ms) the connection went on reading only once the post before
    had been answered, so three posts took three latencies and a ping sent after them got its pong
    after all three: a client whose keep-alive waits less than that dropped a healthy connection."""
    raw.rec.wait(lambda: raw.rec.of("greeting"), what="greeting")
    paper_exchange.admin("POST", "/admin/faults", {"latency_ms": 1500})
    try:
        for ident in (1, 2, 3):
            raw.send({"method": "post", "id": ident, "request": {"type": "info", "payload": {"type": "allMids"}}})
        raw.send({"method": "ping"})
        posts = raw.rec.wait(lambda: len(raw.rec.of("post")) >= 3 and raw.rec.of("post"), what="3 answers")
        pong = raw.rec.wait(lambda: raw.rec.of("pong"), what="pong")[0]
    finally:
        paper_exchange.admin("DELETE", "/admin/faults")
    assert sorted(p["data"]["id"] for p in posts) == [1, 2, 3]
    assert all(p["data"]["response"]["type"] == "info" for p in posts)
    assert pong["_at"] < min(p["_at"] for p in posts), "the pong waited behind the slow posts"


@pytest.mark.parametrize("bad", [{"type": "l2Book", "coin": ["BTC"]},
                                 {"type": "candle", "coin": "BTC", "interval": ["1m"]},
                                 {"type": "trades", "coin": {"BTC": 1}},
                                 {"type": "userFills", "user": ["0x" + "1" * 40]}])
def test_a_malformed_subscription_is_an_error_message_and_the_connection_lives_on(
        raw: RawClient, bad: dict[str, Any]) -> None:
    """A subscription whose coin or interval is a list or an object (JSON the server cannot look up)
    raised out of the connection's handler: the connection was cut with no word, its other
    subscriptions gone with it, and the exchange logged a traceback. One message's failure is now
    that message's error (channel ``error``), as Hyperliquid answers a bad request; the
    connection goes on serving."""
    raw.rec.wait(lambda: raw.rec.of("greeting"), what="greeting")
    raw.send({"method": "subscribe", "subscription": {"type": "bbo", "coin": "ETH"}})
    raw.rec.wait(lambda: raw.rec.of("bbo"), what="bbo")
    raw.send({"method": "subscribe", "subscription": bad})
    [error] = raw.rec.wait(lambda: raw.rec.of("error"), timeout=10, what="the error message")
    assert error["data"].startswith("Invalid subscription"), error
    raw.send({"method": "ping"})
    raw.rec.wait(lambda: raw.rec.of("pong"), timeout=10, what="pong after the bad subscription")
    assert not raw.closed.is_set()


@pytest.mark.parametrize("ident", [True, -1, 2**64])
def test_a_post_whose_id_is_not_an_unsigned_integer_is_an_error_message(raw: RawClient, ident: Any) -> None:
    """A post's ``id`` is an unsigned 64-bit request id: ``true`` (answered ``{"id": true}``), -1
    and 2**64 were answered as posts; such a request cannot be parsed, as a string id already was
    not."""
    raw.rec.wait(lambda: raw.rec.of("greeting"), what="greeting")
    raw.send({"method": "post", "id": ident, "request": {"type": "info", "payload": {"type": "allMids"}}})
    [error] = raw.rec.wait(lambda: raw.rec.of("error"), timeout=10, what="the error message")
    assert error["data"].startswith("Error parsing JSON into valid websocket request"), error
    assert raw.rec.of("post") == []
