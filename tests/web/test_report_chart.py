"""The daily report's chart: one figure (agent/reports/charts.py), a PNG attached through apprise
to email targets (a real SMTP server on loopback) and not to others, and an SVG on the page.
The shipped daily-review playbook, run by the real ``agent`` CLI on a known history."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agent.reports.charts import ChartData, ChartError, render_in_child
from tests.agent.reports.history import build_agent_db, build_bot_db
from tests.support.receivers import JsonReceiver, SmtpReceiver

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
UNTIL = "2024-03-15T16:00:00Z"


def test_the_daily_review_mails_its_chart_as_a_png(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "var").mkdir(parents=True)
    (root / "playbooks").mkdir()
    build_bot_db(root / "var" / "bot.db")
    build_agent_db(root / "var" / "agent.db")
    (root / "settings.yaml").write_text(yaml.safe_dump({
        "var_dir": "var", "bot": {"db": "var/bot.db"}, "agent": {"db": "var/agent.db"},
        "supervisor": {"socket": "var/s.sock", "config": "var/supervisord.conf", "logdir": "var/log"}}))
    shutil.copy(REPO / "playbooks" / "daily-review.yaml", root / "playbooks" / "daily-review.yaml")
    (root / "templates").symlink_to(REPO / "templates")
    with JsonReceiver() as hook, SmtpReceiver() as smtp:
        (root / "inventory.yaml").write_text(yaml.safe_dump({
            "version": 1, "settings": "settings.yaml", "hosts": {"local": {"vars": {}}},
            "groups": {"bots": {"hosts": ["local"]}},
            "notify": {"targets": {"hook": {"url": hook.url}, "email": {"url": smtp.url}},
                       "routes": [{"name": "reports", "match": {"tags": ["report"]}, "targets": ["hook", "email"]},
                                  {"name": "default", "targets": ["hook"]}]}}, sort_keys=False))
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOTWARDEN_")}
        res = subprocess.run([str(BIN / "agent"), "run-playbook", "daily-review", "-e", f"report_until={UNTIL}"],
                             cwd=root, capture_output=True, text=True, timeout=180, env={**env, "COLUMNS": "200"})
        assert res.returncode == 0, res.stdout + res.stderr
        assert "chart attached for email" in res.stdout
        [mail] = smtp.wait_for(1, timeout=30)
        [message] = hook.wait_for(1, timeout=30)
    pngs = [p for p in mail.message.walk() if p.get_content_type() == "image/png"]
    assert len(pngs) == 1, [p.get_content_type() for p in mail.message.walk()]
    data = pngs[0].get_content()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000
    assert "realized P&L" in mail.text()
    assert not message.get("attachments")  # the JSON hook gets the text only
    [written] = (root / "var" / "reports").glob("*.png")
    assert written.read_bytes() == data


def test_the_chart_is_drawn_in_a_child_as_svg_and_png() -> None:
    data = ChartData(title="t", equity=[("2024-03-15T00:00:00+00:00", 1000.0), ("2024-03-15T01:00:00+00:00", 990.0)],
                     day_start=1000.0, limit_pct=5.0, trades=[("#1 BTC", 4.75), ("#2 ETH", -10.25)])
    svg = render_in_child(data, "svg")
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg and b"daily loss limit" in svg
    assert render_in_child(data, "png").startswith(b"\x89PNG")
    proc = subprocess.run([sys.executable, "-m", "agent.reports.charts", "png"], input=b"{not json", timeout=60,
                          capture_output=True, check=False)
    assert proc.returncode == 2 and b"bad chart data" in proc.stderr and not proc.stdout
    with pytest.raises(ChartError, match="took longer"):
        render_in_child(data, "png", timeout=0.001)


def test_the_resident_agent_never_imports_matplotlib() -> None:
    """Importing everything the agent runs (engine, modules, the report action) loads no plotting."""
    code = ("import sys; import agent.engine.agent, agent.modules.registry, agent.modules.actions.report; "
            "agent.modules.registry.default_registry(); "
            "print(sorted(m for m in sys.modules if m.startswith(('matplotlib', 'agent.web'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
