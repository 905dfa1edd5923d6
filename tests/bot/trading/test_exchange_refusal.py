"""An exchange that refuses the bot's whole signed requests (Hyperliquid's ``{"status": "err"}``: a
revoked or expired API wallet is ``User or API Wallet 0x... does not exist.``) is a gateway error,
not one rejected order: logged at ERROR, and /health degraded with a reason that names it until the
wallet is approved again. Driven through the unmodified SDK against the paper exchange."""
from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from bot import api_wallets
from bot.trading.engine import TradingEngine
from bot.trading.gateway import Gateway, GatewayError
from botwarden.settings import PAPER_DEV_PRIVATE_KEY, StackSettings
from tests.bot.trading.api_wallet_engine import DEV, NAME, engine, wallet  # noqa: F401 (fixtures)


def far_bid(gw: Gateway, coin: str = "BTC") -> dict[str, Any]:
    px = float(round(gw.mids()[coin] * 0.5))
    return {"coin": coin, "is_buy": True, "size": 0.001, "limit_px": px, "order_type": {"limit": {"tif": "Gtc"}},
            "reduce_only": False}


def test_a_revoked_api_wallet_is_a_gateway_error_remembered_until_approved_again(
        bot_settings: StackSettings, engine: TradingEngine, wallet: Any) -> None:
    gw = engine.gw
    assert gw.place(**far_bid(gw), cloid="0x" + "11" * 16).status == "resting"
    assert gw.refusal is None and gw.verify_signer() is None

    api_wallets.revoke(bot_settings.exchange_url, PAPER_DEV_PRIVATE_KEY, NAME)
    with pytest.raises(GatewayError) as refused:
        gw.place(**far_bid(gw), cloid="0x" + "22" * 16)
    assert refused.value.kind == "auth"
    assert f"User or API Wallet {wallet.address.lower()} does not exist." in refused.value.message
    assert gw.refusal == f"User or API Wallet {wallet.address.lower()} does not exist."
    assert gw.cancel("BTC", 1) is False  # every other signed action too (not cancelled)
    assert gw.refusal is not None

    # approved again (`bot drill approve bot`): the periodic userRole check clears it
    api_wallets.approve(bot_settings.exchange_url, PAPER_DEV_PRIVATE_KEY, wallet.address, NAME)
    assert gw.verify_signer() is None and gw.refusal is None
    assert gw.place(**far_bid(gw), cloid="0x" + "33" * 16).status == "resting"


def test_a_refusal_of_signed_requests_stands_while_userrole_says_approved_until_a_signed_request_succeeds(
        engine: TradingEngine, paper_exchange: Any) -> None:
    """`bot drill faults auth_failure=true`: the wallet is still approved (userRole) but the exchange
    refuses every signed request. The periodic check must not clear the refusal (a false "resolved")."""
    gw = engine.gw
    paper_exchange.admin("POST", "/admin/faults", {"auth_failure": True})
    with pytest.raises(GatewayError):
        gw.place(**far_bid(gw), cloid="0x" + "44" * 16)
    refusal = gw.refusal
    assert refusal is not None and "does not exist" in refusal
    for _ in range(3):
        assert gw.verify_signer() == refusal and gw.refusal == refusal
    paper_exchange.admin("DELETE", "/admin/faults")
    assert gw.verify_signer() is None and gw.refusal is None  # its signed probe went through
    assert gw.open_orders() == []  # the probe placed and cancelled nothing


def test_the_periodic_check_finds_a_revoked_wallet_without_any_order(
        bot_settings: StackSettings, engine: TradingEngine, wallet: Any) -> None:
    api_wallets.revoke(bot_settings.exchange_url, PAPER_DEV_PRIVATE_KEY, NAME)
    refusal = engine.gw.verify_signer()
    assert refusal is not None and wallet.address in refusal and "not approved" in refusal


def test_the_bot_degrades_and_logs_an_error_naming_the_refusal(
        bot_settings: StackSettings, engine: TradingEngine, wallet: Any, caplog: pytest.LogCaptureFixture) -> None:
    engine.reconcile()
    api_wallets.revoke(bot_settings.exchange_url, PAPER_DEV_PRIVATE_KEY, NAME)
    with caplog.at_level(logging.INFO):
        engine.iterate()  # the trend entry right after start-up is refused
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(getattr(r, "event", None) == "order_rejected" and "does not exist" in str(getattr(r, "error", ""))
               for r in errors), [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if getattr(r, "event", None) == "order_result"
                and getattr(r, "status", None) == "rejected"]  # not an info-level order result
    status = engine.status
    status.exchange_refusal = engine.gw.refusal  # what the loop copies after each iteration
    status.connected, status.market_data_wall = True, time.time()
    health = status.health()
    assert health["status"] == "degraded"
    assert any("does not exist" in r and wallet.address.lower() in r for r in health["degraded_reasons"])
    assert "does not exist" in json.dumps(health["exchange_refusal"])


def test_a_refused_setting_is_an_error_but_does_not_stop_trading(engine: TradingEngine) -> None:
    with pytest.raises(GatewayError) as refused:
        engine.gw.update_leverage("BTC", 1000)  # above the coin's maximum
    assert "Invalid leverage value" in refused.value.message and refused.value.kind == "refused"
    assert engine.gw.refusal is None


def test_health_quotes_the_refusal_with_the_bots_secrets_masked() -> None:
    """/health quotes the exchange's refusal and the last error (the agent's alert quotes them in
    turn) through the same redaction as the bot's log lines: its key and token never leave it."""
    from bot.trading.jsonlog import JsonFormatter
    from bot.trading.status import RuntimeStatus

    key, token = "0x" + "5e" * 32, "control-token-value-123"
    status = RuntimeStatus(loop_seconds=1, candle_seconds=60)
    status.redact = JsonFormatter([key, token]).redact
    status.connected, status.market_data_wall = True, time.time()
    status.exchange_refusal = f"User or API Wallet 0x{'ab' * 20} does not exist. (echo {key})"
    status.last_error = f"iteration failed: bearer {token}"
    health = json.dumps(status.health())
    assert "User or API Wallet 0x" + "ab" * 20 + " does not exist." in health
    assert key not in health and key[2:] not in health and token not in health, health
