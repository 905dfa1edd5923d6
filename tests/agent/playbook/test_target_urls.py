"""A target URL is judged at load exactly as the delivery will judge it: apprise's own parser and
plugin builder. A URL whose scheme apprise knows but which it refuses to build (``mailto://`` with
no sender) used to pass ``agent validate`` and fail at the first alert."""
from __future__ import annotations

from pathlib import Path

import apprise
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.modules.registry import Registry
from agent.notify.delivery import AppriseDelivery
from agent.notify.routing import Router, TargetSpec, specs_from_inventory
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


# A route whose targets all send nothing (issue 15, F9) ------------------------------------------

_PLAY = "version: 1\nname: p\nhosts: all\ntasks:\n  - notify: {route: r0, message: hi}\n"


def _routes_inventory(tmp_path: Path, targets: dict[str, bool], routes: list[tuple[str, list[str], bool, str]]) -> Path:
    """targets: name -> optional (URL from $URL_<NAME>); routes: (name, targets, continue, escalate to)."""
    lines = ["version: 1", "hosts:", "  local: {}", "notify:", "  targets:"]
    for name, optional in targets.items():
        url = f"{{{{ env.URL_{name.upper()} | default('') }}}}" if optional else f"{{{{ env.URL_{name.upper()} }}}}"
        lines.append(f"    {name}: {{url: \"{url}\", optional: {str(optional).lower()}}}")
    lines.append("  routes:")
    for i, (name, names, cont, to) in enumerate(routes):
        last = i == len(routes) - 1
        match = "" if last else f", match: {{tags: [{name}]}}"
        escalate = f", escalate: [{{after: 5m, to: {to}}}]" if to else ""
        lines.append(f"    - {{name: {name}, targets: [{', '.join(names)}], continue: {str(cont).lower()}"
                     f"{match}{escalate}}}")
    (tmp_path / "inventory.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "p.yaml").write_text(_PLAY, encoding="utf-8")
    return tmp_path / "inventory.yaml"


def test_a_route_whose_only_targets_are_unset_optional_ones_is_an_error_at_the_route(
        tmp_path: Path, registry: Registry) -> None:
    inventory = _routes_inventory(tmp_path, {"inbox": False, "slack": True, "email": True},
                                  [("r0", ["slack", "email"], False, ""), ("default", ["inbox"], False, "")])
    result = load_config(inventory, [tmp_path / "p.yaml"], registry, env={"URL_INBOX": "json://127.0.0.1:9/"})
    assert result.config is None
    [diag] = [d for d in result.diagnostics if "tells nobody" in d.message and d.file == str(inventory)]
    assert diag.line == 10, diag
    assert "$URL_EMAIL, $URL_SLACK not set" in diag.message and "would be lost" in diag.message
    assert "URL_EMAIL, URL_SLACK" in (diag.hint or "")
    # the same inventory with one of them set loads
    ok = load_config(inventory, [tmp_path / "p.yaml"], registry,
                     env={"URL_INBOX": "json://127.0.0.1:9/", "URL_SLACK": "json://127.0.0.1:8/"})
    assert ok.ok, ok.diagnostics


_NAMES = ("a", "b", "c")


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(optional=st.tuples(*[st.booleans()] * 3), set_=st.tuples(*[st.booleans()] * 3),
       routes=st.lists(st.tuples(st.sets(st.sampled_from(_NAMES), min_size=1), st.booleans(),
                                 st.one_of(st.none(), st.integers(0, 3))), min_size=1, max_size=4))
def test_every_route_of_a_configuration_that_loads_tells_someone(
        tmp_path: Path, registry: Registry, optional: tuple[bool, ...], set_: tuple[bool, ...],
        routes: list[tuple[set[str], bool, int | None]]) -> None:
    """Whatever targets are optional and whichever of their variables are set: when the
    configuration loads, every route an alert or an escalation can stop at has a target the
    router delivers to (the router is the notify layer's own)."""
    names = [f"r{i}" for i in range(len(routes))]
    written = [(names[i], sorted(t), cont and i < len(routes) - 1,
                names[to] if to is not None and to < len(routes) and to != i else "")
               for i, (t, cont, to) in enumerate(routes)]
    inventory = _routes_inventory(tmp_path, dict(zip(_NAMES, optional, strict=True)), written)
    env = {f"URL_{n.upper()}": f"json://127.0.0.1:{9000 + i}/" for i, n in enumerate(_NAMES)
           if set_[i] or not optional[i]}  # a required target unset is another error
    result = load_config(inventory, [tmp_path / "p.yaml"], registry, env=env)
    if result.config is None:
        return
    notify = result.config.inventory.notify
    targets, specs = specs_from_inventory(notify, {n: t.rendered_url for n, t in notify.targets.items()})
    router = Router(specs, targets)
    escalated = {to for _, _, _, to in written if to}
    for name, _, cont, _ in written:
        if not cont or name in escalated:
            assert router.named(name), (name, written, optional, set_)


def test_a_step_naming_a_route_that_tells_nobody_is_an_error_at_the_step(tmp_path: Path, registry: Registry) -> None:
    """A `continue: true` route no escalation names may send to nothing (its alerts go on); a
    notify step naming it would still tell nobody."""
    inventory = _routes_inventory(tmp_path, {"inbox": False, "slack": True},
                                  [("r0", ["slack"], True, ""), ("default", ["inbox"], False, "")])
    result = load_config(inventory, [tmp_path / "p.yaml"], registry, env={"URL_INBOX": "json://127.0.0.1:9/"})
    [diag] = result.diagnostics
    assert (diag.file, diag.line) == (str(tmp_path / "p.yaml"), 5) and "route 'r0' tells nobody" in diag.message
    ok = load_config(inventory, [tmp_path / "p.yaml"], registry,
                     env={"URL_INBOX": "json://127.0.0.1:9/", "URL_SLACK": "json://127.0.0.1:8/"})
    assert ok.ok, ok.diagnostics


@pytest.mark.parametrize(("address", "service"), [
    ("https://hooks.slack.com/services/T0123ABCD/B0456EFGH/abcdefghijklmnopqrstuvwx", "slack"),
    ("https://discord.com/api/webhooks/123456789/abcdefghijklmnop", "discord"),
])
def test_a_services_own_web_address_in_the_environment_says_to_write_the_apprise_url(
        tmp_path: Path, registry: Registry, address: str, service: str) -> None:
    """Slack hands out https://hooks.slack.com/...: set as the target's environment variable it was
    refused as "apprise does not know the URL's scheme", which apprise does (val5)."""
    result = load_config(_inventory(tmp_path, "{{ env.HOOK_URL }}"), [GOOD / "playbooks"], registry,
                         env={"HOOK_URL": address})
    [refused] = [d for d in result.diagnostics if "target 't'" in d.message]
    assert refused.message == f"target 't': the URL is {service}'s own web address, not an apprise URL"
    assert refused.hint is not None and f"apprise's {service}:// URL" in refused.hint
    assert address not in str(refused)
