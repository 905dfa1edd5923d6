"""The variables each message template is given: what ``agent validate`` checks the template
files against (an undefined name is a load error, not a plain-text fallback at 3 a.m.).

The notify layer renders with exactly these (``tests/agent/notify/test_message_vars.py`` holds
it to them). ``required`` names are always given; ``optional`` ones only sometimes, so a
template must guard them (``{% if dependents is defined %}``, ``| default(...)``).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MessageVars:
    required: frozenset[str]
    optional: frozenset[str] = frozenset()


TEXT_VARS = frozenset({"check", "host", "play", "state", "severity", "was"})
"""Variables that are text in every kind that gives them: ``check`` is the check's *name* here
(``{{ check.name }}``, right in a remediation step where ``check`` is a mapping, fails at every
message, which then goes out as a plain list of facts). Held by ``tests/agent/notify/test_message_vars.py``."""


_ALERT = MessageVars(frozenset({"state", "severity", "play", "check", "host", "since", "value", "error",
                                "summary", "incident_id", "repeat", "count", "tags"}),
                     frozenset({"dependents", "remediation", "resolved_after"}))
MESSAGE_VARS: dict[str, MessageVars] = {
    "alert": _ALERT,
    "repeat": _ALERT,
    "resolve": MessageVars(frozenset({"play", "check", "host", "was", "since", "resolved_at", "duration", "value",
                                      "summary", "incident_id", "remediation"})),
    "grouped": MessageVars(frozenset({"host", "resolved", "items", "count", "still"})),
    "flapping": MessageVars(frozenset({"started", "check", "host", "play", "percent", "state", "incident_id",
                                       "at"})),
    "digest": MessageVars(frozenset({"items", "since"})),
    "update": MessageVars(_ALERT.required | {"outcomes"}),
    "notice": MessageVars(frozenset({"title", "body", "severity", "host", "tags"})),
}
"""Template kind (``notify.templates`` of the inventory, and ``notice``) -> its variables."""
