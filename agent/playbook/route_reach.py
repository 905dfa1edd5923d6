"""Routes no alert can take: a ``match`` entry (a playbook, check, host or tag) that nothing in
the configuration has. Alertmanager cannot know which labels will come; the agent can: every
alert comes from a check of a loaded playbook on an inventory host, or from a ``notify`` step
with its own tags. A route matching on a name nothing has receives nothing, and the alerts it
was written for go to the next route that matches (usually the catch-all): a warning, at the
entry, with the nearest name there is.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from fnmatch import fnmatchcase
from typing import Any

from agent.modules.registry import Registry
from agent.playbook.diagnostics import Diagnostic, suggest, warning
from agent.playbook.inventory import Inventory
from agent.playbook.models import Playbook
from agent.playbook.yaml_source import SourceDocument


def _written(raw: Any, name: str) -> Iterator[Any]:
    """Every value written under the key ``name`` anywhere in a play's raw data (a check's or a
    step's ``tags``, a ``notify``/``report`` step's ``route``)."""
    if isinstance(raw, dict):
        for key, value in raw.items():
            if key == name:
                yield value
            yield from _written(value, name)
    elif isinstance(raw, list):
        for value in raw:
            yield from _written(value, name)


def _names(values: Iterable[Any]) -> set[str] | None:
    """The names written (a string or a list of strings); None when one is computed at run time."""
    out: set[str] = set()
    for written in values:
        items = [written] if isinstance(written, str) else written if isinstance(written, list) else [None]
        for item in items:
            if not isinstance(item, str) or "{{" in item or "{%" in item:
                return None
            out.add(item)
    return out


def unreached_route_entries(doc: SourceDocument, inventory: Inventory, plays: Sequence[Playbook],
                            raw_plays: Sequence[Any], registry: Registry) -> list[Diagnostic]:
    """A warning for each route ``match`` entry that no playbook, check, host, tag or severity has
    (``warning``, ``critical`` and ``unknown`` always come: the agent's own notices, thresholds,
    a check that cannot run; ``info`` only from a check or step that says so). A route
    some step or escalation names (``route: reports``, ``escalate: [{to: pager}]``) is reached by
    its name and left alone; the default ``tags`` and ``severity`` of every action module a play
    uses count as written."""
    tags = _names(_written(list(raw_plays), "tags"))
    used = [module for module in registry.actions.values() if next(_written(list(raw_plays), module.name), None)
            is not None]
    if tags is not None:
        for module in used:
            field = getattr(module, "Params", None) and module.Params.model_fields.get("tags")
            default = field.get_default(call_default_factory=True) if field else None
            tags.update(t for t in default or () if isinstance(t, str))
    # warning, critical: the agent's own notices and any threshold; unknown: any check that cannot run
    severities = _names(_written(list(raw_plays), "severity"))
    if severities is not None:
        severities |= {"warning", "critical", "unknown"}
        severities |= {str(check.severity) for play in plays for check in play.checks}
        for module in used:
            field = getattr(module, "Params", None) and module.Params.model_fields.get("severity")
            default = field.get_default(call_default_factory=True) if field else None
            if isinstance(default, str):
                severities.add(default)
    named = _names(_written(list(raw_plays), "route"))
    if named is not None:  # None: a step names its route at run time, any route may be reached by name
        named |= {step.to for route in inventory.notify.routes for step in route.escalate}
    universe: dict[str, tuple[str, set[str] | None]] = {
        "play": ("playbook", {play.name for play in plays}),
        "check": ("check", {check.name for play in plays for check in play.checks}),
        "host": ("host", set(inventory.hosts)),
        "tags": ("check or step with the tag", tags),
        "severity": ("check or step with the severity", severities),
    }
    out: list[Diagnostic] = []
    matches: list[tuple[tuple[Any, ...], Any, str, str]] = [
        (("notify", "routes", i), route.match, f"route {route.name!r}", "no alert can take this route for it")
        for i, route in enumerate(inventory.notify.routes) if named is not None and route.name not in named]
    # a maintenance window matches like a route: a misspelt tag silences nothing and the planned
    # work pages as if there were no window
    matches += [(("maintenance", i), window.match, f"maintenance window {window.name!r}",
                 "the window holds back no alert for it") for i, window in enumerate(inventory.maintenance)]
    for base, match, label, consequence in matches:
        for field, (what, names) in universe.items():
            if names is None:
                continue
            for j, pattern in enumerate(getattr(match, field)):
                hit = (pattern in names if field in ("tags", "severity") else
                       any(fnmatchcase(name, pattern) for name in names))
                if hit:
                    continue
                hint = suggest(pattern, names)
                out.append(warning(doc.diagnostic(
                    (*base, "match", field, j),
                    f"{label} matches {field} {pattern!r}, and no {what} has that name: {consequence}",
                    hint or (f"known: {', '.join(sorted(names))}" if names and len(names) <= 12 else
                             "fix the name, or remove the entry"))))
    return out
