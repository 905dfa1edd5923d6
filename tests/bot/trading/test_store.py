"""The SQLite store: idempotency lookups, halt history, daily equity base (the halts in force are
in the halt file: tests/bot/trading/test_halts.py)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.trading.models import SchemaInfo
from bot.trading.store import Store, utc_day
from botwarden.errors import ConfigError


def test_orders_are_found_by_cloid_and_live_status(tmp_path: Path) -> None:
    s = Store(tmp_path / "bot.db")
    rec = s.add_order(cloid="0x" + "a" * 32, coin="BTC", is_buy=True, size=0.1, limit_px=1.0, trigger_px=None,
                      reduce_only=False, intent="open_long", status="pending")
    assert s.order_by_cloid("0x" + "a" * 32).id == rec.id
    s.update_order(rec.id, status="filled", oid=7)
    assert s.live_orders() == [] and s.order_by_oid(7).status == "filled"


def test_halt_rows_are_history_taken_and_ended(tmp_path: Path) -> None:
    s = Store(tmp_path / "bot.db")
    s.add_halt("control", "operator")
    s.add_halt("daily_loss", "loss")
    assert s.clear_halts("test") == 2 and s.clear_halts("test") == 0


def test_day_start_equity_is_the_first_snapshot_of_the_day(tmp_path: Path) -> None:
    s = Store(tmp_path / "bot.db")
    now = datetime.now(UTC)
    s.snapshot_equity(1000.0, now - timedelta(days=1))
    s.snapshot_equity(900.0, now)
    s.snapshot_equity(800.0, now + timedelta(seconds=1))
    assert s.day_start_equity(utc_day(now)) == 900.0


def test_fills_are_deduplicated_by_trade_id(tmp_path: Path) -> None:
    s = Store(tmp_path / "bot.db")
    fill = {"tid": 1, "oid": 2, "cloid": None, "coin": "BTC", "is_buy": True, "px": 1.0, "size": 1.0, "fee": 0.0,
            "closed_pnl": 0.0, "time_ms": 5}
    assert len(s.add_fills([fill])) == 1
    assert s.add_fills([fill]) == []


def test_foreign_schema_version_is_refused(tmp_path: Path) -> None:
    s = Store(tmp_path / "bot.db")
    with s.session() as sess, sess.begin():
        sess.get(SchemaInfo, 1).version = 999
    s.close()
    with pytest.raises(ConfigError, match="schema version 999"):
        Store(tmp_path / "bot.db")
