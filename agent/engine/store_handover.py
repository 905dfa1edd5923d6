"""The hand-over between an agent whose database was lost and the agent that starts after it.

When the database file is deleted or replaced under the running agent
(:mod:`agent.engine.store_file`), the agent tells what it had not said yet
(:mod:`agent.notify.unsaid`) and stops; supervisord starts it again on the file that is there,
which does not hold the incidents of the old one. A problem the operator WAS told about, whose
resolve had not been told yet, would then be forgotten: if it recovered meanwhile, the operator's
last word about it would stay ``[CRITICAL]`` forever (a fault run: the bot crashed 70 ms after
the deletion, the crash was sent directly, the new agent found the bot running and said nothing).

So the old agent, as it stops, writes what was told and not resolved-told to a small file beside
the database (:func:`handover_path`), atomically (a temporary file, fsync, rename): the announced
incidents of the old file (read through the connection it still holds) and the alerts it sent
straight through apprise for decisions the store never took. Only check keys, states,
severities, redacted summaries, times and the (route, target) names the alerts went to: no
secret.

The next agent, once its store is open and before it loads the check states
(:func:`receive_handover`), imports them in one transaction: each incident as announced, with
its alerts recorded as sent to the same (route, target) pairs (so its resolve goes there), and,
when it is still open, the check's state as that problem (so the check's first OK reading
resolves it; a check still failing continues the same incident: no second alert). It records an
event and removes the file. What it cannot import it tells the operator instead of guessing:

* a file older than :data:`MAX_AGE` (the agent was down for long; its states say nothing now);
* problems of checks that are no longer configured (nothing will judge their resolve);
* a file it cannot read or parse (kept aside as ``.bad-<time>`` for a human), and the temporary
  file of an agent killed while it wrote one (what it handed over is lost).

Never raises into the agent's start: every failure is logged and said.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.core.states import State
from agent.store.records import CheckStateRecord, check_key
from botwarden.files import write_durably

if TYPE_CHECKING:
    from agent.engine.direct_alerts import DirectMessage
    from agent.engine.pipeline import Decision
    from agent.notify import Notifications
    from agent.store import IncidentRecord, Store, StoreTransaction

log = logging.getLogger("agent")

VERSION = 1
SUFFIX = ".handover.json"
TEMP_MARK = ".tmp-"
MAX_AGE = timedelta(days=1)
"""A hand-over older than this is told, not imported: the problems it lists were told that long
ago, and whether they still hold is for the checks (or a human) to say, not for an old file."""
EVENT = "handover"


def handover_path(db: Path) -> Path:
    """The hand-over file beside the database ``db`` (``var/agent.db.handover.json``)."""
    return db.with_name(db.name + SUFFIX)


@dataclass(frozen=True)
class Told:
    """A problem the operator was told about and whose resolve was not told yet."""

    play: str
    host: str
    check: str
    state: str
    """The state last told (WARNING, CRITICAL, UNKNOWN)."""
    severity: str
    summary: str
    opened_at: datetime
    told_at: datetime
    resolved_at: datetime | None
    """When it recovered (its resolve not told yet), None while it is open."""
    routes: tuple[tuple[str | None, str], ...]
    """The (route, target) pairs its alerts went to."""

    @property
    def key(self) -> str:
        return check_key(self.play, self.host, self.check)

    def to_json(self) -> dict[str, Any]:
        return {"play": self.play, "host": self.host, "check": self.check, "state": self.state,
                "severity": self.severity, "summary": self.summary, "opened_at": self.opened_at.isoformat(),
                "told_at": self.told_at.isoformat(),
                "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
                "routes": [list(r) for r in self.routes]}

    @classmethod
    def from_json(cls, data: Any) -> Told:
        """Raises ``ValueError`` (or ``KeyError``/``TypeError``) on anything malformed."""
        if not isinstance(data, dict):
            raise ValueError("an incident is not an object")
        state = str(data["state"])
        if state not in State.__members__ or not State[state].is_problem:
            raise ValueError(f"not a problem state: {state!r}")
        routes = tuple((None if r is None else str(r), str(t)) for r, t in data["routes"])
        return cls(play=str(data["play"]), host=str(data["host"]), check=str(data["check"]), state=state,
                   severity=str(data["severity"]), summary=str(data.get("summary") or ""),
                   opened_at=_when(data["opened_at"]), told_at=_when(data["told_at"]),
                   resolved_at=_when(data["resolved_at"]) if data.get("resolved_at") else None, routes=routes)

    def line(self) -> str:
        fixed = f", OK again since {self.resolved_at:%Y-%m-%d %H:%M:%S} UTC" if self.resolved_at else ""
        return f"{self.check} on {self.host} (playbook {self.play}): {self.state} told at " \
               f"{self.told_at:%Y-%m-%d %H:%M:%S} UTC{fixed}"


def _when(text: Any) -> datetime:
    at = datetime.fromisoformat(str(text))
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Handover:
    written_at: datetime
    reason: str
    told: list[Told] = field(default_factory=list)


# -- the agent that stops ----------------------------------------------------------------------
def told_in_store(store: Store) -> list[Told]:
    """Store thread, reads only: the incidents told and not resolved-told (open or recovered)."""
    out: list[Told] = []
    with store.transaction() as tx:
        incidents = {i.id: i for i in [*tx.open_incidents(), *tx.incidents_to_close()]}
        for inc in incidents.values():
            if inc.announced_state is None or inc.announced_state == "OK":
                continue
            pairs = {(n.route, n.target): None for n in tx.list_notifications(incident_id=inc.id, kind="alert")}
            state = inc.announced_state if inc.announced_state in State.__members__ else inc.state.name
            if not State[state].is_problem:
                continue
            out.append(Told(play=inc.play, host=inc.host, check=inc.check, state=state, severity=inc.severity,
                            summary=inc.summary, opened_at=inc.opened_at, told_at=inc.announced_at or inc.opened_at,
                            resolved_at=inc.resolved_at, routes=tuple(pairs)))
    return out


def told_directly(sent: Iterable[tuple[Decision, DirectMessage]]) -> list[Told]:
    """Alerts sent straight through apprise for decisions the store never took."""
    out = []
    for decision, msg in sent:
        tr, bc, obs = decision.transition, decision.bc, decision.obs
        if tr is None or not tr.new.is_problem:
            continue
        out.append(Told(play=bc.play.name, host=bc.host.name, check=bc.check.name, state=tr.new.name,
                        severity=msg.severity, summary=obs.error or obs.summary or "", opened_at=tr.at,
                        told_at=msg.at, resolved_at=None, routes=msg.routes))
    return out


def told_with(inc: IncidentRecord, msg: DirectMessage) -> Told | None:
    """A problem of the lost file told directly as the agent stops (:mod:`agent.notify.unsaid`):
    its alert is in no outbox row, so its targets come from the message (None once it is fixed:
    that message was its alert and its resolve in one)."""
    if not inc.is_open:
        return None
    return Told(play=inc.play, host=inc.host, check=inc.check, state=inc.state.name, severity=inc.severity,
                summary=inc.summary, opened_at=inc.opened_at, told_at=msg.at, resolved_at=None, routes=msg.routes)


def merge(older: Sequence[Told], newer: Sequence[Told]) -> list[Told]:
    """One entry per check: ``newer`` (sent directly after what the store holds) tells its
    state; the alerts' targets are the union, the problem began at the earliest."""
    by_key: dict[str, Told] = {}
    for t in [*older, *newer]:
        was = by_key.get(t.key)
        if was is None:
            by_key[t.key] = t
            continue
        routes = tuple(dict.fromkeys([*was.routes, *t.routes]))
        by_key[t.key] = replace(t, opened_at=min(was.opened_at, t.opened_at), routes=routes)
    return list(by_key.values())


def write_handover(path: Path, told: Sequence[Told], reason: str, now: datetime,
                   redact: Callable[[str], str] = lambda s: s) -> None:
    """Write the hand-over atomically (temporary file, fsync, rename, fsync of the folder), 0600."""
    doc = {"version": VERSION, "written_at": now.isoformat(), "reason": redact(reason),
           "incidents": [replace(t, summary=redact(t.summary)).to_json() for t in told]}
    data = json.dumps(doc, indent=1, sort_keys=True).encode()
    write_durably(path, data, temp=path.with_name(f"{path.name}{TEMP_MARK}{os.getpid()}"))


def read_handover(path: Path) -> Handover:
    """Raises ``OSError`` or ``ValueError`` (a message fit for the operator) on a bad file."""
    try:
        doc = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # nested past what JSON reads too
        raise ValueError(f"not JSON ({str(exc)[:200]})") from None
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        raise ValueError(f"not a version {VERSION} hand-over")
    try:
        return Handover(written_at=_when(doc["written_at"]), reason=str(doc.get("reason") or ""),
                        told=[Told.from_json(i) for i in doc["incidents"]])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed ({type(exc).__name__}: {exc})") from None


# -- the agent that starts ---------------------------------------------------------------------
@dataclass
class Received:
    """What :func:`receive_handover` did (for the log and tests)."""

    imported: list[Told] = field(default_factory=list)
    unknown: list[Told] = field(default_factory=list)
    stale: list[Told] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Why something could not be read (a corrupt file, one cut off by a kill)."""


def receive_handover(path: Path, store: Store, notifications: Notifications, known: Collection[str],
                     now: datetime) -> Received:
    """Store thread, at start-up before the check states are loaded: import the hand-over at
    ``path`` (see the module docstring); ``known`` are the keys of the configured checks. Never
    raises: what fails is logged and told."""
    got = Received()
    try:
        _receive(path, store, notifications, known, now, got)
    except Exception as exc:  # the agent starts whatever the file holds
        log.exception("the hand-over %s could not be taken", path)
        got.problems.append(f"it could not be taken ({type(exc).__name__}: {exc})")
        _tell(notifications, "[AGENT] the previous agent's hand-over could not be taken",
              f"The agent that stopped because its database was lost left {path}, and importing it failed "
              f"({type(exc).__name__}: {exc}). Problems it had told you about and not yet told resolved may "
              "never be told resolved: look at the checks (`agent status`).", f"error:{now.isoformat()}")
    return got


def _receive(path: Path, store: Store, notifications: Notifications, known: Collection[str], now: datetime,
             got: Received) -> None:
    for temp in sorted(path.parent.glob(path.name + TEMP_MARK + "*")):
        log.error("a hand-over left half-written by an agent killed while it wrote it: %s (removed)", temp)
        temp.unlink(missing_ok=True)
        got.problems.append(f"{temp.name} was left half-written")
        _tell(notifications, "[AGENT] the previous agent's hand-over was cut off",
              f"The agent that stopped because its database was lost was killed while it wrote what it had "
              f"told you and not yet told resolved ({temp}). That list is lost: a problem told before may never "
              "be told resolved. Look at the checks (`agent status`).", f"cut:{temp.name}")
    try:
        exists = path.exists()
    except OSError:
        exists = True  # read_handover says why
    if not exists:
        return
    try:
        handover = read_handover(path)
    except (OSError, ValueError) as exc:
        aside = path.with_name(f"{path.name}.bad-{now:%Y%m%dT%H%M%S}")
        try:
            os.replace(path, aside)
            kept = f"it is kept as {aside} for you to read"
        except OSError as move:
            kept = f"it could not be moved aside ({move})"
        log.error("the hand-over %s cannot be read: %s; %s", path, exc, kept)
        got.problems.append(f"{path.name}: {exc}")
        _tell(notifications, "[AGENT] the previous agent's hand-over cannot be read",
              f"The agent that stopped because its database was lost left {path}, which cannot be read: {exc}; "
              f"{kept}. Problems it had told you about and not yet told resolved may never be told resolved: "
              "look at the checks (`agent status`).", f"bad:{now.isoformat()}")
        return
    age = now - handover.written_at
    if age > MAX_AGE:
        got.stale = handover.told
    else:
        got.unknown = [t for t in handover.told if t.resolved_at is None and t.key not in known]
        got.imported = [t for t in handover.told if t not in got.unknown]
    with store.transaction() as tx:
        ids = [_import(tx, t, now, handover.written_at) for t in got.imported]
        tx.add_event(EVENT, None, None,
                     f"hand-over of the agent whose database was lost ({handover.reason}), written "
                     f"{handover.written_at:%Y-%m-%d %H:%M:%S} UTC: {len(got.imported)} incident(s) imported"
                     + (f", {len(got.unknown)} of checks no longer configured" if got.unknown else "")
                     + (f", {len(got.stale)} not imported (older than {MAX_AGE})" if got.stale else ""),
                     {"written_at": handover.written_at.isoformat(), "imported": ids,
                      "unknown": [t.key for t in got.unknown], "stale": [t.key for t in got.stale]}, at=now)
        if got.unknown:
            notifications.notice(
                tx, title=f"[AGENT] {len(got.unknown)} problem(s) told before the database was lost cannot be "
                          "judged: their checks are no longer configured",
                body="The previous agent stopped because its database was lost and handed these problems over, "
                     "told to you and not yet told resolved; their checks are not in the configuration now, so "
                     "no check will say whether they are over. Look at them yourself:\n"
                     + "\n".join(f"- {t.line()}" for t in got.unknown),
                severity="warning", dedup=f"handover-unknown:{handover.written_at.isoformat()}")
        if got.stale:
            notifications.notice(
                tx, title=f"[AGENT] an old hand-over ({len(got.stale)} problem(s) told, never told resolved) "
                          "was not imported",
                body=f"A hand-over written {handover.written_at:%Y-%m-%d %H:%M:%S} UTC (more than {MAX_AGE} "
                     f"ago) by an agent that stopped because {handover.reason} lists problems told to you and "
                     "not yet told resolved. It is too old to take their states as current: the checks decide "
                     "again; a problem that is over will not be told resolved. They were:\n"
                     + "\n".join(f"- {t.line()}" for t in got.stale),
                severity="warning", dedup=f"handover-stale:{handover.written_at.isoformat()}")
    try:
        path.unlink()
    except OSError as exc:  # imported again next time: the dedup keys make that a no-op
        log.error("the hand-over %s was imported but could not be removed: %s", path, exc)
    if got.imported:
        log.warning("the previous agent's hand-over imported: %s", "; ".join(t.line() for t in got.imported))


def _import(tx: StoreTransaction, t: Told, now: datetime, written_at: datetime) -> int:
    """One told problem into the new store: its incident announced, its alerts sent to the same
    targets, and (open) the check's state as that problem. Returns the incident's id."""
    state = State[t.state]
    existing = tx.open_incident_for(t.key)
    if existing is not None:
        iid = existing.id
    else:
        iid = tx.open_incident(play=t.play, host=t.host, check=t.check, state=state, severity=t.severity,
                               opened_at=t.opened_at, summary=t.summary)
        if t.resolved_at is not None:
            tx.resolve_incident(iid, t.resolved_at)
    if existing is None or existing.announced_state is None:  # a told one of the new file keeps its own
        tx.set_incident_lifecycle(iid, announced_state=t.state, announced_at=t.told_at, eligible_since=t.told_at,
                                  suppressed=None)
    for route, target in t.routes:
        nid = tx.enqueue_notification(
            kind="alert", target=target, title=f"[{t.state}] {t.check} on {t.host}",
            body=f"(handed over by the agent whose database was lost; told at {t.told_at.isoformat()})",
            severity=t.severity, now=t.told_at, route=route, incident_id=iid,
            dedup_key=f"handover:{written_at.isoformat()}:{t.key}:{route}:{target}")
        if nid is not None:
            tx.mark_sent(nid, t.told_at)
    if t.resolved_at is None:
        states = tx.load_check_states()
        current = states.get(t.key)
        if current is None or not current.hard_state.is_problem or current.incident_id != iid:
            tx.save_check_state(CheckStateRecord(
                play=t.play, host=t.host, check=t.check, hard_state=state, soft_state=state, since=t.opened_at,
                soft_since=t.opened_at, consecutive=1, last_error=t.summary or None, incident_id=iid,
                extras=dict(current.extras) if current is not None else {}))
    tx.add_event(EVENT, t.key, iid, f"{t.state} handed over by the agent whose database was lost: "
                 + ("open, its resolve told when the check reads OK" if t.resolved_at is None else
                    "recovered, its resolve not told yet"), {"routes": [list(r) for r in t.routes]}, at=now)
    return iid


def _tell(notifications: Notifications, title: str, body: str, dedup: str) -> None:
    try:
        notifications.notice(None, title=title, body=body, severity="warning", dedup=f"handover-{dedup}")
    except Exception:  # logged; the agent starts
        log.exception("could not queue %r", title)
