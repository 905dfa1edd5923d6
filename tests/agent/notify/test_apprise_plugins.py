"""The one-plugin-at-a-time lookup agrees with apprise's own plugin manager, and stays light.

apprise's ``NotificationManager`` imports every plugin it ships; the comparisons below may use
it (this process can afford it). What the lookup must not do is load them itself: that runs in
a fresh interpreter, where nothing else has imported them first.
"""
from __future__ import annotations

import json
import subprocess
import sys

import apprise
import pytest
from apprise.manager_plugins import NotificationManager

from agent import apprise_plugins
from agent.notify import AppriseDelivery, TargetSpec
from tests.support.receivers import JsonReceiver

URLS = [
    "json://127.0.0.1:8025/?cto=5&rto=10",
    "jsons://user:secret@example.com/path",
    "slack://TokenA/TokenB/TokenC/#alerts",  # '#' starts a channel, not a fragment
    "mailtos://user:password@smtp.example.com?to=ops@example.com",
    "mailto://user:pw@gmail.com",
    "discord://1234/abcdefg",
    "ntfy://topic",
    "tgram://123456789:abcdefg_hijklmnop/-123/",
    "kodi://localhost",  # its scheme is computed at run time: found through apprise's full load
    "json://",  # a known scheme, an unusable URL
]


def test_the_source_index_maps_each_scheme_to_apprises_own_plugin() -> None:
    manager = NotificationManager()
    apprise_map = {s.lower(): manager[s] for s in manager.schemas()}
    index = apprise_plugins.scheme_index()

    assert len(index) > 0.9 * len(apprise_map), "the sources no longer declare most schemes literally"
    assert set(index) <= set(apprise_map), "the index accepts a scheme apprise does not know"
    for scheme, plugin in apprise_map.items():
        assert apprise_plugins.is_known_scheme(scheme), scheme
        assert apprise_plugins.plugin_class(scheme) is plugin, scheme


def test_the_filters_are_apprises() -> None:
    assert apprise_plugins.PLUGIN_CLASS_RE.pattern == NotificationManager.module_filter_re.pattern
    assert apprise_plugins.PLUGIN_PACKAGE == NotificationManager.module_name_prefix


@pytest.mark.parametrize("scheme", ["nosuchservice", "https", "", "json-x"])
def test_unknown_schemes_are_refused(scheme: str) -> None:
    assert not apprise_plugins.is_known_scheme(scheme)


@pytest.mark.parametrize("url", URLS)
def test_instantiate_builds_what_apprise_builds(url: str) -> None:
    asset = apprise.AppriseAsset()
    ours = apprise_plugins.instantiate(url, asset)
    theirs = apprise.Apprise.instantiate(url, asset=asset)

    assert (ours is None) == (theirs is None)
    if ours is not None:
        assert type(ours) is type(theirs)
        assert ours.url(privacy=False) == theirs.url(privacy=False)


@pytest.mark.parametrize(("url", "built"), [
    ("nosuchservice://x", None),  # apprise refuses it too (its url_to_dict parses nothing)
    ("https://hooks.slack.com/services/T000/B000/XXXX", "NotifySlack"),  # a "native" URL: no plugin has https://
])
def test_a_url_whose_scheme_is_no_plugins_falls_back_to_apprises_own_parsing(
        url: str, built: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    fell_back: list[object] = []
    original = apprise.Apprise.instantiate

    def instantiate(url: object, *args: object, **kwargs: object) -> object:
        fell_back.append(url)
        return original(url, *args, **kwargs)

    monkeypatch.setattr(apprise.Apprise, "instantiate", staticmethod(instantiate))
    scheme = apprise_plugins.url_scheme(url)

    assert scheme is not None and apprise_plugins.plugin_class(scheme) is None
    plugin = apprise_plugins.instantiate(url, apprise.AppriseAsset(), {"cto": 2.0})
    # built by apprise from its own parse of the URL (url_to_dict), the defaults added to that
    assert [(d["schema"], d["cto"]) for d in fell_back if isinstance(d, dict)] == ([("slack", 2.0)] if built else [])
    assert (type(plugin).__name__ if plugin is not None else None) == built


async def test_a_target_holding_two_urls_is_built_with_both_and_delivers_to_both() -> None:
    """A target's URL string may hold several URLs (apprise splits on spaces and commas)."""
    with JsonReceiver() as first, JsonReceiver() as second:
        delivery = AppriseDelivery({"both": TargetSpec("both", f"{first.url}, {second.url}")})
        await delivery.prepare()
        ap = delivery._apprise["both"]

        assert isinstance(ap, apprise.Apprise)
        assert [type(plugin).__name__ for plugin in ap] == ["NotifyJSON", "NotifyJSON"]
        result = await delivery.deliver("both", title="t", body="b", severity="critical")
        assert result.ok, result.error
        assert [m["message"] for m in first.messages] == ["b"]
        assert [m["message"] for m in second.messages] == ["b"]



async def test_each_url_of_a_target_gets_the_socket_timeouts_unless_it_sets_its_own() -> None:
    """The connect/read timeouts are added to every URL of a target, each with its own query."""
    with JsonReceiver() as first, JsonReceiver() as second:
        delivery = AppriseDelivery({"both": TargetSpec("both", f"{first.url}?cto=3, {second.url}")},
                                   connect_timeout=5, read_timeout=10)
        await delivery.prepare()
        ap = delivery._apprise["both"]
        assert isinstance(ap, apprise.Apprise)
        assert [(p.socket_connect_timeout, p.socket_read_timeout) for p in ap] == [(3.0, 10.0), (5.0, 10.0)]
        result = await delivery.deliver("both", title="t", body="b", severity="critical")
        assert result.ok, result.error
        assert len(first.messages) == len(second.messages) == 1

async def test_a_target_is_refused_whole_when_one_of_its_urls_is_refused() -> None:
    """What the inventory check mirrors (tests/agent/playbook: inventory_second_url_unknown_scheme.yaml)."""
    with JsonReceiver() as inbox:
        delivery = AppriseDelivery({"both": TargetSpec("both", f"{inbox.url} pagrduty://key@routing")})
        result = await delivery.deliver("both", title="t", body="b", severity="critical")

    assert not result.ok and result.permanent and "apprise rejects its URL" in (result.error or "")
    assert inbox.messages == []


def test_checking_and_building_load_only_the_plugins_in_use() -> None:
    probe = """
import json, sys
from agent import apprise_plugins as p
known = [p.is_known_scheme(s) for s in ("json", "mailtos", "slack", "JSON")]
unloaded = "apprise" not in sys.modules
import apprise
plugin = p.instantiate("json://127.0.0.1:9/", apprise.AppriseAsset())
print(json.dumps({"known": known, "apprise_unloaded_by_checks": unloaded, "built": type(plugin).__name__,
                  "plugins": sorted(m for m in sys.modules if m.startswith("apprise.plugins.")),
                  "heavy": [m for m in ("cryptography", "oauthlib", "smtplib") if m in sys.modules]}))
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])

    assert seen["known"] == [True, True, True, True]
    assert seen["apprise_unloaded_by_checks"], "checking schemes imported apprise"
    assert seen["built"] == "NotifyJSON"
    assert seen["plugins"] == ["apprise.plugins.base", "apprise.plugins.custom_json"]
    assert seen["heavy"] == []
