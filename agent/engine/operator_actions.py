"""What an operator does, written once for the CLI and the web page.

``agent ack``, ``agent silence``, ``agent run-playbook``, ``agent explain`` and the web page's
controls all act through these functions, with the actor who acted (``alice`` at the terminal,
``web:alice`` on the page), so the store and the audit trail cannot tell two paths apart.
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from agent.core.values import format_duration, parse_duration
from agent.engine.play_runner import PlayRecap, TaskOutcome
from agent.notify.lifecycle import SILENCE_FIELDS
from botwarden.errors import BotwardenError, ConfigError, ExitCode

if TYPE_CHECKING:
    from agent.store import IncidentRecord, Store

_WORD = {"ok": "ok", "changed": "changed", "failed": "failed", "skipped": "skipping", "ignored": "failed (ignored)"}


# -- acknowledgements ------------------------------------------------------------------------

class NotAcknowledged(BotwardenError):
    exit_code = ExitCode.FAILED


class AckUsage(BotwardenError):
    exit_code = ExitCode.USAGE


MAX_REASON_CHARS = 500
"""A silence's reason and an acknowledgement's comment are at most this long (shown on the pages
that list them, and an ack's comment in every "already acknowledged" answer)."""


def acknowledge(st: Store, incident: int, *, by: str, comment: str | None, now: datetime) -> IncidentRecord:
    """Acknowledge open incident ``incident`` as ``by`` and audit it (one transaction); returns
    the incident. Raises :class:`NotAcknowledged` when there is no such open incident.
    An incident already acknowledged (since its state last changed) is not acknowledged again:
    :class:`NotAcknowledged` says by whom and when, and the first comment stands (a double submit
    or a second operator never overwrites it).
    The one code path of ``agent ack`` and the web page's acknowledge. A comment longer than
    :data:`MAX_REASON_CHARS` is refused (:class:`AckUsage`), as a silence's reason: a 60,000
    character comment was stored and printed twice on the incident's page."""
    if comment is not None and len(comment) > MAX_REASON_CHARS:
        raise AckUsage(f"an acknowledgement's comment is at most {MAX_REASON_CHARS} characters (this one has "
                       f"{len(comment)}): say it shortly; nothing was acknowledged")
    with st.transaction() as tx:
        inc = tx.get_incident(incident) if incident <= MAX_ROW_ID else None
        if inc is None or not tx.acknowledge_incident(incident, by=by, at=now, comment=comment):
            now_inc = tx.get_incident(incident) if inc is not None else None
            if now_inc is not None and now_inc.resolved_at is None and now_inc.acknowledged_at is not None:
                first = f" ({now_inc.ack_comment})" if now_inc.ack_comment else ""
                raise NotAcknowledged(f"incident #{incident} is already acknowledged by {now_inc.acknowledged_by} at "
                                      f"{_utc(now_inc.acknowledged_at)}{first}: that acknowledgement stands "
                                      "until the incident's state changes")
            raise NotAcknowledged(f"incident #{incident} is not open" if inc else f"no incident #{incident}")
        tx.add_event("ack", inc.key, incident, f"acknowledged by {by}" + (f": {comment}" if comment else ""),
                     {"by": by, "comment": comment}, at=now)
    return inc


# -- silences --------------------------------------------------------------------------------

class SilenceUsage(BotwardenError):
    exit_code = ExitCode.USAGE


MAX_SILENCE_S = 30 * 86400.0
"""The longest silence (30 days): one longer hides a problem that comes back long after anyone
remembers why it was silenced (``90d`` was taken as written). Renew a silence that must last."""


def parse_for(text: str, name: str = "--for") -> float:
    """``--for`` (``name``, as the asker knows it): a duration longer than zero and at most
    :data:`MAX_SILENCE_S`, in seconds; :class:`SilenceUsage` otherwise."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise SilenceUsage(str(exc)) from None
    if seconds <= 0:
        raise SilenceUsage(f"{name} must be longer than zero")
    if seconds > MAX_SILENCE_S:
        raise SilenceUsage(f"a silence lasts at most {format_duration(MAX_SILENCE_S)} (asked: {text.strip()}): "
                           "a longer one hides a problem that comes back; silence for less and renew it")
    return seconds


MAX_ROW_ID = 2**63 - 1
"""The largest id SQLite stores: a larger one names no row (and would overflow its integer)."""


def create_silence(st: Store, matchers: Mapping[str, str], *, seconds: float, reason: str, by: str,
                   now: datetime) -> int:
    """Store a silence of ``matchers`` (parsed, see :func:`parse_matchers`) for ``seconds`` and
    audit it as ``by``; returns its id. The code path of ``agent silence`` and the web page.
    A reason longer than :data:`MAX_REASON_CHARS` is refused (:class:`SilenceUsage`)."""
    if len(reason) > MAX_REASON_CHARS:
        raise SilenceUsage(f"a silence's reason is at most {MAX_REASON_CHARS} characters (this one has "
                           f"{len(reason)}): say it shortly")
    sid = st.add_silence(matchers=matchers, starts_at=now, ends_at=now + timedelta(seconds=seconds),
                         reason=reason, created_by=by, created_at=now)
    st.add_event("silence", None, None, f"silence #{sid} by {by} for {format_duration(seconds)}: "
                 + " ".join(f"{k}={v}" for k, v in matchers.items()) + (f" ({reason})" if reason else ""),
                 {"silence": sid, "matchers": dict(matchers), "reason": reason, "by": by}, at=now)
    return sid


def end_silence(st: Store, silence_id: int, *, by: str, now: datetime) -> None:
    """End active silence ``silence_id`` now and audit it as ``by``; :class:`SilenceUsage` when
    there is no such active silence (saying when it ended, if it did)."""
    if silence_id > MAX_ROW_ID or not st.expire_silence(silence_id, now):
        found = st.get_silence(silence_id) if silence_id <= MAX_ROW_ID else None
        if found is None:
            raise SilenceUsage(f"no silence #{silence_id}")
        if found.expired_at is not None and found.expired_at <= found.ends_at:
            raise SilenceUsage(f"silence #{silence_id} already ended at {_utc(found.expired_at)}")
        raise SilenceUsage(f"silence #{silence_id} already ran out at {_utc(found.ends_at)}")
    st.add_event("silence-expired", None, None, f"silence #{silence_id} expired by {by}",
                 {"silence": silence_id, "by": by}, at=now)


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def parse_matchers(items: list[str]) -> dict[str, str]:
    """``["host=local", "check=bot*"]`` -> ``{"host": "local", "check": "bot*"}``. A field given
    twice with two globs is refused: the last one was kept silently, so ``check=bot* check=disk*``
    silenced the disk checks only, while the operator meant both."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        if name == "tags":
            name = "tag"
        if not sep or not value or name not in SILENCE_FIELDS:
            raise SilenceUsage(f"bad matcher {item!r}: write FIELD=GLOB with FIELD one of {', '.join(SILENCE_FIELDS)}")
        glob = value.strip().strip('"').strip("'")
        if out.get(name, glob) != glob:
            raise SilenceUsage(f"{name} is given twice ({name}={out[name]} and {name}={glob}): a silence holds an "
                               f"alert when all its matchers match, one glob per field; add one silence per {name}, "
                               f"or one glob that matches both")
        out[name] = glob
    return out


# -- plays -----------------------------------------------------------------------------------

def outcome_line(o: TaskOutcome) -> tuple[str, str]:
    """(status word, plain text) of one task's line: ``ok: [local] name => msg``."""
    line = f"{_WORD.get(o.status, o.status)}: [{o.host}] {o.task}"
    if o.attempts > 1:
        line += f" (attempts: {o.attempts})"
    if o.msg:
        line += f" => {o.msg}"
    return o.status, line


def recap_lines(recap: PlayRecap) -> list[tuple[str, str]]:
    """(worst status, plain text) per host of the recap."""
    out = []
    for host, r in sorted(recap.hosts.items()):
        worst = "failed" if r.failed else ("changed" if r.changed else "ok")
        out.append((worst, f"{host:<20} : ok={r.ok} changed={r.changed} failed={r.failed} "
                           f"skipped={r.skipped} ignored={r.ignored} rescued={r.rescued}"))
    return out


def find_play(config: Any, name: str, limit: str | None = None) -> tuple[Any, list[Any]]:
    """The play named ``name`` and the hosts it runs on (within ``limit``, comma-separated names).
    Raises :class:`ConfigError` naming the closest play or saying no host matches."""
    from agent.playbook import resolve_hosts

    play = config.playbooks.get(name)
    if play is None:
        close = difflib.get_close_matches(name, list(config.playbooks), n=1)
        raise ConfigError(f"no playbook named {name!r}",
                          hint=f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(config.playbooks))}")
    host_names = resolve_hosts(config.inventory, play.hosts)
    if limit:
        wanted = {h.strip() for h in limit.split(",")}
        host_names = [h for h in host_names if h in wanted]
    if not host_names:
        raise ConfigError(f"playbook {name!r} matches no host" + (f" within --limit {limit}" if limit else ""))
    return play, [config.hosts[h] for h in host_names]


def needs_confirmation(play: Any, config: Any) -> bool:
    """Whether running ``play`` (not in check mode) must be confirmed: it has a ``confirm:`` text
    or a task (in a block, rescue or always too, or a handler a task notifies) uses a destructive
    module."""
    if play.confirm:
        return True
    from agent.modules.registry import default_registry

    reg = default_registry()

    def destructive(tasks: list[Any]) -> bool:
        for t in tasks or []:
            if t.module and t.module in reg.actions and reg.actions[t.module].destructive:
                return True
            if destructive(getattr(t, "block", None) or []) or destructive(getattr(t, "rescue", None) or []) \
                    or destructive(getattr(t, "always", None) or []):
                return True
        return False

    return destructive(play.tasks) or destructive(getattr(play, "handlers", None) or [])


def confirmation_text(play: Any, config: Any, hosts: list[str]) -> str:
    """The question to ask: the play's ``confirm:`` rendered with ``host``, else a generic one
    naming the play and the hosts."""
    if play.confirm:
        try:
            return str(config.templating.redact(config.templating.render_str(
                play.confirm, {"host": ", ".join(hosts), **play.vars})))
        except Exception:  # noqa: BLE001 - the raw text is still a fine question
            return str(play.confirm)
    return f"Run destructive playbook {play.name!r} on {', '.join(hosts)}?"


# -- explanations ----------------------------------------------------------------------------

def redactor(config: Any) -> Any:
    """The redactor of everything shown to an operator: the configuration's (target URLs, every
    environment value a template read, parameters marked secret, secret-named variables)."""
    return config.templating.redactor


def timeline(st: Any, incident_id: int, redact: Any) -> list[tuple[datetime, str, str]]:
    """(when, what kind, text) of everything about one incident, oldest first.

    What is not linked to the incident by id (the check's observations, the key's events without
    an incident) is taken from a window around it: from 5 minutes before it opened to a minute
    after it was resolved, but never past the end of the same check's previous incident nor into
    its next one (a check that fails again soon after a resolve has two incidents, each its own).
    """
    inc = st.get_incident(incident_id)
    if inc is None:
        return []
    start = inc.opened_at - timedelta(minutes=5)
    end = inc.resolved_at + timedelta(minutes=1) if inc.resolved_at else datetime.max.replace(tzinfo=UTC)
    for other in st.find_incidents(since=start, host=inc.host, check=inc.check, play=inc.play):
        if other.id < inc.id and other.resolved_at is not None:  # its resolve is its own
            start = max(start, other.resolved_at + timedelta(microseconds=1))
        elif other.id > inc.id:
            end = min(end, other.opened_at)
    out: list[tuple[datetime, str, str]] = []
    for r in reversed(st.recent_results(play=inc.play, host=inc.host, check=inc.check, limit=20, since=start,
                                        until=min(end, inc.resolved_at or end))):
        if r.observed_at < end:
            text = f"{r.state.name}" + (f" value={r.value}" if r.value else "") + (f" error={r.error}" if r.error else "")
            out.append((r.observed_at, "observed", text))
    for e in st.recent_events(incident_id=incident_id, limit=500):
        out.append((e.at, "decided", f"{e.kind}: {e.message}"))
    for e in st.recent_events(key=inc.key, limit=500, since=max(start, inc.opened_at - timedelta(seconds=1))):
        if e.incident_id is None and e.at < end:
            out.append((e.at, "decided", f"{e.kind}: {e.message}"))
    for a in st.action_runs(incident_id=incident_id, limit=500):
        flag = "failed" if a.failed else "changed" if a.changed else "ok"
        out.append((a.started_at, "done", f"{a.task} [{a.module}] by {a.actor}: {flag}"
                    + (" (check mode)" if a.check_mode else "") + (f": {a.msg}" if a.msg else "")))
    for n in st.list_notifications(incident_id=incident_id):
        delivery = (f"delivered {n.sent_at:%H:%M:%S}" if n.status == "sent" else
                    f"{n.status}" + (f" after {n.attempts} attempt(s): {n.last_error}" if n.attempts else ""))
        out.append((n.created_at, "told", f"{n.kind} to {n.target} via {n.route or '-'}: {n.title} ({delivery})"))
    if inc.resolved_at:
        out.append((inc.resolved_at, "observed", "resolved: OK again"))
    out.sort(key=lambda row: row[0])
    return [(at, kind, redact(text)) for at, kind, text in out]
