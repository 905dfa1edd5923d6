"""Scenario 4 (scheduler capacity) and 6 (idle RSS with every shipped playbook).

Capacity: the real ``agent run`` process (store, evaluator, outbox: the whole path of a result)
with N http checks, each ``every: 1s`` spread over 10 plays, against a local aiohttp server in
its own process. Over a 15 s window after a 5 s warm-up it reads the agent's own /metrics:
results per second, lateness (actual check start minus scheduled time) p50/p99 from the
histogram, and the agent's CPU% and RSS. All of it on the same two cores.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import yaml
from prometheus_client.parser import text_string_to_metric_families

from benchmarks._common import BIN, REPO, free_port, log, rss_mb, short_tmp, wait_for
from tests.support.stack import repository_world

SERVER = """
import sys
from aiohttp import web
async def health(request):
    return web.json_response({"status": "healthy"})
app = web.Application()
app.router.add_get("/health", health)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""

WARMUP_S = 5.0
WINDOW_S = 15.0


def _metrics(port: int) -> dict[str, Any]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, Any] = {"buckets": [], "results": 0.0, "lateness_count": 0.0}
    for fam in text_string_to_metric_families(text):
        if fam.name == "botwarden_scheduler_lateness_seconds":
            for s in fam.samples:
                if s.name.endswith("_bucket"):
                    out["buckets"].append((float(s.labels["le"]), s.value))
                elif s.name.endswith("_count"):
                    out["lateness_count"] = s.value
        elif fam.name == "botwarden_check_results":
            out["results"] += sum(s.value for s in fam.samples if s.name.endswith("_total"))
    return out


def _quantile(before: list[tuple[float, float]], after: list[tuple[float, float]], q: float) -> float | None:
    """Upper bound of the bucket holding quantile ``q`` of the samples between two scrapes."""
    b = dict(before)
    diffs = sorted((le, v - b.get(le, 0.0)) for le, v in after)
    total = diffs[-1][1] if diffs else 0.0
    if total <= 0:
        return None
    for le, cum in diffs:
        if cum >= q * total:
            return le
    return float("inf")


def _world(n: int, target: str, d: Path, metrics_port: int) -> list[str]:
    (d / "var").mkdir(parents=True, exist_ok=True)
    (d / "playbooks").mkdir(exist_ok=True)
    (d / "settings.yaml").write_text(yaml.safe_dump({
        "var_dir": str(d / "var"),
        "supervisor": {"socket": str(d / "none.sock"), "config": str(d / "x.conf"), "logdir": str(d / "var")},
        "agent": {"db": str(d / "var" / "agent.db"), "metrics_port": metrics_port,
                  "events_socket": str(d / "ev.sock")},
    }))
    (d / "inventory.yaml").write_text(yaml.safe_dump({
        "version": 1, "settings": "settings.yaml", "hosts": {"local": {"vars": {}}},
        "groups": {"bots": {"hosts": ["local"]}},
        "notify": {"targets": {"hook": {"url": "json://127.0.0.1:9/", "optional": True}},
                   "routes": [{"name": "default", "targets": ["hook"]}]},
    }))
    if not (d / "templates").exists():
        (d / "templates").symlink_to(REPO / "templates")
    plays = 10 if n >= 10 else 1
    for p in range(plays):
        checks = "".join(textwrap.dedent(f"""\
              - name: c{i}
                http: {{url: "{target}", timeout: 2s}}
                expect: "status_code == 200"
            """) for i in range(p, n, plays))
        (d / "playbooks" / f"cap{p}.yaml").write_text(
            f"version: 1\nname: cap{p}\nhosts: bots\nschedule: {{every: 1s}}\nchecks:\n" + textwrap.indent(checks, ""))
    return [str(BIN / "agent"), "run", "--inventory", str(d / "inventory.yaml"), str(d / "playbooks")]


def capacity_point(n: int, target: str) -> dict[str, Any]:
    d = short_tmp("bwc")
    port = free_port()
    cmd = _world(n, target, d, port)
    proc = subprocess.Popen(cmd, cwd=d, stdout=subprocess.DEVNULL, stderr=open(d / "agent.log", "wb"))
    try:
        wait_for(lambda: _try(lambda: _metrics(port)), 30, 0.1)
        time.sleep(WARMUP_S)
        ps = psutil.Process(proc.pid)
        m0, c0, t0 = _metrics(port), ps.cpu_times(), time.monotonic()
        time.sleep(WINDOW_S)
        m1, c1, t1 = _metrics(port), ps.cpu_times(), time.monotonic()
        elapsed = t1 - t0
        cpu = (c1.user + c1.system - c0.user - c0.system) / elapsed * 100
        return {
            "checks": n,
            "results_per_s": (m1["results"] - m0["results"]) / elapsed,
            "lateness_p50_ms": _ms(_quantile(m0["buckets"], m1["buckets"], 0.5)),
            "lateness_p99_ms": _ms(_quantile(m0["buckets"], m1["buckets"], 0.99)),
            "cpu_percent": cpu,
            "rss_mb": rss_mb(proc.pid),
        }
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ms(v: float | None) -> float | None:
    return None if v is None else v * 1000


def _try(fn: Any) -> Any:
    try:
        return fn()
    except Exception:  # noqa: BLE001 - not up yet
        return None


def run_capacity(points: list[int]) -> list[dict[str, Any]]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    target = f"http://127.0.0.1:{port}/health"
    try:
        wait_for(lambda: _try(lambda: urllib.request.urlopen(target, timeout=1).status == 200), 20, 0.05)
        out = []
        for n in points:
            res = capacity_point(n, target)
            log(f"  capacity {n} checks/s: {res['results_per_s']:.0f} results/s, lateness p50 "
                f"<= {res['lateness_p50_ms']} ms, p99 <= {res['lateness_p99_ms']} ms, CPU {res['cpu_percent']:.0f}%, "
                f"RSS {res['rss_mb']:.0f} MB")
            out.append(res)
        return out
    finally:
        server.terminate()
        server.wait(10)


def idle_rss(samples: int = 20) -> dict[str, Any]:
    """The agent with the repository's inventory and every shipped playbook, nothing to talk to."""
    d = short_tmp("bwi")
    inventory = repository_world(d, {
        "var_dir": str(d / "var"), "supervisor": {"socket": str(d / "none.sock")},
        "exchange": {"port": free_port()}, "bot": {"port": free_port()}, "inbox": {"port": free_port()},
        "agent": {"metrics_port": free_port(), "events_socket": str(d / "ev.sock")},
    })
    proc = subprocess.Popen([str(BIN / "agent"), "run", "--inventory", str(inventory), str(d / "playbooks")],
                            cwd=d, stdout=subprocess.DEVNULL, stderr=open(d / "agent.log", "wb"),
                            env={**{k: v for k, v in os.environ.items() if not k.startswith("BOTWARDEN_")}})
    try:
        time.sleep(10)
        values = []
        for _ in range(samples):
            values.append(rss_mb(proc.pid))
            time.sleep(0.25)
        alive = proc.poll() is None
        heavy = [name for name, marker in HEAVY_MARKERS.items() if _loaded(proc.pid, marker)]
        return {"samples": values, "alive": alive, "heavy_loaded": heavy, "log": (d / "agent.log").read_text()[-2000:]}
    finally:
        proc.terminate()
        proc.wait(20)


HEAVY_MARKERS = {
    "pandas": "/pandas/",
    "numpy": "/numpy/",
    "the Hyperliquid SDK (eth_account, pycryptodome)": "/Crypto/",
    "cryptography": "/cryptography/",
}
"""Heavy libraries, each known by a compiled extension of its own that the process maps once it is
imported (pure-Python packages such as hyperliquid itself map no file, so their helpers are probed)."""


def _loaded(pid: int, marker: str) -> bool:
    """Whether a file whose path contains ``marker`` is mapped by the process (a cheap import probe)."""
    try:
        return any(marker in (m.path or "") for m in psutil.Process(pid).memory_maps())
    except psutil.Error:
        return False
