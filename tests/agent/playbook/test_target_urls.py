"""A target URL is judged at load exactly as the delivery will judge it: apprise's own parser and
plugin builder. A URL whose scheme apprise knows but which it refuses to build (``mailto://`` with
no sender) used to pass ``agent validate`` and fail at the first alert."""
from __future__ import annotations

from pathlib import Path

import apprise
import pytest

from agent.modules.registry import Registry
from agent.notify.delivery import AppriseDelivery
from agent.notify.routing import TargetSpec
from agent.playbook import load_config
from agent.playbook.literal_secrets import SECRET_HINT
from tests.agent.playbook.conftest import GOOD

URLS = [
    "mailto://127.0.0.1:2525",
    "mailto://127.0.0.1:2525?to=ops@example.com",
    "mailto://127.0.0.1:2525?from=bot@example.com&to=ops@example.com&mode=insecure",
    "mailto://localhost",
    "mailto://foo",
    "mailto://a@example.com?mode=bogus",
    "mailtos://user@smtp.example.com?to=ops@example.com",
    "slack://abc",
    "slack://T1A2B3C4D/B5E6F7G8H/#alerts",
    "json://127.0.0.1:8025/",
    "json://127.0.0.1:8025/ mailto://127.0.0.1:2525",
    "jsons://127.0.0.1:8443/path?timeout=3",
    "ntfy://127.0.0.1/topic",
    "pover://",
]


def _inventory(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        "version: 1\nhosts:\n  local: {}\nnotify:\n  targets:\n"
        f"    t: {{url: \"{url}\"}}\n"
        "  routes:\n    - name: default\n      targets: [t]\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("url", URLS)
def test_load_accepts_a_target_url_exactly_when_apprise_does(tmp_path: Path, registry: Registry, url: str) -> None:
    result = load_config(_inventory(tmp_path, url), [GOOD / "playbooks"], registry, env={})
    refused = [d for d in result.diagnostics if "target 't'" in d.message and d.hint != SECRET_HINT]
    assert len(refused) <= 1, refused
    assert (not refused) == all(apprise.Apprise().add(one) for one in url.split()), refused


async def test_a_url_refused_at_load_is_the_one_the_delivery_refuses() -> None:
    url = "mailto://127.0.0.1:2525?to=ops@example.com"
    delivery = AppriseDelivery({"mail": TargetSpec("mail", url)})
    result = await delivery.deliver("mail", title="t", body="b")
    assert not result.ok and "apprise rejects its URL" in (result.error or ""), result


@pytest.mark.parametrize(("url", "refused"), [("json://127.0.0.1:99999/", True), ("json://[::1]:70000/", True),
                                              ("json://127.0.0.1:65535/", False),
                                              ("tgram://123456789:ABCdefGhIJKlmnOPQRstuVWxyz/12345", False)])
def test_a_port_out_of_range_is_refused_though_apprise_takes_it(tmp_path: Path, registry: Registry, url: str,
                                                                refused: bool) -> None:
    """apprise builds json://host:99999/ and every delivery to it then fails: a lost alert. A
    Telegram token's colon is not a port. (A token written literally is another diagnostic,
    with the secret hint: tests/agent/playbook/test_literal_secrets.py.)"""
    result = load_config(_inventory(tmp_path, url), [GOOD / "playbooks"], registry, env={})
    said = [d for d in result.diagnostics if "target 't'" in d.message and d.hint != SECRET_HINT]
    assert bool(said) == refused, said
    if refused:
        assert "out of range (1-65535)" in said[0].message
