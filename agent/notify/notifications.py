"""The engine's side of notifications: render, route, and enqueue in the caller's transaction.

Nothing here sends anything: rows go into the outbox (inside the engine's store
transaction, so a transition and its messages commit together) and :class:`Outbox` delivers
them. Every title and body is redacted before it is stored. Dedup keys make each message
idempotent: replaying a transition never queues a second alert.
"""
from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.core.causes import failure_cause, headline
from agent.core.redaction import Redactor, url_secrets
from agent.core.states import State
from agent.core.values import format_duration
from agent.notify.routing import RoutedMessage, Router, RouteSpec, TargetSpec, specs_from_inventory
from agent.rendering import SandboxedTemplates, TemplateRenderer, render_or_fallback
from agent.store import IncidentRecord, Store, StoreTransaction
from agent.store._operations import Operations

DEFAULT_TEMPLATES = {"alert": "alert.md.j2", "resolve": "resolve.md.j2", "repeat": "alert.md.j2",
                     "notice": "notify.md.j2", "grouped": "grouped.md.j2", "flapping": "flapping.md.j2",
                     "digest": "digest.md.j2", "update": "update.md.j2"}


def utc_now() -> datetime:
    return datetime.now(UTC)


CONFIG_REJECTED = "config-rejected"
"""Dedup of the messages that say the configuration on disk does not load (see
:meth:`Notifications.config_loaded`)."""

@dataclass(frozen=True)
class AlertInfo:
    """What the engine knows when a check turns hard-bad."""

    play: str
    host: str
    check: str
    state: State
    severity: str
    """Routing severity: info | warning | critical | unknown."""
    since: datetime
    value: str | None = None
    error: str | None = None
    summary: str = ""
    tags: tuple[str, ...] = ()
    incident_id: int | None = None

    @classmethod
    def from_incident(cls, incident: IncidentRecord) -> AlertInfo:
        """What an open incident says (its current state, opened at, summary)."""
        return cls(play=incident.play, host=incident.host, check=incident.check, state=incident.state,
                   severity=incident.severity, since=incident.opened_at, summary=incident.summary,
                   incident_id=incident.id)


class Notifications:
    """Renders and enqueues alerts, resolves, repeats and notices; the ``Notifier`` of actions."""

    def __init__(
        self, store: Store, router: Router, *, templating: TemplateRenderer | None = None,
        redactor: Redactor | None = None, templates: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = utc_now,
        on_enqueued: Callable[[Sequence[int]], None] | None = None,
    ) -> None:
        self.store = store
        self.router = router
        self.templating: TemplateRenderer = templating or SandboxedTemplates()
        self.redactor = redactor or Redactor.for_targets(t.url for t in router.targets.values())
        self.templates = {**DEFAULT_TEMPLATES, **(templates or {})}
        self.clock = clock
        self.on_enqueued = on_enqueued
        """Called with the new row ids after every commit that queued messages (``Outbox.queued``)."""

    @classmethod
    def from_config(cls, config: Any, store: Store, **kwargs: Any) -> Notifications:
        """From a loaded configuration (``config.inventory.notify`` with rendered target URLs);
        redacts with the configuration's redactor (``config.templating.redactor``)."""
        router, templates = _router_from_config(config)
        templating = getattr(config, "templating", None)
        kwargs.setdefault("redactor", getattr(templating, "redactor", None))
        return cls(store, router, templating=templating if hasattr(templating, "render_template") else None,
                   templates=templates, **kwargs)

    def update_config(self, config: Any) -> None:
        """After a reload: new routes and targets; secrets of new URLs are redacted from now on."""
        self.router, templates = _router_from_config(config)
        self.templates = {**DEFAULT_TEMPLATES, **templates}
        self.redactor.add(set().union(*(_url_secrets(t.url) for t in self.router.targets.values())))

    @property
    def targets(self) -> dict[str, TargetSpec]:
        return self.router.targets

    # -- alerts, resolves, repeats (inside the engine's transaction) -----------------------

    def alert(self, tx: Operations, alert: AlertInfo) -> list[int]:
        """Queue the alert of ``alert.incident_id`` for every routed target."""
        now = self.clock()
        vars = self.alert_vars(alert, repeat=False, count=0)
        title = f"[{alert.state.name}] {alert.check} on {alert.host}"
        body = self.render("alert", vars)
        msg = RoutedMessage(alert.severity, alert.host, alert.play, alert.check, alert.tags)
        # A WARNING that escalates to CRITICAL is a new alert of the same incident.
        prefix = f"alert:{alert.incident_id}:{alert.state.name}" if alert.incident_id else f"alert:{uuid.uuid4()}"
        return self.enqueue(tx, "alert", self.router.route(msg), title, body, alert.severity, prefix,
                             alert.incident_id, now)

    def resolve(self, tx: Operations, incident: IncidentRecord, resolved_at: datetime,
                value: str | None = None, remediation: str | None = None) -> list[int]:
        """Queue the resolve to every (route, target) the incident's alerts went to."""
        now = self.clock()
        duration = format_duration((resolved_at - incident.opened_at).total_seconds())
        vars = dict(play=incident.play, check=incident.check, host=incident.host, was=incident.state.name,
                    since=_when(incident.opened_at), resolved_at=_when(resolved_at), duration=duration,
                    value=value, summary=incident.summary, incident_id=incident.id, remediation=remediation)
        title = f"[RESOLVED] {incident.check} on {incident.host} after {duration}"
        body = self.render("resolve", vars)
        pairs = [(r, t) for r, t in self.alerted(tx, incident.id) if r is None or r.send_resolved]
        return self.enqueue(tx, "resolve", pairs, title, body, "resolved", f"resolve:{incident.id}",
                             incident.id, now)

    def enqueue_due_repeats(self, now: datetime) -> int:
        """Re-send open, unacknowledged incidents whose route ``repeat`` interval has passed.

        Called periodically by the engine (in its store thread); returns how many were queued.
        """
        queued: list[int] = []
        with self.store.transaction() as tx:
            for incident in tx.open_incidents():
                if incident.acknowledged_at is not None or incident.suppressed:
                    continue
                rows = tx.list_notifications(incident_id=incident.id)
                for route_name, target in {(n.route, n.target) for n in rows if n.kind == "alert"}:
                    route = self.router.get(route_name)
                    if route is None or not route.repeat:
                        continue
                    sent = [n for n in rows if n.route == route_name and n.target == target
                            and n.kind in ("alert", "repeat")]
                    if (now - max(n.created_at for n in sent)).total_seconds() < route.repeat:
                        continue
                    count = sum(n.kind == "repeat" for n in sent) + 1
                    queued += self._repeat(tx, incident, route, target, count, now)
        return len(queued)

    def _repeat(self, tx: StoreTransaction, incident: IncidentRecord, route: RouteSpec, target: str,
                count: int, now: datetime) -> list[int]:
        alert = AlertInfo.from_incident(incident)
        body = self.render("repeat", self.alert_vars(alert, repeat=True, count=count))
        title = alert_title(incident.state.name, incident.check, incident.host, incident.summary, "STILL ")
        return self.enqueue(tx, "repeat", [(route, target)], title, body, incident.severity,
                             f"repeat:{incident.id}:{count}", incident.id, now)

    # -- notices (the notify action, the agent's own messages) -----------------------------

    def notice(self, tx: Operations | None, *, title: str, body: str, severity: str, route: str | None = None,
               host: str = "", play: str = "", tags: Sequence[str] = (), dedup: str | None = None,
               kind: str = "notice", attachments: Sequence[str] = ()) -> list[int]:
        """Queue a free-form message to a named route, or wherever its severity routes it;
        ``attachments`` (file paths) go to the targets that can carry files (email)."""
        pairs = self._notice_routes(route, severity, host, play, tags)
        rendered = self.render("notice",
                                      dict(title=title, body=body, severity=severity, host=host, tags=list(tags)))
        prefix = f"{kind}:{dedup or uuid.uuid4()}"
        if tx is None:
            with self.store.transaction() as own:
                return self.enqueue(own, kind, pairs, title, rendered, severity, prefix, None, self.clock(),
                                     attachments=attachments)
        return self.enqueue(tx, kind, pairs, title, rendered, severity, prefix, None, self.clock(),
                             attachments=attachments)

    async def notify(
        self, *, route: str | None, title: str, body: str, severity: str, host: str,
        tags: tuple[str, ...] = (), check_mode: bool = False, attachments: Sequence[str] = (),
        once: str | None = None,
    ) -> Mapping[str, Any]:
        """The ``Notifier`` protocol: queue (or, in check mode, preview) a message."""
        try:
            pairs = self._notice_routes(route, severity, host, "", tags)
        except KeyError as exc:
            return {"queued": [], "targets": [], "error": str(exc.args[0])}
        targets = [t for _, t in pairs]
        if check_mode:
            return {"queued": [], "targets": targets, "would_send": targets,
                    "title": self.redactor.redact(title), "body": self.redactor.redact(body)}
        ids = await asyncio.to_thread(self.notice, None, title=title, body=body, severity=severity,
                                      route=route, host=host, tags=tags, kind="task", attachments=attachments,
                                      dedup=once)
        if once is not None and targets and not ids:
            return {"queued": [], "targets": targets, "already_sent": True}
        return {"queued": ids, "targets": targets}

    # -- adapters for the resident engine (duck-typed on its bound check and transition) ---

    def on_transition(self, tx: StoreTransaction, bc: Any, status: Any, tr: Any) -> list[int]:
        """A hard transition: open, change or resolve the incident (sets ``status.incident_id``).

        Nothing is queued here: :class:`agent.notify.lifecycle.AlertLifecycle` decides when and
        how the operator is told (group wait, silences, inhibition, flapping, digest). A change
        of state of an open incident clears its acknowledgement (a new hard transition re-arms
        repeats and escalation). Returns ``[]`` (kept for callers that count queued rows).
        """
        play, host, check = bc.play.name, bc.host.name, bc.check.name
        obs = tr.observation
        severity = _severity(tr.new, getattr(bc.check, "severity", None))
        tx.add_event("transition", tr.key, status.incident_id, f"{tr.old.name} -> {tr.new.name}",
                     {"value": _text(obs.value), "error": obs.error}, at=tr.at)
        if tr.new is State.OK:
            if status.incident_id is not None:
                tx.resolve_incident(status.incident_id, tr.at)
                status.incident_id = None
            return []
        summary = incident_summary(obs, with_value=bool(getattr(bc.check, "value", None)))
        if status.incident_id is None and (was := tx.reopen_incident(
                play=play, host=host, check=check, state=tr.new, severity=severity, summary=summary,
                resolved_since=tr.at - REOPEN_WITHIN, untold=bool(getattr(bc.check, "remediate", None)))):
            status.incident_id = was.id
            ok_for = (tr.at - was.resolved_at).total_seconds() if was.resolved_at else 0.0
            held = ("its resolve was sent (the same problem, not a new alert)" if was.announced_state is not None
                    else "its message that the agent fixed it was sent (the same problem: one message tells both)")
            tx.add_event(REOPENED_EVENT, tr.key, was.id,
                         f"incident #{was.id} reopened: {tr.new.name} again {ok_for:.1f}s after it recovered, before "
                         + held, {"error": obs.error}, at=tr.at)
        elif status.incident_id is None:
            status.incident_id = tx.open_incident(play=play, host=host, check=check, state=tr.new,
                                                  severity=severity, opened_at=tr.at, summary=summary)
            tx.add_event("incident-opened", tr.key, status.incident_id, f"incident #{status.incident_id} opened: "
                         f"{tr.new.name} ({severity})", {"error": obs.error}, at=tr.at)
        else:
            tx.update_incident(status.incident_id, state=tr.new, severity=severity, summary=summary)
            incident = tx.get_incident(status.incident_id)
            if incident is not None and incident.acknowledged_at is not None:
                tx.set_incident_lifecycle(status.incident_id, acknowledged_at=None, acknowledged_by=None,
                                          ack_comment=None)
                tx.add_event("ack-cleared", tr.key, status.incident_id,
                             f"acknowledgement cleared: the state changed to {tr.new.name}", {}, at=tr.at)
        return []

    def flapping(self, tx: StoreTransaction, bc: Any, incident_id: int | None, *, started: bool, percent: float,
                 state: str, at: datetime) -> list[int]:
        """One notice when a check starts flapping, one when it settles."""
        play, host, check = bc.play.name, bc.host.name, bc.check.name
        tags = tuple(getattr(bc.check, "tags", None) or ())
        severity = _severity(State[state] if state in State.__members__ and state != "OK" else State.WARNING,
                             getattr(bc.check, "severity", None))
        kind = "FLAPPING" if started else "SETTLED"
        title = (f"[FLAPPING] {check} on {host}: alerts and remediation paused" if started
                 else f"[SETTLED] {check} on {host} stopped flapping, now {state}")
        vars = dict(started=started, check=check, host=host, play=play, percent=round(percent, 1), state=state,
                    incident_id=incident_id, at=_when(at))
        body = self.render("flapping", vars)
        pairs = self.router.route(RoutedMessage(severity, host, play, check, tags))
        tx.add_event("flapping-start" if started else "flapping-stop", f"{play}/{host}/{check}", incident_id,
                     f"{kind.lower()}: {percent:.0f}% weighted state changes", {"percent": round(percent, 1)}, at=at)
        return self.enqueue(tx, "notice", pairs, title, body, severity,
                             f"flap:{play}/{host}/{check}:{kind}:{at.isoformat()}", incident_id, self.clock())

    PAGE_SEVERITY, PAGE_TAGS = "critical", ("p0",)  # a remediation budget exhausted is P0 (docs/runbooks.md)

    def page(self, bc: Any, reason: str) -> list[int]:
        """Tell a human now (e.g. a remediation budget is exhausted)."""
        return self.notice(None, title=f"[PAGE] {bc.play.name} on {bc.host.name}: a human is needed",
                           body=reason, severity=self.PAGE_SEVERITY, host=bc.host.name, play=bc.play.name,
                           tags=self.PAGE_TAGS)

    def page_targets(self, bc: Any) -> set[str]:
        """The targets :meth:`page` sends to for ``bc``."""
        return {t for _, t in self._notice_routes(None, self.PAGE_SEVERITY, bc.host.name, bc.play.name,
                                                  self.PAGE_TAGS)}

    def config_rejected(self, text: str, digest: str) -> list[int]:
        """A reload was rejected; sent once per distinct broken version (``digest``) in a
        breakage episode (until :meth:`config_loaded`)."""
        return self.notice(None, title="[CONFIG] reload rejected: the last good configuration keeps running",
                           body=text, severity="warning", dedup=f"{CONFIG_REJECTED}:{digest}")

    def config_loaded(self) -> int:
        """The files on disk loaded (a start or a reload): the breakage told with the dedup
        ``CONFIG_REJECTED:...`` is over, and the same break again is a new one, told again
        (one page per episode, not per reload attempt). Returns how many keys were ended."""
        return self.store.end_dedup(f"notice:{CONFIG_REJECTED}:")

    # -- the public API of the alert lifecycle (agent.notify.lifecycle) -----------------------

    def enqueue(self, tx: Operations, kind: str, pairs: Sequence[tuple[RouteSpec | None, str]], title: str,
                body: str, severity: str, dedup_prefix: str, incident_id: int | None, now: datetime,
                attachments: Sequence[str] = ()) -> list[int]:
        """Queue one message per target of ``pairs`` in ``tx`` (the first route that reaches
        it), redacted; returns the new row ids.

        The one place messages are queued: dedup keys are ``DEDUP_PREFIX:ROUTE:TARGET`` (a key
        already queued is skipped), and the outbox is woken after ``tx`` commits. Two routes to
        one target are one message there (an incident told WARNING on one route and UNKNOWN on
        another, both to the inbox: its resolve went to the inbox twice).
        """
        title, body = self.redactor.redact(title), self.redactor.redact(body)
        ids: list[int] = []
        for route, target in one_per_target(pairs):
            route_name = route.name if route is not None else None
            nid = tx.enqueue_notification(
                kind=kind, target=target, title=title, body=body, severity=severity, now=now,
                route=route_name, incident_id=incident_id,
                dedup_key=f"{dedup_prefix}:{route_name or '-'}:{target}", attachments=attachments,
            )
            if nid is not None:
                ids.append(nid)
        if ids and self.on_enqueued:  # the one place messages are queued: the outbox is told here
            told = functools.partial(self.on_enqueued, tuple(ids))
            if isinstance(tx, StoreTransaction):
                tx.after_commit(told)
            else:
                told()  # a Store call commits by itself
        return ids

    def alerted(self, tx: Operations, incident_id: int) -> list[tuple[RouteSpec | None, str]]:
        """The (route, target) pairs the incident's alerts were queued for, in order."""
        seen: dict[tuple[str | None, str], tuple[RouteSpec | None, str]] = {}
        for n in tx.list_notifications(incident_id=incident_id, kind="alert"):
            route = self.router.get(n.route) or (RouteSpec(n.route, (n.target,)) if n.route else None)
            seen.setdefault((n.route, n.target), (route, n.target))
        return list(seen.values())

    def alert_vars(self, alert: AlertInfo, *, repeat: bool, count: int) -> dict[str, Any]:
        """The variables of the alert and repeat templates: absolute times only (a message is
        read when it is delivered, not when it is queued: nothing relative to the present)."""
        return {
            "state": alert.state.name, "severity": alert.severity, "play": alert.play, "check": alert.check,
            "host": alert.host, "since": _when(alert.since),
            "value": alert.value, "error": alert.error, "summary": alert.summary,
            "incident_id": alert.incident_id, "repeat": repeat, "count": count, "tags": list(alert.tags),
        }

    def render(self, template: str, vars: Mapping[str, Any]) -> str:
        """Render the configured template of kind ``template`` (alert, grouped, digest, ...)."""
        return render_or_fallback(self.templating, self.templates[template], vars)

    # -- internals -----------------------------------------------------------------------------

    def _notice_routes(self, route: str | None, severity: str, host: str, play: str,
                       tags: Sequence[str]) -> list[tuple[RouteSpec, str]]:
        if route:
            return self.router.named(route)
        return self.router.route(RoutedMessage(severity, host, play, "", tuple(tags)))


def one_per_target(pairs: Sequence[tuple[RouteSpec | None, str]]) -> list[tuple[RouteSpec | None, str]]:
    """``pairs`` without a target named twice (the first route to each, in order)."""
    seen: dict[str, RouteSpec | None] = {}
    for route, target in pairs:
        seen.setdefault(target, route)
    return [(route, target) for target, route in seen.items()]


REOPENED_EVENT = "incident-reopened"
"""An incident whose held resolve was not sent yet, reopened by its problem coming back (a crash
loop the check saw running between two crashes): the same incident, the same story."""
REOPEN_WITHIN = timedelta(minutes=10)
"""How recent a recovery whose resolve is still held may be for a new problem to reopen its
incident (a resolve waits at most ``group_interval``; one held longer, by an agent that was down,
is not the same crash loop)."""


def alert_title(state: str, check: str, host: str, summary: str, prefix: str = "") -> str:
    """``[STATE] CHECK on HOST``, and what the problem is when known (:func:`headline`: the
    failure class of an UNKNOWN, a module's verdict such as ``hung``)."""
    head = headline(state, summary or "")
    return f"[{prefix}{state}] {check} on {host}" + (f": {head}" if head else "")


def incident_summary(obs: Any, *, with_value: bool = False) -> str:
    """What an incident says it is: the observation's summary, or for a check that could not
    tell (UNKNOWN) the class of its failure first, then the probe's own message
    (``HTTP 429 rate limited: positions: exchange ... rate limited the request (HTTP 429)``).

    ``with_value`` (the check names its value with a ``value:`` expression): the value that made
    it a problem follows the probe's summary, so the operator reads what was seen (the exchange's
    refusal the bot reports, the seconds a socket has been down), not only that a request was
    answered. Stored and sent redacted, as every summary."""
    if obs.error:
        return f"{failure_cause(obs.error)}: {obs.error}"
    summary = str(obs.summary or "")
    value = _text(obs.value) if with_value else None
    if value is None or value == "":
        return summary
    shown = value if len(value) <= 500 else value[:500] + "..."
    return f"{summary}; value: {shown}" if summary else f"value: {shown}"


def _severity(state: State, check_severity: Any) -> str:
    configured_text = str(getattr(check_severity, "value", check_severity) or "").lower()
    if configured_text == "info" and state is not State.CRITICAL:
        return "info"  # an info finding goes to the digest, whatever state it maps to
    if state is State.WARNING:
        return "warning"
    # UNKNOWN of a critical check (its endpoint refuses connections) pages like CRITICAL.
    configured = str(getattr(check_severity, "value", check_severity) or "critical").lower()
    return "critical" if state is State.CRITICAL or configured == "critical" else configured


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return repr(value)[:500]


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _url_secrets(url: str) -> set[str]:
    return url_secrets(url) if url else set()


def _router_from_config(config: Any) -> tuple[Router, dict[str, str]]:
    inventory = getattr(config, "inventory", config)
    notify = getattr(inventory, "notify", None)
    urls = {name: getattr(t, "rendered_url", "") or "" for name, t in (getattr(notify, "targets", None) or {}).items()}
    targets, routes = specs_from_inventory(notify, urls)
    tmpl = getattr(notify, "templates", None)
    templates = {k: getattr(tmpl, k) for k in ("alert", "resolve", "repeat", "grouped", "flapping", "digest", "update")
                 if getattr(tmpl, k, None)}
    return Router(routes, targets), templates
