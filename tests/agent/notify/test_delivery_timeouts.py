"""apprise's socket timeouts reach every target without changing what its URL means.

The delivery gives each plugin apprise's ``cto``/``rto`` (connect, read) when its URL does not
set them. They used to be appended to the URL text, after a Slack ``#channel`` (which apprise
reads as part of the path, not as a fragment): the channel was lost and ``rto`` was
``10#alerts``, an invalid value apprise replaced by its default. The property below compares,
for many URL shapes, the plugin the delivery builds with the one apprise builds from the URL
alone: the same service, channels, recipients, path and options; only the timeouts differ.
"""
from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import apprise
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.notify import AppriseDelivery, TargetSpec
from tests.support.receivers import JsonReceiver

URLS = [
    "slack://TokenA/TokenB/TokenC/#alerts",
    "slack://TokenA/TokenB/TokenC/#alerts/#ops",
    "slack://TokenA/TokenB/TokenC/#alerts?footer=no",
    "slack://TokenA/TokenB/TokenC/#alerts/?footer=no&image=no",
    "slack://TokenA/TokenB/TokenC/#alerts?rto=7",
    "slack://TokenA/TokenB/TokenC/@someone",
    "slack://TokenA/TokenB/TokenC",
    "slack://xoxb-1234-1234-4ddbc191d40ee098cbaae6f3523ada2d/#general",
    "https://hooks.slack.com/services/T000/B000/XXXX",
    "mailto://user:pw@gmail.com",
    "mailtos://user:password@smtp.example.com?to=ops@example.com",
    "mailtos://user:password@smtp.example.com?to=ops@example.com&cc=boss@example.com&from=bot@example.com",
    "mailtos://user:password@smtp.example.com/ops@example.com/?cto=2",
    "json://127.0.0.1:8025/",
    "json://127.0.0.1:8025/path/to/hook",
    "json://127.0.0.1:8025/path?method=PUT",
    "json://127.0.0.1:8025/path/?-X-Token=abc&cto=3",
    "json://127.0.0.1:8025/?cto=1&rto=2",
    "jsons://user:secret@example.com/path",
    "discord://1234/abcdefg",
    "ntfy://topic",
    "tgram://123456789:abcdefg_hijklmnop/-123/",
]


def _identity(plugin: object) -> tuple[str, str, str, list[tuple[str, str]]]:
    """What a plugin sends to: its canonical URL (apprise's ``url()``) without the timeouts."""
    parts = urlsplit(plugin.url(privacy=False))  # type: ignore[attr-defined]
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("cto", "rto"))
    return parts.scheme, parts.netloc, parts.path, query


def _own(url: str, name: str) -> float | None:
    """The ``cto``/``rto`` the URL sets itself (after its last '?')."""
    _, _, query = url.rpartition("?")
    value = dict(parse_qsl(query)).get(name) if "?" in url else None
    return float(value) if value is not None else None


async def _built(url: str, **timeouts: float) -> list[object]:
    delivery = AppriseDelivery({"t": TargetSpec("t", url)}, **timeouts)
    await delivery.prepare()
    ap = delivery._apprise["t"]
    assert isinstance(ap, apprise.Apprise), f"{url}: not built"
    return list(ap)


def _assert_same_target(url: str, plugins: list[object], connect: float, read: float) -> None:
    theirs = apprise.Apprise.instantiate(url)
    assert theirs is not None, url
    [ours] = plugins
    assert type(ours) is type(theirs), url
    assert _identity(ours) == _identity(theirs), url
    for attr in ("channels", "targets", "emails", "cc", "bcc", "from_addr"):
        assert getattr(ours, attr, None) == getattr(theirs, attr, None), f"{url}: {attr}"
    assert ours.socket_connect_timeout == (_own(url, "cto") or connect), url  # type: ignore[attr-defined]
    assert ours.socket_read_timeout == (_own(url, "rto") or read), url  # type: ignore[attr-defined]


@pytest.mark.parametrize("url", URLS)
async def test_timeouts_are_added_without_changing_the_target(url: str) -> None:
    _assert_same_target(url, await _built(url, timeout=20.0, connect_timeout=5.0), 5.0, 15.0)


_WORD = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)
_QUERY = st.lists(st.tuples(st.sampled_from(["footer", "image", "cto", "rto", "format", "to", "cc"]),
                            st.sampled_from(["no", "yes", "3", "7.5", "ops@example.com"])),
                  max_size=3, unique_by=lambda kv: kv[0])


@st.composite
def apprise_urls(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["slack", "json", "mailtos"]))
    query = [(k, v) for k, v in draw(_QUERY)
             if (k in ("cto", "rto")) == (v in ("3", "7.5")) and (k in ("to", "cc")) == ("@" in v)]
    if kind == "slack":
        query = [(k, v) for k, v in query if k not in ("to", "cc", "format")]
        path = "/".join(draw(st.lists(st.builds(lambda w, p: p + w, _WORD, st.sampled_from(["#", "@"])),
                                      min_size=0, max_size=3)))
        base = f"slack://TokenA/TokenB/TokenC/{path}"
    elif kind == "json":
        query = [(k, v) for k, v in query if k not in ("to", "cc", "footer", "image")]
        base = f"json://127.0.0.1:8025/{'/'.join(draw(st.lists(_WORD, max_size=3)))}"
    else:
        query = [(k, v) for k, v in query if k not in ("footer", "image", "format")]
        base = "mailtos://user:password@smtp.example.com" + draw(st.sampled_from(["", "/", "/ops@example.com"]))
    if draw(st.booleans()) and query:
        base += "/" if not base.endswith("/") and kind != "mailtos" else ""
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")


@settings(max_examples=60, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(url=apprise_urls(), connect=st.sampled_from([0.5, 2.0, 5.0]), budget=st.sampled_from([6.0, 20.0, 45.0]))
async def test_any_url_shape_keeps_its_target_and_gets_the_budgets_timeouts(
        url: str, connect: float, budget: float) -> None:
    _assert_same_target(url, await _built(url, timeout=budget, connect_timeout=connect), connect, budget - connect)


@pytest.mark.parametrize(("budget", "connect"), [(20.0, 5.0), (6.0, 1.0), (45.0, 5.0), (1.5, 0.25)])
async def test_socket_timeouts_fill_the_delivery_budget(budget: float, connect: float) -> None:
    """apprise never gives up on a receiver before the delivery timeout: a receiver that takes
    longer than apprise's read timeout but answers within the budget would have the message,
    be counted failed, and get it again from the retry."""
    [plugin] = await _built("json://127.0.0.1:8025/", timeout=budget, connect_timeout=connect)
    assert plugin.socket_connect_timeout + plugin.socket_read_timeout == budget  # type: ignore[attr-defined]
    assert AppriseDelivery({}).read_timeout + AppriseDelivery({}).connect_timeout == AppriseDelivery({}).timeout


@pytest.mark.parametrize("timeouts", [{"timeout": 5.0, "connect_timeout": 5.0},
                                      {"timeout": 5.0, "connect_timeout": 1.0, "read_timeout": 10.0},
                                      {"timeout": 5.0, "connect_timeout": 0.0}])
def test_socket_timeouts_that_do_not_fit_the_budget_are_refused(timeouts: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="fit the delivery timeout"):
        AppriseDelivery({}, **timeouts)


async def test_a_receiver_slower_than_the_old_read_timeout_gets_the_message_once() -> None:
    """Scaled down: budget 1.5 s, connect 0.25 s; the receiver answers after 1.0 s (longer than
    half the budget, which was the ratio of the old fixed 10 s read timeout to the 20 s budget)."""
    with JsonReceiver() as receiver:
        receiver.delay = 1.0
        delivery = AppriseDelivery({"t": TargetSpec("t", receiver.url)}, timeout=1.5, connect_timeout=0.25)
        result = await delivery.deliver("t", title="t", body="b", severity="critical")
        assert result.ok, result.error
        assert len(receiver.messages) == 1
