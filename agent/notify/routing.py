"""Which routes and targets a message goes to.

Routes are tried in order; the first one whose ``match`` fits wins, unless it says
``continue: true``, in which case later routes are tried as well (Alertmanager's rule). An
empty or missing match field matches anything; ``host``/``play``/``check`` entries may be
shell-style globs (``bot-*``); ``tags`` match when any tag is shared.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any


@dataclass(frozen=True)
class TargetSpec:
    """A notification target: its inventory name and its rendered apprise URL (a secret)."""

    name: str
    url: str
    optional: bool = False
    """An optional target with an empty URL (its env var unset) is skipped, not an error."""

    def __repr__(self) -> str:  # never print the URL
        return f"TargetSpec(name={self.name!r}, optional={self.optional})"


@dataclass(frozen=True)
class MatchSpec:
    severity: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    host: tuple[str, ...] = ()
    play: tuple[str, ...] = ()
    check: tuple[str, ...] = ()

    def matches(self, msg: RoutedMessage) -> bool:
        if self.severity and msg.severity.lower() not in self.severity:
            return False
        if self.tags and not set(self.tags) & set(msg.tags):
            return False
        for patterns, value in ((self.host, msg.host), (self.play, msg.play), (self.check, msg.check)):
            if patterns and not any(fnmatchcase(value or "", p) for p in patterns):
                return False
        return True


@dataclass(frozen=True)
class RouteSpec:
    name: str
    targets: tuple[str, ...]
    match: MatchSpec = field(default_factory=MatchSpec)
    repeat: float | None = None
    """Seconds between reminders while an incident stays open and unacknowledged."""
    send_resolved: bool = True
    continue_: bool = False
    escalate: tuple[tuple[float, str], ...] = ()
    """(seconds open and unacknowledged, route name to tell next), in the inventory's order."""
    group_wait: float | None = None
    """Seconds a new problem taking this route waits for others of its host (``None``: the
    inventory's ``notify.group_wait``)."""


@dataclass(frozen=True)
class RoutedMessage:
    """What routing looks at."""

    severity: str
    host: str = ""
    play: str = ""
    check: str = ""
    tags: tuple[str, ...] = ()


class Router:
    """Routes messages to ``(route, target)`` pairs, in route order, without duplicates."""

    def __init__(self, routes: Sequence[RouteSpec], targets: Mapping[str, TargetSpec]) -> None:
        self.routes = tuple(routes)
        self.targets = dict(targets)
        self._by_name = {r.name: r for r in self.routes}

    def route(self, msg: RoutedMessage) -> list[tuple[RouteSpec, str]]:
        """Every (route, target name) the message goes to. Empty means nobody is told:
        a configuration without a catch-all route should be rejected at validation."""
        out: list[tuple[RouteSpec, str]] = []
        seen: set[str] = set()
        for route in self.routes:
            if not route.match.matches(msg):
                continue
            for target in route.targets:
                if target not in seen and self._deliverable(target):
                    seen.add(target)
                    out.append((route, target))
            if not route.continue_:
                break
        return out

    def named(self, route_name: str) -> list[tuple[RouteSpec, str]]:
        """The targets of one route by name (the ``notify`` action's ``route:``)."""
        route = self._by_name.get(route_name)
        if route is None:
            raise KeyError(f"unknown route {route_name!r}; known: {', '.join(self._by_name) or 'none'}")
        return [(route, t) for t in route.targets if self._deliverable(t)]

    def get(self, route_name: str | None) -> RouteSpec | None:
        return self._by_name.get(route_name) if route_name else None

    def _deliverable(self, target: str) -> bool:
        spec = self.targets.get(target)
        # An unknown target still gets a row: the outbox marks it dead and says why, loudly.
        return spec is None or bool(spec.url) or not spec.optional


def _strings(values: Iterable[Any] | None) -> tuple[str, ...]:
    return tuple(str(getattr(v, "value", v)) for v in (values or ()))


def specs_from_inventory(
    notify_settings: Any, rendered_urls: Mapping[str, str]
) -> tuple[dict[str, TargetSpec], list[RouteSpec]]:
    """Convert the inventory's ``notify:`` section (duck-typed) into targets and routes.

    Reads ``targets`` (name -> object with ``url``, ``optional``) and ``routes`` (objects with
    ``name``, ``match`` {severity, tags, host, play, check}, ``targets``, ``repeat``,
    ``send_resolved``, ``continue`` or ``continue_``). URLs come from ``rendered_urls`` (the
    inventory holds templates such as ``{{ env.SLACK_WEBHOOK_URL }}``).
    """
    targets: dict[str, TargetSpec] = {}
    for name, t in dict(getattr(notify_settings, "targets", None) or {}).items():
        url = rendered_urls.get(name, "") or ""
        targets[name] = TargetSpec(name=name, url=url.strip(), optional=bool(getattr(t, "optional", False)))
    routes: list[RouteSpec] = []
    for r in getattr(notify_settings, "routes", None) or ():
        m = getattr(r, "match", None)
        match = MatchSpec(
            severity=tuple(s.lower() for s in _strings(getattr(m, "severity", None))),
            tags=_strings(getattr(m, "tags", None)), host=_strings(getattr(m, "host", None)),
            play=_strings(getattr(m, "play", None)), check=_strings(getattr(m, "check", None)),
        )
        repeat = getattr(r, "repeat", None)
        cont = getattr(r, "continue_", None)
        routes.append(RouteSpec(
            name=r.name, targets=tuple(r.targets), match=match,
            repeat=float(repeat) if repeat else None,
            send_resolved=bool(getattr(r, "send_resolved", True)),
            continue_=bool(cont if cont is not None else getattr(r, "continue", False)),
            escalate=tuple((float(e.after), str(e.to)) for e in (getattr(r, "escalate", None) or ())),
            group_wait=None if getattr(r, "group_wait", None) is None else float(r.group_wait),
        ))
    return targets, routes
