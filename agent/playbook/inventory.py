"""Typed models of ``inventory.yaml``: hosts, groups, vars, notification targets and routes.

Host vars are merged, later wins, dicts merged deeply: the stack settings' template vars
(``bot.*``, ``exchange.*``, ``supervisor.*``, ``inbox.*``, ``agent.*``), then the global
``vars``, then each group's vars (groups in name order), then the host's own vars, then
``host`` (the host's name). Target URLs are templates rendered once at load with the
settings' vars and ``env``; the rendered URL is kept out of ``repr`` and of every message.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, time, timedelta
from fnmatch import fnmatchcase
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from agent.core.values import DAY, HOUR, MINUTE, Between, Interval, Timeout, Timezone
from agent.playbook.cron import Crontab, crontab_trigger
from agent.playbook.models import Schedule
from botwarden.errors import ConfigError


def _none_to_empty(value: Any) -> Any:
    # `local:` with nothing under it is a host with no vars, not an error.
    return {} if value is None else value


EscalationAfter = Annotated[float, Between(1.0, 7 * DAY)]
RepeatInterval = Annotated[float, Between(MINUTE, 7 * DAY, why="reminders more often than every minute are an alert storm")]
GroupWait = Annotated[float, Between(0.0, HOUR)]
GroupInterval = Annotated[float, Between(1.0, DAY)]
WindowLength = Annotated[float, Between(MINUTE, 7 * DAY)]
DependencyHold = Annotated[float, Between(1.0, DAY, why="above the longest heartbeat deadline, and a problem "
                                          "must be told within a day")]
RemediationWait = Annotated[float, Between(0.0, 10 * MINUTE, why="a first alert may not wait longer for the "
                                           "remediation's outcome")]


class _Model(BaseModel):
    # strict: YAML scalars are taken as written, never converted (see the agent.core.values docstring)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)


class Host(_Model):
    """A machine the agent watches (today: the box it runs on)."""

    vars: dict[str, Any] = Field(default_factory=dict, description="host vars; override group and global vars")


class Group(_Model):
    """A named set of hosts playbooks can target."""

    hosts: list[str] = Field(default_factory=list, description="member host names")
    vars: dict[str, Any] = Field(default_factory=dict, description="vars for every member")


class Target(_Model):
    """An apprise destination. ``url`` is a template: write secrets as ``{{ env.NAME }}``."""

    url: str = Field(description="apprise URL template, rendered at load (json://, mailto://, slack://)")
    optional: bool = Field(False, description="skip the target when its URL renders empty")
    _rendered_url: str | None = PrivateAttr(None)

    @property
    def rendered_url(self) -> str:
        """The URL to hand to apprise. Never log it: it may hold a token."""
        return self._rendered_url or ""

    @property
    def enabled(self) -> bool:
        """False for an optional target whose URL rendered empty."""
        return bool(self._rendered_url)

    @property
    def renders_empty(self) -> bool:
        """True when the URL was rendered at load and came out empty (an optional target that
        sends nothing); False when it has a URL or was not rendered (unknown, or an error)."""
        return self._rendered_url == ""


class RouteMatch(_Model):
    """Which alerts a route takes. An empty or absent list matches anything; host, play and
    check entries may be shell-style globs (``bot-*``)."""

    severity: list[Literal["info", "warning", "critical", "unknown"]] = Field(
        default_factory=list, description="alert severities (info, warning, critical, unknown)")
    tags: list[str] = Field(default_factory=list, description="matches when the check has any of these tags")
    host: list[str] = Field(default_factory=list, description="host names or globs")
    play: list[str] = Field(default_factory=list, description="playbook names or globs")
    check: list[str] = Field(default_factory=list, description="check names or globs")

    def matches(self, *, severity: str, host: str, play: str, check: str, tags: Sequence[str] = ()) -> bool:
        """True when every non-empty criterion holds for this alert."""
        return (
            (not self.severity or severity in self.severity)
            and (not self.tags or bool(set(self.tags) & set(tags)))
            and _glob_match(self.host, host)
            and _glob_match(self.play, play)
            and _glob_match(self.check, check)
        )

    @property
    def is_catch_all(self) -> bool:
        return not (self.severity or self.tags or self.host or self.play or self.check)


def _glob_match(patterns: list[str], value: str) -> bool:
    """Empty matches anything; entries may be shell-style globs (``bot-*``), as in agent.notify."""
    return not patterns or any(fnmatchcase(value, pattern) for pattern in patterns)


class Escalation(_Model):
    """One escalation step: if an incident is still unresolved and unacknowledged ``after``
    this long (counted from when it opened), notify the route ``to`` as well."""

    after: EscalationAfter = Field(description="how long the incident is open and unacknowledged first")
    to: str = Field(description="the route (by name) whose targets are told next")


class Route(_Model):
    """Where matching alerts go. Routes are tried in order; the first match wins unless
    ``continue`` is true."""

    name: str = Field(description="route name (the notify action may name it)")
    match: RouteMatch = Field(default_factory=RouteMatch, description="which alerts; absent = all")
    targets: list[str] = Field(min_length=1, description="names of notify targets")
    repeat: RepeatInterval | None = Field(
        None, description="re-send while unresolved; absent = never")
    send_resolved: bool = Field(True, description="also send when the problem is resolved")
    continue_: bool = Field(False, alias="continue", description="keep matching later routes")
    escalate: list[Escalation] = Field(default_factory=list, description="further routes told when an incident "
                                       "stays unresolved and unacknowledged (`agent ack` stops it)")
    group_wait: GroupWait | None = Field(None, description="how long a new problem taking this route waits "
                                        "for others of its host before the message goes (0 = at once); absent = "
                                        "notify.group_wait")


class AlertTemplates(_Model):
    """Message templates (files in the templates directory)."""

    alert: str = Field("alert.md.j2", description="a problem turned hard")
    resolve: str = Field("resolve.md.j2", description="a problem resolved")
    repeat: str = Field("alert.md.j2", description="a reminder while unresolved")
    grouped: str = Field("grouped.md.j2", description="several problems (or resolves) of one host in one message")
    flapping: str = Field("flapping.md.j2", description="a check started or stopped flapping")
    digest: str = Field("digest.md.j2", description="the scheduled digest of info-severity findings")
    update: str = Field("update.md.j2", description="what the agent did about a problem after its alert went "
                        "out (a restart refused by its cooldown, a hand-over)")


class NotifySettings(_Model):
    """Notification targets, routes and templates."""

    targets: dict[str, Target] = Field(default_factory=dict, description="apprise targets by name")
    routes: list[Route] = Field(default_factory=list, description="ordered routing rules")
    templates: AlertTemplates = Field(default_factory=AlertTemplates, description="message templates")
    group_wait: GroupWait = Field(5.0, description="problems of one host that turn hard within this long "
                                 "of the first are sent as one message (0 = at once)")
    group_interval: GroupInterval = Field(60.0, description="after a host's message, wait this long before "
                                             "sending an update about new problems of that host")
    inhibit_grace: GroupWait = Field(30.0, description="after a check recovers, the checks that depend_on it "
                                    "stay held back this long (a restarted bot's warm-up must not page); "
                                    "a dependent still failing after that is sent. Counted once per "
                                    "trouble of the parent: its OK time adds up across its recoveries, so "
                                    "a parent failing again and again does not hold it for as long as it "
                                    "stutters")
    dependency_hold: DependencyHold = Field(
        90.0, description="a check that depends_on others waits at most this long after it turned hard for "
                          "them to be seen healthy since its problem began (until then the parent may be the "
                          "cause: one fault, one message); keep it above the longest heartbeat deadline")
    remediation_wait: RemediationWait = Field(
        10.0, description="the first alert of a problem whose check names remediate: waits at most this "
                               "long for the remediation's outcome, so it says what the agent did (restarted, "
                               "refused, nothing); past it, it says the remediation is running and the resolve "
                               "says how it ended (0 = never wait)")
    digest: Schedule = Field(default_factory=lambda: Schedule(every=86400.0),
                             description="when the digest of info-severity findings is sent (default every 1d)")

    def routes_for(self, *, severity: str, host: str, play: str, check: str,
                   tags: Sequence[str] = ()) -> list[Route]:
        """The routes an alert takes: matches in order, stopping after one without ``continue``."""
        out: list[Route] = []
        for route in self.routes:
            if route.match.matches(severity=severity, host=host, play=play, check=check, tags=tags):
                out.append(route)
                if not route.continue_:
                    break
        return out


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class MaintenanceWindow(_Model):
    """A recurring time when matching alerts are recorded but not sent (planned work).

    Either ``cron`` + ``duration`` (starts at each cron time, lasts ``duration``), or
    ``weekdays`` + ``start`` + ``end`` (local times; an ``end`` before ``start`` runs past
    midnight). Both are read in ``timezone``. An alert still failing when the window ends
    is sent then.
    """

    name: str = Field(description="shown in `agent history` and in the audit trail")
    match: RouteMatch = Field(default_factory=RouteMatch, description="which alerts; absent = all")
    cron: Crontab | None = Field(None, description="5-field crontab expression of each start ('0 2 * * sun')")
    duration: WindowLength | None = Field(
        None, description="how long each cron-started window lasts")
    weekdays: list[Weekday] = Field(
        default_factory=list, description="days the window starts on (empty with start/end = every day)")
    start: str | None = Field(None, description="local start time HH:MM (with end)")
    end: str | None = Field(None, description="local end time HH:MM (with start)")
    timezone: Timezone = Field("UTC", description="IANA timezone the times are read in")

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str | None) -> str | None:
        if value is not None and not _HHMM.match(value):
            raise ValueError(f"{value!r} is not a time; write HH:MM such as 22:30")
        return value

    @model_validator(mode="after")
    def _one_form(self) -> MaintenanceWindow:
        cron_form = self.cron is not None or self.duration is not None
        range_form = self.start is not None or self.end is not None or bool(self.weekdays)
        if cron_form == range_form:
            raise ValueError("a maintenance window has either cron + duration, or weekdays/start/end")
        if cron_form and (self.cron is None or self.duration is None):
            raise ValueError("'cron' and 'duration' go together")
        if range_form and (self.start is None or self.end is None):
            raise ValueError("'start' and 'end' go together (HH:MM)")
        return self

    def active(self, now: datetime) -> bool:
        """Whether the window is open at ``now`` (an aware datetime)."""
        tz = ZoneInfo(self.timezone)
        if self.cron is not None and self.duration is not None:
            trigger = crontab_trigger(self.cron, tz)
            first = trigger.get_next_fire_time(None, (now - timedelta(seconds=self.duration)).astimezone(tz))
            return first is not None and first <= now < first + timedelta(seconds=self.duration)
        local = now.astimezone(tz)
        start, end = _parse_hhmm(self.start or "00:00"), _parse_hhmm(self.end or "00:00")
        days = set(self.weekdays) or set(_WEEKDAYS)
        today = _WEEKDAYS[local.weekday()]
        yesterday = _WEEKDAYS[(local.weekday() - 1) % 7]
        t = local.time()
        if start <= end:
            return today in days and start <= t < end
        return (today in days and t >= start) or (yesterday in days and t < end)


def _parse_hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


class Heartbeat(_Model):
    """A dead-man's switch: the agent POSTs to ``url`` every ``every`` while it is alive
    (healthchecks.io, a Gatus external endpoint...). When the pings stop, that service alerts."""

    url: str = Field(description="URL template; write secrets as {{ env.NAME }}; empty = disabled")
    every: Interval = Field(60.0, description="time between two pings")
    timeout: Timeout = Field(10.0, description="timeout of one ping")


class Inventory(_Model):
    """``inventory.yaml``: hosts, groups, vars and notifications."""

    version: Literal[1] = Field(description="inventory format version; only 1 exists")
    settings: str | None = Field(None, description="stack settings YAML (relative to this file); null = defaults")
    vars: dict[str, Any] = Field(default_factory=dict, description="vars for every host")
    hosts: dict[str, Annotated[Host, BeforeValidator(_none_to_empty)]] = Field(
        default_factory=dict, description="hosts by name")
    groups: dict[str, Annotated[Group, BeforeValidator(_none_to_empty)]] = Field(
        default_factory=dict, description="groups by name; 'all' is implicit")
    notify: NotifySettings = Field(default_factory=NotifySettings, description="targets and routes")
    maintenance: list[MaintenanceWindow] = Field(default_factory=list, description="recurring windows when "
                                                 "matching alerts are recorded, not sent")
    heartbeat: Heartbeat | None = Field(None, description="ping an external dead-man's switch while alive")


def default_inventory_data() -> dict[str, Any]:
    """The inventory used when ``inventory.yaml`` does not exist: the local box, the inbox."""
    return {
        "version": 1,
        "hosts": {"local": {}},
        "groups": {"bots": {"hosts": ["local"]}},
        "notify": {
            "targets": {"inbox": {"url": "json://{{ inbox.host }}:{{ inbox.port }}/"}},
            "routes": [{"name": "default", "targets": ["inbox"]}],
        },
    }


def resolve_hosts(inventory: Inventory, pattern: str) -> list[str]:
    """Host names for ``pattern``: ``all``, a group name or a host name.

    Raises ConfigError for an unknown name.
    """
    if pattern == "all":
        return list(inventory.hosts)
    if pattern in inventory.groups:
        return list(dict.fromkeys(inventory.groups[pattern].hosts))
    if pattern in inventory.hosts:
        return [pattern]
    known = sorted({"all", *inventory.groups, *inventory.hosts})
    raise ConfigError(f"no host or group named {pattern!r}", hint=f"known: {', '.join(known)}")


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``; nested mappings merge, everything else replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def host_vars(inventory: Inventory, host: str, settings_vars: Mapping[str, Any]) -> dict[str, Any]:
    """The merged vars of ``host`` (see the module docstring for the order)."""
    merged = deep_merge(settings_vars, inventory.vars)
    for name in sorted(inventory.groups):
        group = inventory.groups[name]
        if host in group.hosts:
            merged = deep_merge(merged, group.vars)
    merged = deep_merge(merged, inventory.hosts[host].vars)
    merged["host"] = host
    return merged
