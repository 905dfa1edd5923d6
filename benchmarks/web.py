"""Scenario 7: the web page does not slow the guard.

A real stack (supervisord, paper exchange, trading bot, the agent with every shipped playbook,
and the ``web`` program), plus a load playbook of ``LOAD_CHECKS`` HTTP checks a second so the
agent's lateness has samples to speak of. Two windows of ``WINDOW_S`` each:

* **idle**: nobody looks at the page;
* **watched**: ``CLIENTS`` signed-in browsers' worth of server-sent event streams are open on the
  live overview (each its own session, reading every update), and the overview is fetched
  ``PAGE_FETCHES`` times: its time to first byte is measured from the request to the first byte
  of the answer.

Per window: the agent's scheduler lateness p50/p99 (from its /metrics histogram, bucket upper
bounds), its CPU% and RSS, and the web program's CPU% and RSS. ``python -m benchmarks.web``
runs it alone.
"""
from __future__ import annotations

import re
import socket
import statistics
import textwrap
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks._common import Series, fmt, free_port, log, short_tmp, table
from benchmarks.capacity import _metrics, _quantile
from tests.support.stack import StackUnderTest

CLIENTS = 10
WINDOW_S = 30.0
PAGE_FETCHES = 60
LOAD_CHECKS = 50


def _load_playbook(url: str) -> str:
    """LOAD_CHECKS HTTP checks a second against the paper exchange's /info (``url``). Not the bot's
    /health: the bot serves at most 32 connections at once (bot.trading.http_api.MAX_CONNECTIONS)
    and the agent keeps its checks' connections alive, so 50 checks a second of /health left
    every other client "too many clients" (503), the stack's own readiness probe included."""
    checks = "\n".join(textwrap.dedent(f"""\
          - name: load {i}
            http: {{url: "{url}", method: POST, json: {{type: meta}}, timeout: 2s}}
            expect: "status_code == 200"
            every: 1s""") for i in range(LOAD_CHECKS))
    return f"version: 1\nname: load\nhosts: bots\nchecks:\n{textwrap.indent(checks, '  ')}\n"


def _session(base: str, user: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10)
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, "no sign-in form"
    r = client.post("/login", data={"csrf": token.group(1), "username": user, "password": password, "next": "/"})
    assert r.status_code == 303, f"sign-in failed: {r.status_code}"
    return client


def _ttfb(port: int, cookie: str) -> float:
    """Milliseconds from sending ``GET /`` to the first byte of the answer (a raw socket)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        request = (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: bw_session={cookie}\r\n"
                   "Connection: close\r\n\r\n").encode()
        started = time.perf_counter()
        s.sendall(request)
        first = s.recv(1)
        took = (time.perf_counter() - started) * 1000
        assert first == b"H"
        while s.recv(65536):
            pass
    return took


class _Stream(threading.Thread):
    """One browser's event stream on the live overview; counts the updates it reads (whole or rows)."""

    def __init__(self, client: httpx.Client, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.client, self.stop, self.updates = client, stop, 0

    def run(self) -> None:
        with self.client.stream("GET", "/events/overview", timeout=httpx.Timeout(10, read=60)) as r:
            for line in r.iter_lines():
                if line.startswith(("event: update", "event: rows")):
                    self.updates += 1
                if self.stop.is_set():
                    return


def _window(stack: StackUnderTest, metrics_port: int, web_pid: int, agent_pid: int, port: int, cookie: str,
            fetch: bool) -> dict[str, Any]:
    agent, web = psutil.Process(agent_pid), psutil.Process(web_pid)
    before = _metrics(metrics_port)
    a0, w0 = agent.cpu_times(), web.cpu_times()
    started = time.monotonic()
    ttfb = Series("overview first byte")
    if fetch:
        gap = WINDOW_S / PAGE_FETCHES
        for _ in range(PAGE_FETCHES):
            ttfb.add(_ttfb(port, cookie))
            time.sleep(gap)
    time.sleep(max(0.0, WINDOW_S - (time.monotonic() - started)))
    took = time.monotonic() - started
    after = _metrics(metrics_port)
    a1, w1 = agent.cpu_times(), web.cpu_times()
    return {
        "lateness_p50": _ms(_quantile(before["buckets"], after["buckets"], 0.5)),
        "lateness_p99": _ms(_quantile(before["buckets"], after["buckets"], 0.99)),
        "runs": after["lateness_count"] - before["lateness_count"],
        "agent_cpu": 100 * ((a1.user + a1.system) - (a0.user + a0.system)) / took,
        "web_cpu": 100 * ((w1.user + w1.system) - (w0.user + w0.system)) / took,
        "agent_rss": agent.memory_info().rss / 2**20, "web_rss": web.memory_info().rss / 2**20,
        "ttfb": ttfb,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def run() -> dict[str, Any]:
    root = short_tmp("bwweb")
    metrics_port = free_port()
    stack = StackUnderTest(Path(root), shipped_playbooks=True,
                           settings={"agent": {"metrics_port": metrics_port}})
    stack_load = stack.root / "playbooks" / "load.yaml"
    stack_load.write_text(_load_playbook(f"{stack.exchange_url}/info"))
    try:
        stack.up()
        stack.wait_running()
        stack.wait_state("web", "RUNNING")
        port = stack.settings.web.port
        base = f"http://127.0.0.1:{port}"
        secrets = dict(line.split("=", 1) for line in (stack.var / "secrets.env").read_text().splitlines()
                       if "=" in line and not line.startswith("#"))
        password = secrets[stack.settings.web.viewer_password_env]
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        time.sleep(10)  # the agent's first runs of every check, and its reload of the load playbook
        fetcher = _session(base, "viewer", password)
        cookie = fetcher.cookies["bw_session"]
        fetcher.get("/")  # the page is watched from here on; take the idle window first
        time.sleep(65)  # past the page's idle timeout: nobody is looking
        pids = {i["name"]: i["pid"] for i in stack._mod.proxy(stack.stack).supervisor.getAllProcessInfo()}
        log("  idle window")
        idle = _window(stack, metrics_port, pids["web"], pids["agent"], port, cookie, fetch=False)
        stop = threading.Event()
        streams = [_Stream(_session(base, "viewer", password), stop) for _ in range(CLIENTS)]
        for s in streams:
            s.start()
        time.sleep(3)
        log(f"  watched window: {CLIENTS} event streams open, overview fetched {PAGE_FETCHES} times")
        watched = _window(stack, metrics_port, pids["web"], pids["agent"], port, cookie, fetch=True)
        stop.set()
        watched["updates"] = [s.updates for s in streams]
        return {"idle": idle, "watched": watched}
    finally:
        stack.down()


def render(res: dict[str, Any]) -> list[str]:
    idle, watched = res["idle"], res["watched"]
    ttfb: Series = watched["ttfb"]
    rows = [[name, f"{w['runs']:.0f}", fmt(w["lateness_p50"]), fmt(w["lateness_p99"]), fmt(w["agent_cpu"]),
             fmt(w["agent_rss"]), fmt(w["web_cpu"]), fmt(w["web_rss"])]
            for name, w in (("nobody on the page", idle), (f"{CLIENTS} live pages open", watched))]
    updates = watched.get("updates", [])
    return [
        "## 7. The web page beside the agent",
        "",
        f"The stack as `make run` starts it (every shipped playbook) plus {LOAD_CHECKS} HTTP checks a second of the bot's /health; "
        f"{WINDOW_S:g} s per window. *Live pages*: {CLIENTS} signed-in server-sent event streams on the overview "
        f"(each read {min(updates, default=0)}-{max(updates, default=0)} updates), and the overview fetched "
        f"{PAGE_FETCHES} times. Lateness: agent's histogram, bucket upper bounds.",
        "",
        table(["", "check runs", "lateness p50 <=", "lateness p99 <=", "agent CPU %", "agent RSS MB",
               "web CPU %", "web RSS MB"], rows),
        "",
        f"Overview time to first byte with {CLIENTS} live pages open: median {fmt(ttfb.median)} ms, "
        f"p90 {fmt(ttfb.q(0.9))} ms, max {fmt(max(ttfb.samples) if ttfb.samples else None)} ms "
        f"({len(ttfb.samples)} fetches).",
        "",
    ]


if __name__ == "__main__":
    result = run()
    for line in render(result):
        log(line)
    log(f"updates per stream: {result['watched'].get('updates')}; "
        f"median ttfb {statistics.median(result['watched']['ttfb'].samples):.1f} ms")
