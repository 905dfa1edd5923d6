"""Routing tables: first match wins unless continue; globs, tags, severities; inventory conversion."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from agent.notify import MatchSpec, RoutedMessage, Router, RouteSpec, TargetSpec, specs_from_inventory

TARGETS = {n: TargetSpec(n, f"json://127.0.0.1:1/{n}") for n in ("slack", "pager", "mail", "audit")}
TARGETS["sms"] = TargetSpec("sms", "", optional=True)  # its env var is unset
ROUTES = [
    RouteSpec("audit", ("audit",), continue_=True),
    RouteSpec("critical", ("pager", "slack", "sms"), MatchSpec(severity=("critical",))),
    RouteSpec("staging", ("mail",), MatchSpec(host=("staging-*",))),
    RouteSpec("risk", ("slack", "mail"), MatchSpec(tags=("risk",), play=("bot-*",))),
    RouteSpec("default", ("slack",)),
]


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        (RoutedMessage("critical", "bot1", "bot-health", "alive"), [("audit", "audit"), ("critical", "pager"),
                                                                    ("critical", "slack")]),
        (RoutedMessage("warning", "staging-1", "bot-health", "mem"), [("audit", "audit"), ("staging", "mail")]),
        (RoutedMessage("warning", "bot1", "bot-risk", "pnl", ("risk",)), [("audit", "audit"), ("risk", "slack"),
                                                                          ("risk", "mail")]),
        (RoutedMessage("warning", "bot1", "other", "pnl", ("risk",)), [("audit", "audit"), ("default", "slack")]),
        (RoutedMessage("info", "bot1", "p", "c"), [("audit", "audit"), ("default", "slack")]),
    ],
)
def test_route_table(msg: RoutedMessage, expected: list[tuple[str, str]]) -> None:
    assert [(r.name, t) for r, t in Router(ROUTES, TARGETS).route(msg)] == expected


def test_named_route_and_unknown_route() -> None:
    router = Router(ROUTES, TARGETS)
    assert [t for _, t in router.named("critical")] == ["pager", "slack"]  # optional sms skipped
    with pytest.raises(KeyError, match="unknown route 'nope'"):
        router.named("nope")


def test_specs_from_inventory_reads_the_inventory_shape() -> None:
    notify = SimpleNamespace(
        targets={"slack": SimpleNamespace(url="{{ env.SLACK_WEBHOOK_URL }}", optional=False),
                 "sms": SimpleNamespace(url="{{ env.SMS }}", optional=True)},
        routes=[SimpleNamespace(name="crit", match=SimpleNamespace(severity=["CRITICAL"], tags=[], host=["bot1"],
                                                                    play=[], check=[]),
                                targets=["slack"], repeat=1800.0, send_resolved=False, continue_=True)],
    )
    targets, routes = specs_from_inventory(notify, {"slack": " json://127.0.0.1:9/ "})
    assert targets["slack"] == TargetSpec("slack", "json://127.0.0.1:9/")
    assert targets["sms"] == TargetSpec("sms", "", optional=True)
    assert routes == [RouteSpec("crit", ("slack",), MatchSpec(severity=("critical",), host=("bot1",)),
                                repeat=1800.0, send_resolved=False, continue_=True)]
    assert "json://" not in repr(targets["slack"])  # a URL is a secret
