"""From a check's result to a state, and from a stream of states to hard transitions.

Two pure steps, kept apart so each is easy to test:

* :func:`classify` turns one :class:`~agent.modules.base.CheckResult` into a raw state using the
  check's ``expect`` or ``warning``/``critical`` thresholds, with ``clear`` hysteresis;
* :class:`CheckStatus.advance` applies ``after`` (consecutive results) and ``for`` (duration)
  and reports a :class:`Transition` only when the *hard* state changes. Only hard transitions
  alert or remediate.

Rules (Nagios/Icinga semantics, stated so an operator can predict them):
* a problem becomes hard after ``after`` consecutive problem results AND once the first of
  them is at least ``for`` old (each condition only if given);
* once hard, a change between problem states (WARNING -> CRITICAL) is hard at once;
* one OK result recovers at once (use ``clear`` for hysteresis on a value), unless the check sets
  ``recover_after`` (Gatus' success threshold): then a hard problem recovers only after that many
  consecutive OK results spanning ``recover_span`` (the pipeline: one retry interval per result
  after the first), so one lucky reading of an upstream that fails intermittently (an
  exchange answering HTTP 500 to most requests) neither resolves the incident nor, at the next
  failure, opens a second one; the readings in between are soft OK (``healthy`` counts them), and
  another problem state read meanwhile turns hard by ``after``/``for`` like a new problem;
* a check that errors or times out is UNKNOWN with the reason; UNKNOWN counts as a problem.

Clocks: ``for`` is measured on the monotonic clock (``Observation.mono``), so a step of the
wall clock neither delays nor hastens a hard transition; wall times (``at``) are what is stored
and shown. A status read back after a restart maps its stored wall time onto the monotonic
clock once (:func:`agent.engine.status_records.status_from_record`).
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent.core.states import Severity, State
from agent.modules.base import CheckResult

if TYPE_CHECKING:
    from agent.playbook.binding import BoundCheck
    from agent.playbook.templating import Templating


@dataclass(frozen=True)
class Observation:
    """One classified result."""

    state: State
    value: Any
    error: str | None
    summary: str
    at: datetime
    duration_ms: float = 0.0
    facts: Mapping[str, Any] = field(default_factory=dict)
    mono: float = field(default_factory=time.monotonic)
    """The monotonic clock when observed: what ``for`` durations are measured on."""
    causes: tuple[str, ...] | None = None
    """The causes the check's ``occurrence`` expression named (each as text), ``None`` when the
    check has none or the result could not be read (a probe error): then nothing is compared."""


@dataclass(frozen=True)
class Transition:
    """A change of hard state."""

    key: str
    old: State
    new: State
    at: datetime
    observation: Observation

    @property
    def is_recovery(self) -> bool:
        return self.new is State.OK

    @property
    def is_problem_start(self) -> bool:
        return self.old is State.OK and self.new.is_problem


def _expression_namespace(vars_: Mapping[str, Any], result: CheckResult, value: Any) -> dict[str, Any]:
    ns = dict(vars_)
    ns.update(result.facts)
    ns["facts"] = dict(result.facts)
    ns["value"] = value
    return ns


def classify(
    bound: BoundCheck,
    result: CheckResult,
    templating: Templating,
    previous: State,
    at: datetime,
    duration_ms: float = 0.0,
    mono: float | None = None,
) -> Observation:
    """Decide the raw state of ``result`` for the bound check ``bound``.

    ``bound`` is an :class:`agent.playbook.BoundCheck`; ``templating`` evaluates its expressions in
    the sandbox. ``previous`` is the last raw (soft) state, used by ``clear`` hysteresis.
    Never raises: an expression that fails makes the observation UNKNOWN with the reason.
    """
    check = bound.check
    now = time.monotonic() if mono is None else mono
    if result.error:
        return Observation(State.UNKNOWN, result.value, result.error, result.summary, at, duration_ms,
                           result.facts, now)
    try:
        value_expr = check.value or bound.module.default_value
        base_ns = _expression_namespace(bound.vars, result, result.value)
        value = templating.evaluate(value_expr, base_ns) if value_expr else result.value
        ns = _expression_namespace(bound.vars, result, value)
        if check.expect:
            ok = bool(templating.evaluate(check.expect, ns))
            state = State.OK if ok else Severity(check.severity).to_state()
        else:
            state = _threshold_state(check, value, ns, templating)
        if previous.is_problem and previous is not State.UNKNOWN and check.clear and state < previous:
            # Hysteresis: leave (or soften) a bad state only once `clear` holds.
            if not _clear_holds(check.clear, value, ns, templating):
                state = previous
        occurrence = getattr(check, "occurrence", None)
        causes = cause_texts(templating.evaluate(occurrence, ns)) if occurrence else None
    except Exception as exc:  # noqa: BLE001 - a broken expression must not kill the check loop
        return Observation(State.UNKNOWN, result.value, f"evaluation failed: {exc}", result.summary, at,
                           duration_ms, result.facts)
    return Observation(state, value, None, result.summary, at, duration_ms, result.facts, causes=causes)


def cause_texts(named: Any) -> tuple[str, ...] | None:
    """What an ``occurrence`` expression gave, as the texts of its causes: a list (any iterable
    but a text or a mapping: Jinja's ``map`` gives a generator) gives its items, ``None`` nothing to
    compare, anything else one cause. Empty items are no cause; order is kept, repeats dropped."""
    if named is None:
        return None
    iterable = isinstance(named, Iterable) and not isinstance(named, (str, bytes, Mapping))
    items = list(named) if iterable else [named]
    return tuple(dict.fromkeys(text for item in items if item is not None and (text := str(item).strip())))


def _threshold_state(check: Any, value: Any, ns: Mapping[str, Any], templating: Templating) -> State:
    from agent.playbook.thresholds import Threshold

    if value is None:
        raise ValueError("the check produced no value to compare with its thresholds")
    if check.critical and Threshold.parse(check.critical).breached(value, ns, templating):
        return State.CRITICAL
    if check.warning and Threshold.parse(check.warning).breached(value, ns, templating):
        return State.WARNING
    return State.OK


def _clear_holds(clear: str, value: Any, ns: Mapping[str, Any], templating: Templating) -> bool:
    from agent.playbook.thresholds import Threshold

    text = clear.strip()
    if text[:2] in (">=", "<=", "==", "!=") or text[:1] in (">", "<"):
        return Threshold.parse(text).breached(value, ns, templating)
    return bool(templating.evaluate(text, ns))


@dataclass
class CheckStatus:
    """The evolving state of one (play, host, check). Persisted in ``check_states``."""

    key: str
    hard: State = State.OK
    soft: State = State.OK
    hard_since: datetime | None = None
    bad_since: datetime | None = None
    consecutive: int = 0
    last_value: Any = None
    last_error: str | None = None
    last_summary: str = ""
    last_at: datetime | None = None
    incident_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    bad_since_mono: float | None = None
    """``bad_since`` on the monotonic clock (what ``for`` is measured with)."""
    healthy: int = 0
    """Consecutive OK results while the hard state is a problem (``recover_after`` counts them)."""
    healthy_since_mono: float | None = None
    """The monotonic clock of the first of them."""

    def snapshot(self) -> CheckStatus:
        """A copy that later results do not change (what a decision persists)."""
        return replace(self, extra={k: (dict(v) if isinstance(v, dict) else v) for k, v in self.extra.items()})

    def advance(self, obs: Observation, *, after: int = 1, for_seconds: float | None = None,
                recover_after: int = 1, recover_span: float = 0.0) -> Transition | None:
        """Fold one observation in; return the hard transition it causes, if any. ``recover_span``:
        how old the first of ``recover_after`` OK results must be too (readings run sooner than
        the retries, a dependent asking, confirm nothing by their number alone)."""
        self.last_value, self.last_error, self.last_summary, self.last_at = (
            obs.value, obs.error, obs.summary, obs.at)
        if self.hard_since is None:
            self.hard_since = obs.at  # the hard state (OK to begin with) holds since the first result
        old_hard = self.hard
        was_recovering = self.recovering
        if obs.state is State.OK:
            self.soft, self.consecutive, self.bad_since, self.bad_since_mono = State.OK, 0, None, None
            if old_hard is State.OK:
                return None
            self.healthy += 1
            if self.healthy == 1:
                self.healthy_since_mono = obs.mono
            if recover_after > 1 and (self.healthy < recover_after or self.healthy_since_mono is None
                                      or obs.mono - self.healthy_since_mono < recover_span):
                return None  # recovering: soft OK, hard still the problem until confirmed
            return self._become(State.OK, obs)
        self.healthy, self.healthy_since_mono = 0, None
        if self.soft is State.OK:
            self.bad_since, self.bad_since_mono, self.consecutive = obs.at, obs.mono, 1
        else:
            self.consecutive += 1
            if self.bad_since_mono is None:
                self.bad_since_mono = obs.mono
        self.soft = obs.state
        if old_hard.is_problem and (obs.state is old_hard or not was_recovering):
            return self._become(obs.state, obs) if obs.state is not old_hard else None
        # (recovering, another problem: judged like a new one, by ``after`` and ``for``: a slow
        # first answer of an exchange back from an outage is not a second alert)
        old_enough = for_seconds is None or (
            self.bad_since_mono is not None and obs.mono - self.bad_since_mono >= for_seconds)
        if self.consecutive >= max(1, after) and old_enough:
            return self._become(obs.state, obs)
        return None

    @property
    def recovering(self) -> bool:
        """The latest result is OK but the hard problem awaits ``recover_after`` OK results."""
        return self.hard.is_problem and self.soft is State.OK

    def _become(self, new: State, obs: Observation) -> Transition:
        t = Transition(self.key, self.hard, new, obs.at, obs)
        self.hard, self.hard_since, self.healthy, self.healthy_since_mono = new, obs.at, 0, None
        return t
