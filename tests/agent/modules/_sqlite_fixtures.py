"""Real SQLite databases for the backup, restore and db suites."""
from __future__ import annotations

import sqlite3
from pathlib import Path


def make_db(path: Path, rows: int = 50, wal: bool = True) -> Path:
    """A database like the bot's: WAL mode, a trades table with ``rows`` rows."""
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS trades (id INTEGER PRIMARY KEY, coin TEXT, pnl REAL, note TEXT)")
    conn.executemany("INSERT INTO trades (coin, pnl, note) VALUES (?, ?, ?)",
                     [("BTC", float(i), "x" * 200) for i in range(rows)])
    conn.commit()
    conn.close()
    return path


def count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT count(*) FROM trades").fetchone()[0]
    finally:
        conn.close()


def damage(path: Path) -> None:
    """Overwrite the middle of the file (past the header page) with garbage, as a disk fault would."""
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.seek(size // 2)
        fh.write(b"\xde\xad\xbe\xef" * 1024)
