"""A world for the web page's handler tests: a real configuration (inventory, playbooks,
templates), a real SQLite store seeded through its public API, and the real application served
by aiohttp's test server on loopback. Nothing else runs: supervisord, the bot and the exchange
are absent (the page shows them as down), which is the point for the handlers."""
from __future__ import annotations

import re
import textwrap
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from agent.core.states import State
from agent.store import Store
from tests.support.stack import REPO, free_port, running_stack  # noqa: F401 (the browser test's fixture)

OPERATOR_PW = "op-" + "x" * 29
VIEWER_PW = "view-" + "y" * 27
ENV = {"BOTWARDEN_WEB_OPERATOR_PASSWORD": OPERATOR_PW, "BOTWARDEN_WEB_VIEWER_PASSWORD": VIEWER_PW,
       "BOTWARDEN_WEB_OPERATOR_PASSWORD_ALICE": "alice-" + "z" * 26}

CHECKS = """
version: 1
name: health
hosts: bots
schedule: {every: 10s}
checks:
  - name: disk used
    command: {argv: ["echo", "50"]}
    value: "stdout | float"
    warning: "> 80"
    critical: "> 90"
"""

TOUCH = """
version: 1
name: touch
hosts: bots
confirm: "Touch the marker on {{ host }}?"
tasks:
  - name: touch the marker
    command: {argv: ["touch", "%(marker)s"], creates: "%(marker)s"}
"""


@dataclass
class WebWorld:
    root: Path
    inventory: Path
    store_url: str
    marker: Path
    incident_id: int

    def store(self) -> Store:
        return Store(self.store_url)


@pytest.fixture
def web_world(tmp_path: Path) -> Iterator[WebWorld]:
    root = tmp_path
    (root / "templates").symlink_to(REPO / "templates")
    pb = root / "playbooks"
    pb.mkdir()
    marker = root / "var" / "marker"
    (pb / "health.yaml").write_text(CHECKS)
    (pb / "touch.yaml").write_text(TOUCH % {"marker": marker})
    settings = {"var_dir": "var", "supervisor": {"socket": "var/s.sock", "config": "var/supervisord.conf",
                                                 "logdir": "var/log"},
                "exchange": {"port": free_port()}, "bot": {"port": free_port()}, "inbox": {"port": free_port()},
                "agent": {"metrics_port": 0}, "web": {"port": free_port(), "refresh_seconds": 0.2}}
    (root / "settings.yaml").write_text(yaml.safe_dump(settings))
    inventory = {"version": 1, "settings": "settings.yaml", "hosts": {"local": {"vars": {}}},
                 "groups": {"bots": {"hosts": ["local"]}},
                 "notify": {"targets": {"inbox": {"url": "json://127.0.0.1:9/"}},
                            "routes": [{"name": "default", "targets": ["inbox"]}]}}
    (root / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    url = f"sqlite:///{root / 'var' / 'agent.db'}"
    st = Store(url)
    st.migrate()
    now = datetime.now(UTC)
    for i in range(5):
        st.record_result(play="health", host="local", check="disk used", state=State.CRITICAL,
                         observed_at=now - timedelta(seconds=50 - 10 * i), value=91 + i)
    incident_id = st.open_incident(play="health", host="local", check="disk used", state=State.CRITICAL,
                                   severity="critical", opened_at=now - timedelta(seconds=40), summary="disk full")
    st.add_event("transition", "health/local/disk used", incident_id, "OK -> CRITICAL", {})
    st.close()
    yield WebWorld(root, root / "inventory.yaml", url, marker, incident_id)


def load_config(world: WebWorld) -> Any:
    import os

    from agent.cli.common import load

    old = os.getcwd()
    os.chdir(world.root)
    try:
        return load(world.inventory, None)
    finally:
        os.chdir(old)


@pytest.fixture
async def client(web_world: WebWorld) -> AsyncIterator[TestClient]:
    from agent.web import build_app, make_context

    config = load_config(web_world)
    ctx = make_context(config, store_url=web_world.store_url, env=ENV, templates_dir=web_world.root / "templates",
                       charts=False)
    async with TestClient(TestServer(build_app(ctx), host="127.0.0.1")) as c:
        yield c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


async def sign_in(client: TestClient, user: str, password: str) -> str:
    """Sign in through the form; returns the session's CSRF token (from the overview)."""
    page = await client.get("/login")
    token = csrf_of(await page.text())
    r = await client.post("/login", data={"csrf": token, "username": user, "password": password, "next": "/"},
                          allow_redirects=False)
    assert r.status == 303, await r.text()
    overview = await client.get("/")
    assert overview.status == 200
    return csrf_of(await overview.text())


def dedent(text: str) -> str:
    return textwrap.dedent(text)


def once(client: TestClient, path: str) -> str:
    """The one-time token an action form for ``path`` carries in the signed-in session of
    ``client`` (what the page puts in the form's ``once`` field)."""
    from agent.web.context import COOKIE, CTX

    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/")).get(COOKIE)
    session = client.server.app[CTX].sessions.get(cookie.value if cookie else None)
    assert session is not None, "sign in first"
    return session.action_token(path)
