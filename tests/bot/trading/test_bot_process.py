"""End-to-end: `bot run` and `bot paper-exchange` as real processes on loopback."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.ports import free_port

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent / "bot"
ADMIN = "test-admin-token"
CONTROL = "test-control-token"


def wait_for(pred: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = pred()
            if value:
                return value
        except (httpx.HTTPError, OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Stack:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ex_port, self.bot_port = free_port(), free_port()
        self.settings = tmp / "settings.yaml"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.bot: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(timeout=10)
        self.configure()

    def configure(self, **bot: Any) -> None:
        self.settings.write_text(yaml.safe_dump({
            "exchange": {"port": self.ex_port},
            "supervisor": {"logdir": str(self.tmp / "log")},
            # Hourly candles: a MACD flip (an exit plus a new entry) inside a test's few seconds
            # would be legitimate trading but would muddy the "nothing new was sent" assertions.
            "bot": {"port": self.bot_port, "db": "bot.db", "heartbeat_file": "bot.heartbeat", "loop_seconds": 0.5,
                    "coins": ["BTC", "ETH"], "candle_interval": "1h", "lock_file": "bot.lock", **bot},
        }))
        self.env = {**os.environ, "BOTWARDEN_EXCHANGE_ADMIN_TOKEN": ADMIN, "BOTWARDEN_BOT_TOKEN": CONTROL}
        self.env.pop("BOTWARDEN_PRIVATE_KEY", None)

    @property
    def ex_url(self) -> str:
        return f"http://127.0.0.1:{self.ex_port}"

    @property
    def bot_url(self) -> str:
        return f"http://127.0.0.1:{self.bot_port}"

    def start_exchange(self) -> None:
        p = subprocess.Popen([str(BIN), "paper-exchange", "--settings", str(self.settings), "--port",
                              str(self.ex_port), "--state", str(self.tmp / "exchange.db"), "--seed", "42"],
                             env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        wait_for(lambda: self.admin("GET", "/admin/state") is not None, what="paper exchange")

    def start_bot(self, log_name: str = "bot.log") -> subprocess.Popen[bytes]:
        log = open(self.tmp / log_name, "wb")
        # A session of its own: the bot and its warm spare share a process group, killed together.
        self.bot = subprocess.Popen([str(BIN), "run", "--settings", str(self.settings)], env=self.env,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(self.bot)
        wait_for(lambda: self.http.get(f"{self.bot_url}/health").status_code == 200, what="bot /health")
        return self.bot

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        r = self.http.request(method, self.ex_url + path, json=body, headers={"Authorization": f"Bearer {ADMIN}"})
        r.raise_for_status()
        return r.json()

    def info(self, body: dict[str, Any]) -> Any:
        return self.http.post(self.ex_url + "/info", json=body).json()

    def health(self) -> dict[str, Any]:
        return self.http.get(f"{self.bot_url}/health").json()

    def events(self, log_name: str = "bot.log") -> list[dict[str, Any]]:
        out = []
        for line in (self.tmp / log_name).read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def db(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.tmp / "bot.db") as c:
            return c.execute(sql).fetchall()

    def close(self) -> None:
        # Every process is ended whatever happens to another (a process left behind here would
        # outlive the test run: seen as paper exchanges still running an hour later).
        for p in reversed(self.procs):
            if p.args[1] == "run":  # a bot: its own process group holds its spare (or an interim)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=10)
        self.http.close()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(tmp_path)
    try:
        s.start_exchange()
        yield s
    finally:
        s.close()


def address() -> str:
    from eth_account import Account

    from botwarden.settings import PAPER_DEV_PRIVATE_KEY

    return Account.from_key(PAPER_DEV_PRIVATE_KEY).address


def test_bot_opens_and_closes_a_trade_and_stops_on_sigterm(stack: Stack) -> None:
    bot = stack.start_bot()
    health = wait_for(lambda: (h := stack.health())["positions"] and h["open_orders"] == 2 and h, what="entries")
    assert health["status"] == "healthy", health
    coin = health["positions"][0]["coin"]
    size = health["positions"][0]["size"]
    stack.admin("POST", "/admin/shock", {"coin": coin, "pct": -10 if size > 0 else 10})  # through the stop
    wait_for(lambda: stack.db("select count(*) from trades where closed_at is not null")[0][0] >= 1,
             what="trade closed by the resting stop-loss")
    pnl = stack.db(f"select pnl from trades where coin = '{coin}'")[0][0]
    assert pnl < 0
    heartbeat = float((stack.tmp / "bot.heartbeat").read_text())
    assert abs(heartbeat - time.time()) < 30
    bot.send_signal(signal.SIGTERM)
    assert bot.wait(timeout=10) == 0
    events = stack.events()
    assert {"order_submit", "order_result", "fill", "trade_open", "trade_close", "stop"} <= {e.get("event")
                                                                                          for e in events}
    text = (stack.tmp / "bot.log").read_text()
    assert CONTROL not in text


def test_kill_9_with_position_and_orders_then_restart_places_no_duplicate(stack: Stack) -> None:
    stack.configure(warm_spare=False)  # cold restarts: each start reconciles from scratch
    bot = stack.start_bot()
    wait_for(lambda: (h := stack.health())["open_orders"] == 2 and len(h["positions"]) == 2, what="entries")
    bot.kill()
    bot.wait(timeout=10)
    orders_before = sorted(o["oid"] for o in stack.info({"type": "frontendOpenOrders", "user": address()}))
    fills_before = len(stack.info({"type": "userFills", "user": address()}))
    # Restart twice: with the same database (keep), and with the database lost (adopt).
    stack.start_bot("bot2.log")
    wait_for(lambda: any(e.get("event") == "reconcile" for e in stack.events("bot2.log")), what="reconcile")
    time.sleep(2)  # a few loop iterations
    stack.bot.kill()
    stack.bot.wait(timeout=10)
    (stack.tmp / "bot.db").unlink()
    for extra in ("bot.db-wal", "bot.db-shm"):
        (stack.tmp / extra).unlink(missing_ok=True)
    stack.start_bot("bot3.log")
    wait_for(lambda: stack.health()["status"] == "healthy", what="healthy after adoption")
    time.sleep(2)
    adopted = [e for e in stack.events("bot3.log") if e.get("event") == "reconcile"]
    assert sorted((e["kind"], e["action"]) for e in adopted) == [("order", "adopt")] * 2 + [("position", "adopt")] * 2
    orders_after = sorted(o["oid"] for o in stack.info({"type": "frontendOpenOrders", "user": address()}))
    assert orders_after == orders_before
    assert len(stack.info({"type": "userFills", "user": address()})) == fills_before
    assert not any(e.get("event") == "order_submit" for e in stack.events("bot2.log") + stack.events("bot3.log"))


def test_dropped_order_response_is_not_duplicated(stack: Stack) -> None:
    # The bot's first /exchange requests are its two leverage updates; the third is the first order.
    stack.admin("POST", "/admin/faults", {"drop_responses": 3})
    stack.start_bot()
    wait_for(lambda: stack.health()["open_orders"] == 2, what="entries and stops")
    events = stack.events()
    assert sum(1 for e in events if e.get("event") == "leverage") == 2
    assert sum(1 for e in events if e.get("event") == "order_in_doubt") >= 1
    results = [e for e in events if e.get("event") == "order_result"]
    assert sum(1 for e in results if e["already_known"]) == 1
    oids = [int(f["oid"]) for f in stack.info({"type": "userFills", "user": address()})]
    assert len(oids) == len(set(oids)) == 2  # one fill per entry: nothing applied twice
    metrics = stack.http.get(f"{stack.bot_url}/metrics").text
    assert "trading_duplicate_orders_avoided_total 1.0" in metrics


# --- the warm spare ----------------------------------------------------------------------------
def _lock_free(stack: Stack) -> bool:
    import fcntl

    with open(stack.tmp / "bot.lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(fh, fcntl.LOCK_UN)
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_a_killed_bot_is_replaced_by_its_spare_then_relieved_by_the_next_bot(stack: Stack) -> None:
    bot = stack.start_bot()
    first = wait_for(lambda: (h := stack.health())["open_orders"] == 2 and len(h["positions"]) == 2 and h,
                     what="entries")
    assert (first["role"], first["pid"]) == ("active", bot.pid)
    orders = sorted(o["oid"] for o in stack.info({"type": "frontendOpenOrders", "user": address()}))
    fills = len(stack.info({"type": "userFills", "user": address()}))
    os.kill(bot.pid, signal.SIGKILL)  # the bot alone: its spare survives it
    interim = wait_for(lambda: (h := stack.health())["role"] == "interim" and h["status"] == "healthy" and h,
                       what="the spare taking over")
    assert interim["pid"] not in (bot.pid, None)
    assert interim["positions"] == first["positions"] or len(interim["positions"]) == 2
    assert any(e.get("event") == "spare_takeover" for e in stack.events())
    nxt = stack.start_bot("bot2.log")
    wait_for(lambda: (h := stack.health())["role"] == "active" and h["pid"] == nxt.pid and h["status"] == "healthy",
             what="the next bot relieving the interim")
    wait_for(lambda: not _alive(interim["pid"]), what="the interim gone")
    assert any(e.get("event") == "handover_request" for e in stack.events("bot2.log"))
    time.sleep(1)  # a few iterations of the new bot
    assert sorted(o["oid"] for o in stack.info({"type": "frontendOpenOrders", "user": address()})) == orders
    assert len(stack.info({"type": "userFills", "user": address()})) == fills  # nothing sent twice


def test_a_stopped_bot_leaves_no_spare_behind(stack: Stack) -> None:
    bot = stack.start_bot()
    wait_for(lambda: stack.health()["status"] == "healthy", what="healthy")
    bot.send_signal(signal.SIGTERM)  # the bot alone, as `kill <pid>` would: a stop, not a death
    assert bot.wait(timeout=15) == 0
    time.sleep(1)
    assert _lock_free(stack)  # nobody took over
    with pytest.raises(httpx.TransportError):
        stack.http.get(f"{stack.bot_url}/health")


def test_an_interim_nobody_relieves_stops_after_its_tenure(stack: Stack) -> None:
    stack.configure(spare_tenure_s=2)
    bot = stack.start_bot()
    wait_for(lambda: stack.health()["status"] == "healthy", what="healthy")
    os.kill(bot.pid, signal.SIGKILL)
    interim = wait_for(lambda: (h := stack.health())["role"] == "interim" and h, what="the spare taking over")
    wait_for(lambda: not _alive(interim["pid"]), timeout=40, what="the interim stopping at the end of its tenure")
    assert _lock_free(stack)
