"""`bot drill` against a real paper exchange on loopback."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.exchange.server import serve_in_thread
from tests.support import loopback
from tests.support.ports import free_port


@pytest.fixture
def exchange(tmp_path):
    ex = serve_in_thread(state=tmp_path / "ex.db", admin_token="drill-token", tick_seconds=0.2)
    yield ex
    ex.stop()


@pytest.fixture
def settings_file(tmp_path, exchange):
    p = tmp_path / "settings.yaml"
    p.write_text(f"exchange: {{port: {exchange.port}}}\nvar_dir: {tmp_path / 'var'}\n")
    return p


def run(args, monkeypatch, token="drill-token"):
    monkeypatch.setenv("BOTWARDEN_EXCHANGE_ADMIN_TOKEN", token)
    return CliRunner().invoke(app, args)


def test_faults_set_show_and_clear(monkeypatch, settings_file, exchange):
    r = run(["drill", "faults", "latency_ms=250", "outage=503", "--settings", str(settings_file)], monkeypatch)
    assert r.exit_code == 0, r.output
    faults = exchange.admin("GET", "/admin/state")["faults"]
    assert faults["latency_ms"] == 250 and faults["outage"] == "503"
    r = run(["drill", "clear", "--settings", str(settings_file)], monkeypatch)
    assert r.exit_code == 0
    assert exchange.admin("GET", "/admin/state")["faults"]["outage"] == "off"


def test_shock_moves_the_mark(monkeypatch, settings_file, exchange):
    before = float(exchange.admin("GET", "/admin/state")["marks"]["BTC"])
    r = run(["drill", "shock", "BTC", "-10", "--settings", str(settings_file)], monkeypatch)
    assert r.exit_code == 0, r.output
    after = float(json.loads(r.stdout)["mark"]) if "mark" in json.loads(r.stdout) else \
        float(exchange.admin("GET", "/admin/state")["marks"]["BTC"])
    assert after == pytest.approx(before * 0.9, rel=0.01)


def mark(exchange, coin="BTC"):
    return float(exchange.admin("GET", "/admin/state")["marks"][coin])


def test_clear_undoes_the_shocks_from_now_on(monkeypatch, settings_file, exchange):
    """`drill clear` ends every drill, shocks included: the mark is back on the unshocked price
    process (the history keeps the shock: candles already served do not change)."""
    unshocked = exchange.exchange.ledger.market.base_price
    for coin, pct in (("BTC", "-30"), ("BTC", "20"), ("ETH", "50")):
        assert run(["drill", "shock", coin, pct, "--settings", str(settings_file)], monkeypatch).exit_code == 0
    assert mark(exchange) == pytest.approx(unshocked("BTC", exchange.exchange.ledger.clock()) * 0.84, rel=0.01)
    r = run(["drill", "clear", "--settings", str(settings_file)], monkeypatch)
    assert r.exit_code == 0, r.output
    for coin in ("BTC", "ETH"):
        assert mark(exchange, coin) == pytest.approx(unshocked(coin, exchange.exchange.ledger.clock()), rel=0.002)
    # and a second clear has nothing left to undo
    assert run(["drill", "clear", "--settings", str(settings_file)], monkeypatch).exit_code == 0
    assert mark(exchange) == pytest.approx(unshocked("BTC", exchange.exchange.ledger.clock()), rel=0.002)


@pytest.mark.parametrize("args,code,text", [
    (["drill", "faults", "latency_ms"], 2, "expected name=value"),
    (["drill", "faults", "no_such_fault=1"], 4, "unknown fault"),
    (["drill", "faults", "weight_per_minute=-5"], 4, "weight_per_minute must be a whole number >= 1"),
    (["drill", "faults", "weight_per_minute=0"], 4, "weight_per_minute must be a whole number >= 1"),
    (["drill", "faults", "weight_per_minute=1.5"], 4, "weight_per_minute must be a whole number >= 1"),
    (["drill", "faults", "drop_responses=-1"], 4, "drop_responses must be a whole number from 0 to 100"),
    (["drill", "faults", "auth_failure=maybe"], 4, "auth_failure must be true or false"),
    (["drill", "faults", "latency_ms=fast"], 4, "latency_ms must be a number"),
    # only true and false are booleans (YAML 1.1 reads yes/on/y as true): the rest is refused by name
    (["drill", "faults", "auth_failure=yes"], 4, "auth_failure must be true or false, not 'yes'"),
    (["drill", "faults", "ioc_no_fill=on"], 4, "ioc_no_fill must be true or false, not 'on'"),
    (["drill", "faults", "ws_outage=True"], 4, "ws_outage must be true or false, not 'True'"),
    (["drill", "faults", "latency_ms=1500000"], 4, "latency_ms must be from 0 to 60000"),
    (["drill", "faults", "ws_delay_ms=60001"], 4, "ws_delay_ms must be from 0 to 60000"),
    (["drill", "faults", "drop_responses=100000"], 4, "drop_responses must be a whole number from 0 to 100"),
    (["drill", "shock", "BTC", "-95"], 4, "with no shock in place, one shock from -90% to +900% is allowed now"),
    (["drill", "shock", "BTC", "1e9"], 4, "the mark may move to between 0.1x and 10x"),
    (["drill", "shock", "BTC", "-95"], 4, "the mark may move to between 0.1x and 10x"),
    (["drill", "shock", "BTC", "nan"], 2, "pct must be a finite number"),
    (["drill", "shock", "DOGE", "-10"], 4, "unknown coin 'DOGE'"),
])
def test_errors_are_clear(monkeypatch, settings_file, exchange, args, code, text):
    before = exchange.admin("GET", "/admin/state")
    r = run([*args, "--settings", str(settings_file)], monkeypatch)
    assert r.exit_code == code and text in r.output, r.output
    after = exchange.admin("GET", "/admin/state")
    assert after["faults"] == before["faults"]  # a refused drill changes nothing
    assert not exchange.exchange.ledger.market.shocks


def test_the_bounds_themselves_are_allowed_and_words_stay_words(monkeypatch, settings_file, exchange):
    """-90% is the documented lower bound (1 + -0.9 is 0.09999999999999998 in floats: it was refused
    with a message saying -90 was allowed); `outage=off` is the mode `off`, not YAML's false."""
    before = mark(exchange)
    r = run(["drill", "shock", "BTC", "-90", "--settings", str(settings_file)], monkeypatch)
    assert r.exit_code == 0, r.output
    assert mark(exchange) == pytest.approx(before * 0.1, rel=0.01)
    r = run(["drill", "shock", "BTC", "-1", "--settings", str(settings_file)], monkeypatch)
    assert r.exit_code == 4 and "with the shocks in place at 0.1x," in r.output, r.output
    assert "one shock from +0% to +9900% is allowed now" in r.output, r.output
    r = run(["drill", "faults", "outage=503", "latency_ms=60000", "drop_responses=100", "--settings",
             str(settings_file)], monkeypatch)
    assert r.exit_code == 0, r.output
    assert run(["drill", "faults", "outage=off", "latency_ms=0", "drop_responses=0", "--settings", str(settings_file)],
               monkeypatch).exit_code == 0
    assert exchange.admin("GET", "/admin/state")["faults"]["outage"] == "off"


def test_stacked_shocks_stay_within_the_bound(monkeypatch, settings_file, exchange):
    """The bound is on the mark's total move, so shocks cannot be stacked past it either."""
    assert run(["drill", "shock", "BTC", "500", "--settings", str(settings_file)], monkeypatch).exit_code == 0
    r = run(["drill", "shock", "BTC", "100", "--settings", str(settings_file)], monkeypatch)
    assert r.exit_code == 4 and "the mark may move to between 0.1x and 10x" in r.output, r.output


def test_wrong_token_is_refused(monkeypatch, settings_file):
    r = run(["drill", "state", "--settings", str(settings_file)], monkeypatch, token="wrong")
    assert r.exit_code == 4 and "401" in r.output


def test_refused_off_paper(monkeypatch, tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("bot: {network: testnet}\n")
    r = run(["drill", "state", "--settings", str(p)], monkeypatch)
    assert r.exit_code == 4 and "only run against the paper exchange" in r.output


def test_no_token_anywhere_is_a_clear_error_not_a_public_default(monkeypatch, settings_file, exchange):
    monkeypatch.delenv("BOTWARDEN_EXCHANGE_ADMIN_TOKEN", raising=False)
    r = CliRunner().invoke(app, ["drill", "state", "--settings", str(settings_file)])
    assert r.exit_code != 0 and "no admin token" in r.output, r.output


def test_an_exchange_started_without_a_token_has_no_admin_api(tmp_path):
    """The real `bot paper-exchange` with no token in its environment: no public fallback."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx

    from bot.exchange.server import DEFAULT_ADMIN_TOKEN

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "BOTWARDEN_EXCHANGE_ADMIN_TOKEN"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "bot"), "paper-exchange", "--port", str(port),
                             "--state", str(tmp_path / "tokenless.db")], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if loopback.post(f"{url}/info", json={"type": "meta"}, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        for auth in (f"Bearer {DEFAULT_ADMIN_TOKEN}", "Bearer", "Bearer anything"):
            r = loopback.get(f"{url}/admin/state", headers={"Authorization": auth})
            assert r.status_code == 503 and "disabled" in r.json()["error"]
    finally:
        proc.terminate()
        proc.wait(15)
    assert b"admin API (fault injection) is disabled" in (proc.stderr.read() if proc.stderr else b"")


def test_ws_drop_and_ws_faults(monkeypatch, settings_file, exchange):
    import websocket

    ws = websocket.create_connection(exchange.url.replace("http", "ws") + "/ws", timeout=10)
    assert ws.recv() == "Websocket connection established."
    r = run(["drill", "ws-drop", "--settings", str(settings_file)], monkeypatch)
    assert r.exit_code == 0 and json.loads(r.stdout) == {"dropped": 1}
    with pytest.raises((websocket.WebSocketException, OSError)):
        ws.recv()
    r = run(["drill", "faults", "ws_stall=[allMids, l2Book]", "ws_delay_ms=250", "--settings", str(settings_file)],
            monkeypatch)
    assert r.exit_code == 0, r.output
    faults = exchange.admin("GET", "/admin/state")["faults"]
    assert faults["ws_stall"] == ["allMids", "l2Book"] and faults["ws_delay_ms"] == 250


def test_revoke_and_approve_an_api_wallet(monkeypatch, settings_file, exchange):
    import secrets

    from eth_account import Account
    from hyperliquid.exchange import Exchange

    from botwarden.settings import PAPER_DEV_PRIVATE_KEY

    key = "0x" + secrets.token_hex(32)
    monkeypatch.setenv("BOTWARDEN_BOT_API_WALLET_KEY", key)
    monkeypatch.delenv("BOTWARDEN_PRIVATE_KEY", raising=False)
    r = run(["drill", "approve", "bot", "--settings", str(settings_file)], monkeypatch)
    assert r.exit_code == 0, r.output
    address = Account.from_key(key).address.lower()
    assert json.loads(r.stdout) == {"approved": "botwarden-bot", "address": address}
    master = Account.from_key(PAPER_DEV_PRIVATE_KEY).address
    bot = Exchange(Account.from_key(key), exchange.url, account_address=master)
    assert bot.market_open("ETH", True, 0.05)["status"] == "ok"
    r = run(["drill", "revoke", "bot", "--settings", str(settings_file)], monkeypatch)
    assert r.exit_code == 0 and json.loads(r.stdout)["revoked"] == "botwarden-bot"
    assert bot.market_close("ETH") == {"status": "err", "response": f"User or API Wallet {address} does not exist."}
    assert key[2:] not in r.output
    r = run(["drill", "revoke", "nobody", "--settings", str(settings_file)], monkeypatch)
    assert r.exit_code == 4 and "expected bot or agent" in r.output


def test_a_drill_typed_beside_an_inventory_reads_the_settings_it_names(monkeypatch, settings_file, exchange):
    """Like `agent`, `bot drill` in a stack's directory drives that stack's exchange: the settings
    file its inventory names (an exchange on a non-default port here), not the defaults."""
    (settings_file.parent / "inventory.yaml").write_text(f"settings: {settings_file.name}\nhosts: {{}}\n")
    monkeypatch.chdir(settings_file.parent)
    monkeypatch.delenv("BOTWARDEN_SETTINGS", raising=False)
    r = run(["drill", "faults", "latency_ms=120"], monkeypatch)
    assert r.exit_code == 0, r.output
    assert exchange.admin("GET", "/admin/state")["faults"]["latency_ms"] == 120
    # --settings still wins
    p = settings_file.parent / "other.yaml"
    p.write_text("bot: {network: testnet}\n")
    r = run(["drill", "state", "--settings", str(p)], monkeypatch)
    assert r.exit_code == 4 and "only run against the paper exchange" in r.output


@pytest.mark.parametrize("value", ["[1", "2026-02-30", "!!float x", pytest.param("[" * 3000, id="deep")])
def test_a_value_yaml_cannot_read_is_the_operators_mistake(value: str) -> None:
    """``bot drill faults latency_ms=2026-02-30`` (or nested past the bound) ended in a traceback
    (ValueError, RecursionError) instead of the usage error a typo is (brk15)."""
    from bot.drill import DrillError, parse_assignments

    with pytest.raises(DrillError, match="quote it"):
        parse_assignments([f"latency_ms={value}"])
