"""The daily playbooks as an operator runs them: the real ``agent`` CLI, the shipped YAML.

1. Against a known history (bot database written with the bot's models, agent store with its
   incidents and remediations): ``--check`` previews and sends nothing; a real run delivers the
   report through apprise to a JsonReceiver with exactly the expected figures.
2. Against the running stack (supervisord, paper exchange, a trading bot): the review's report
   reaches the stack's inbox and agrees with the report computed from the bot's database.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.agent.reports.history import build_agent_db, build_bot_db
from tests.support.receivers import JsonReceiver
from tests.support.stack import running_stack, wait_until  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
UNTIL = "2024-03-15T16:00:00Z"
PLAYBOOKS = ("daily-premarket", "daily-review")

# What the operator reads, for the known day (tests/agent/reports/history.py has the arithmetic).
EXPECTED_LINES = (
    "- trades closed: 4 (opened: 6; wins 2, losses 1)",
    "- win rate: 50.0 %",
    "- realized P&L: -2.00 USD (net of fees)",
    "- total P&L (equity change): +18.00 USD (1000.00 -> 1018.00)",
    "- best trade: +4.75 USD (BTC long, #1)",
    "- worst trade: -10.25 USD (ETH short, #2)",
    "- max drawdown: 2.50 % (25.50 USD)",
    "- fees: 4.06 USD over 11 fill(s)",
    "Open positions: 2 (unrealized +1.25 USD)",
    "- uptime of the trading loop: 75.16 % (down 14310 s)",
    "- incidents: 3 (19800 s in total)",
    "- remediations run: 3",
)


@pytest.fixture
def operator_root(tmp_path: Path):
    """A checkout-like directory: settings, inventory (one json:// target), the daily playbooks."""
    root = tmp_path / "root"
    (root / "var").mkdir(parents=True)
    (root / "playbooks").mkdir()
    build_bot_db(root / "var" / "bot.db")
    build_agent_db(root / "var" / "agent.db")
    (root / "settings.yaml").write_text(yaml.safe_dump({
        "var_dir": "var", "bot": {"db": "var/bot.db"}, "agent": {"db": "var/agent.db"},
        "supervisor": {"socket": "var/s.sock", "config": "var/supervisord.conf", "logdir": "var/log"},
    }))
    for name in PLAYBOOKS:
        shutil.copy(REPO / "playbooks" / f"{name}.yaml", root / "playbooks" / f"{name}.yaml")
    (root / "templates").symlink_to(REPO / "templates")
    with JsonReceiver() as receiver:
        (root / "inventory.yaml").write_text(yaml.safe_dump({
            "version": 1, "settings": "settings.yaml", "hosts": {"local": {"vars": {}}},
            "groups": {"bots": {"hosts": ["local"]}},
            "notify": {"targets": {"hook": {"url": receiver.url}},
                       "routes": [{"name": "reports", "match": {"tags": ["report"]}, "targets": ["hook"]},
                                  {"name": "default", "targets": ["hook"]}]},
        }, sort_keys=False))
        yield root, receiver


def agent(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTWARDEN_")}
    return subprocess.run([str(BIN / "agent"), *args], cwd=root, capture_output=True, text=True, timeout=120,
                          env={**env, "COLUMNS": "200"})


def test_daily_playbooks_validate_and_preview_without_sending(operator_root) -> None:
    root, receiver = operator_root
    res = agent(root, "validate")
    assert res.returncode == 0, res.stdout + res.stderr
    for name in PLAYBOOKS:
        res = agent(root, "run-playbook", name, "--check", "-e", f"report_until={UNTIL}")
        assert res.returncode == 0, res.stdout + res.stderr
        assert "would send" in res.stdout and "4 trade(s), realized P&L -2.00, 3 incident(s)" in res.stdout
        assert "failed=0" in res.stdout
    assert receiver.messages == []


@pytest.mark.parametrize(("name", "title"), [
    ("daily-review", "Trading report day 2024-03-15 on local"),
    # 16 hours back from 16:00 is the same window: the same figures, another title
    ("daily-premarket", "Pre-market check on local: the last 16h"),
])
def test_a_real_run_delivers_the_report_with_the_exact_figures(operator_root, name, title) -> None:
    root, receiver = operator_root
    res = agent(root, "run-playbook", name, "-e", f"report_until={UNTIL}")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "changed: [local]" in res.stdout
    [message] = receiver.wait_for(1, timeout=15)
    assert message["title"] == title
    for line in EXPECTED_LINES:
        assert line in message["message"], f"{line!r} not in:\n{message['message']}"


def test_a_missing_bot_database_fails_the_run(operator_root) -> None:
    root, receiver = operator_root
    (root / "var" / "bot.db").unlink()
    res = agent(root, "run-playbook", "daily-review", "-e", f"report_until={UNTIL}")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "bot.db does not exist" in res.stdout
    assert receiver.messages == []


def test_the_review_on_the_running_stack_matches_the_bot_database(running_stack) -> None:
    from agent.reports import Period, compute_report, load_bot_frames

    stack = running_stack(playbooks={n: (REPO / "playbooks" / f"{n}.yaml").read_text() for n in PLAYBOOKS})
    stack.wait_running()
    bot_db = stack.settings.path(stack.settings.bot.db)
    wait_until(lambda: bot_db.exists() and not load_bot_frames(bot_db).equity.empty, 60,
               what="the bot's first equity snapshot")
    # A window that has ended: its trades and snapshots can no longer change.
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    wait_until(lambda: datetime.now(UTC) > until + timedelta(seconds=1), 5)

    preview = stack.agent("run-playbook", "daily-review", "--check", "-e", f"report_until={until.isoformat()}")
    assert preview.returncode == 0, preview.stdout + preview.stderr
    res = stack.agent("run-playbook", "daily-review", "-e", f"report_until={until.isoformat()}")
    assert res.returncode == 0, res.stdout + res.stderr
    message = wait_until(lambda: [m for m in stack.inbox() if m["title"].startswith("Trading report day")], 30,
                         what="the report in the inbox")
    assert len(message) == 1, "the --check run must not have sent anything"
    body = message[0]["message"]

    frames = load_bot_frames(bot_db)
    midnight = until.replace(hour=0, minute=0, second=0)
    report = compute_report(Period(midnight, until), trades=frames.trades, fills=frames.fills,
                            equity=frames.equity)
    assert f"- trades closed: {report.trades} (opened: {report.trades_opened};" in body, body
    assert f"- realized P&L: {report.realized_pnl:+.2f} USD" in body, body
    assert f"- max drawdown: {report.max_drawdown_pct:.2f} %" in body, body
    assert report.end_equity is not None and f"-> {report.end_equity:.2f})" in body, body
