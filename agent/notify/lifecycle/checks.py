"""What the alert lifecycle needs to know about the configured checks, and nothing more.

The engine hands in a callable returning the current bound checks by key (it changes on a
reload); these Protocols are the part of a bound check the lifecycle reads: its tags (routing,
silences, maintenance), its ``depends_on`` (inhibition, the dependency hold), its
``remediate`` (the wait for a remediation's outcome), the ``window`` its module looks back over
when it has one, and the names of its play's checks.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from agent.notify.routing import RoutedMessage
from agent.store import IncidentRecord


class CheckSpec(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def tags(self) -> Sequence[str]: ...
    @property
    def depends_on(self) -> Sequence[str]: ...
    @property
    def remediate(self) -> Sequence[str]: ...


class PlaySpec(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def checks(self) -> Sequence[CheckSpec]: ...


class WatchedCheck(Protocol):
    """One check of one play on one host (the engine's ``BoundCheck``)."""

    @property
    def play(self) -> PlaySpec: ...
    @property
    def check(self) -> CheckSpec: ...
    @property
    def params(self) -> object:
        """The module's parameters; a ``window`` among them (seconds) is how far back it reads."""


def parent_key(bc: WatchedCheck, parent: str, host: str) -> str:
    """The incident key of a ``depends_on`` entry: a check of ``bc``'s play, or PLAYBOOK/CHECK."""
    local = {c.name for c in bc.play.checks or ()}
    if parent in local or "/" not in parent:
        return f"{bc.play.name}/{host}/{parent}"
    play, _, check = parent.partition("/")
    return f"{play}/{host}/{check}"


class CheckCatalog:
    """Reads the current checks (``checks()``, called on every use: a reload replaces them)."""

    def __init__(self, checks: Callable[[], Mapping[str, WatchedCheck]]) -> None:
        self._checks = checks

    def get(self, key: str) -> WatchedCheck | None:
        return self._checks().get(key)

    def tags(self, key: str) -> tuple[str, ...]:
        """The tags of the check behind incident key ``key`` (none when it is gone)."""
        bc = self.get(key)
        return tuple(bc.check.tags or ()) if bc is not None else ()

    def routed(self, inc: IncidentRecord) -> RoutedMessage:
        """What the router matches an incident's messages on."""
        return RoutedMessage(inc.severity, inc.host, inc.play, inc.check, self.tags(inc.key))

    def cooldown(self, key: str) -> float:
        """The longest ``cooldown`` of the remediations the check behind ``key`` names (0: none)."""
        bc = self.get(key)
        if bc is None or not bc.check.remediate:
            return 0.0
        remediations = getattr(bc.play, "remediations", None) or {}
        return max((float(getattr(remediations.get(n), "cooldown", None) or 0.0) for n in bc.check.remediate),
                   default=0.0)

    def parents(self, key: str, host: str) -> list[tuple[str, str]]:
        """``(depends_on entry, incident key of that parent)`` for the check behind ``key``."""
        bc = self.get(key)
        if bc is None:
            return []
        return [(parent, parent_key(bc, parent, host)) for parent in bc.check.depends_on or ()]

    def ancestors(self, key: str, host: str) -> list[tuple[str, str]]:
        """``(how it is reached, incident key)`` of the parents' parents of ``key``'s check, through
        the whole chain (``bot process (through bot health endpoint)``), nearest first; the
        direct parents are :meth:`parents`. A chain folds whole: the root's alert lists them all
        (:meth:`dependents`)."""
        out: list[tuple[str, str]] = []
        seen = {key}
        frontier = [(name, pkey) for name, pkey in self.parents(key, host)]
        seen.update(pkey for _, pkey in frontier)
        while frontier:
            via, parent = frontier.pop(0)
            for name, pkey in self.parents(parent, host):
                if pkey in seen:
                    continue
                seen.add(pkey)
                out.append((f"{name} (through {via})", pkey))
                frontier.append((name, pkey))
        return out

    def remediations(self, key: str) -> list[str]:
        """The ``remediate:`` entries of the check behind ``key`` (none when it is gone)."""
        bc = self.get(key)
        return list(bc.check.remediate or ()) if bc is not None else []

    def window(self, key: str) -> float:
        """How far back (seconds) the check behind ``key`` reads: its module's ``window``
        parameter, 0 when it has none (it reads the moment of its probe)."""
        bc = self.get(key)
        window = getattr(bc.params, "window", None) if bc is not None else None
        return float(window) if isinstance(window, (int, float)) and not isinstance(window, bool) else 0.0

    def dependents(self, inc: IncidentRecord, open_incidents: Sequence[IncidentRecord]) -> list[dict[str, object]]:
        """The checks (this play and others, same host) that depend on ``inc``'s check, through
        the whole chain (a dependent's dependents too: a chain folds whole), and whether each is
        failing now; listed in the parent's alert."""
        out: list[dict[str, object]] = []
        checks = self._checks()
        if inc.key not in checks:
            return out
        open_keys = {i.key: i for i in open_incidents}
        seen, frontier = {inc.key}, [inc.key]
        while frontier:
            parent = frontier.pop(0)
            for key, child_bc in checks.items():
                if key in seen or not key.startswith(f"{child_bc.play.name}/{inc.host}/"):
                    continue
                if any(parent_key(child_bc, p, inc.host) == parent for p in child_bc.check.depends_on or ()):
                    seen.add(key)
                    frontier.append(key)
                    child = open_keys.get(key)
                    name = child_bc.check.name if child_bc.play.name == inc.play else \
                        f"{child_bc.play.name}/{child_bc.check.name}"
                    out.append({"check": name, "failing": child is not None,
                                "state": child.state.name if child else "OK"})
        return out
