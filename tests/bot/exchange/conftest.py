"""Fixtures for the paper exchange: a real server on an ephemeral loopback port.

* ``paper_exchange``: in-process server (``serve_in_thread``) with its state in ``tmp_path``;
  a :class:`bot.exchange.RunningExchange` (``.url``, ``.admin(method, path, body)``, ``.stop()``).
* ``hl_info`` / ``hl_exchange``: the unmodified SDK's ``Info`` and ``Exchange`` pointed at it,
  signing with the funded development key.
* ``spawn_paper_exchange``: a factory starting ``.venv/bin/bot paper-exchange`` as a subprocess
  (``spawn_paper_exchange(state=..., seed=...) -> SpawnedExchange``), stopped at teardown.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info

from bot.exchange import DEFAULT_ADMIN_TOKEN, RunningExchange, serve_in_thread
from botwarden.settings import PAPER_DEV_PRIVATE_KEY
from tests.support import loopback
from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def paper_exchange(tmp_path: Path) -> Iterator[RunningExchange]:
    ex = serve_in_thread(state=tmp_path / "exchange.db", seed=42, tick_seconds=0.2)
    try:
        yield ex
    finally:
        ex.stop()


@pytest.fixture
def dev_wallet() -> LocalAccount:
    return Account.from_key(PAPER_DEV_PRIVATE_KEY)


@pytest.fixture
def hl_info(paper_exchange: RunningExchange) -> Info:
    return Info(paper_exchange.url, skip_ws=True, timeout=10)


@pytest.fixture
def hl_exchange(paper_exchange: RunningExchange, dev_wallet: LocalAccount) -> Exchange:
    return Exchange(dev_wallet, paper_exchange.url, timeout=10)


@dataclass
class SpawnedExchange:
    url: str
    process: subprocess.Popen[bytes]
    admin_token: str

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


@pytest.fixture
def spawn_paper_exchange(tmp_path: Path) -> Iterator[Callable[..., SpawnedExchange]]:
    started: list[SpawnedExchange] = []

    def spawn(*, state: Path | None = None, seed: int = 42, port: int | None = None) -> SpawnedExchange:
        port = port or free_port()
        state = state or tmp_path / "spawned-exchange.db"
        bot = Path(sys.executable).parent / "bot"
        env = {**os.environ, "BOTWARDEN_EXCHANGE_ADMIN_TOKEN": DEFAULT_ADMIN_TOKEN}
        proc = subprocess.Popen([str(bot), "paper-exchange", "--port", str(port), "--state", str(state),
                                 "--seed", str(seed)], cwd=tmp_path, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        spawned = SpawnedExchange(f"http://127.0.0.1:{port}", proc, DEFAULT_ADMIN_TOKEN)
        started.append(spawned)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"paper exchange exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                if loopback.post(spawned.url + "/info", json={"type": "meta"}, timeout=1).status_code == 200:
                    return spawned
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("paper exchange did not start within 20 s")

    yield spawn
    for s in started:
        s.stop()
