"""Typed models of the playbook language (v1).

These models are the reference for the language: every field carries a description. In YAML
a check or task names its module by key (``http: {url: ...}``); the loader moves that key to
``module``/``params`` before validation, so ``module`` and ``params`` are not written by
operators. ``source`` is filled by the loader (file and line) for messages and the audit trail.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    field_validator,
    model_validator,
)

from agent.core.states import Severity
from agent.core.values import DAY, Between, Grace, HoldFor, Interval, Pause, Timeout, Timezone
from agent.playbook.cron import Crontab, WallClockOnce, crontab_trigger
from agent.playbook.thresholds import Threshold

MAX_AFTER = 1000
"""Most consecutive results ``after`` may ask for (with the interval, bounded by a rule too)."""


def _bool_to_expr(value: Any) -> Any:
    # `changed_when: false` is idiomatic Ansible; keep expressions uniformly strings.
    return ("true" if value else "false") if isinstance(value, bool) else value


def _one_to_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _tags(value: Any) -> Any:
    if isinstance(value, str) and ("," in value or " " in value.strip()):
        words = [w for w in value.replace(",", " ").split() if w]
        raise ValueError(f"{value!r} is one tag with a comma or space in it; a list is written "
                         f"[{', '.join(words)}]")
    return _one_to_list(value)


Expr = Annotated[str, BeforeValidator(_bool_to_expr)]
"""A Jinja2 expression without braces: ``status_code == 200``; ``true``/``false`` allowed."""
NameList = Annotated[list[str], BeforeValidator(_one_to_list)]
"""A list of names; a single name may be written without brackets."""
TagList = Annotated[list[str], BeforeValidator(_tags)]
"""A list of tags; a single tag may be written without brackets (``tags: a, b`` is refused)."""
PLAY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class _Model(BaseModel):
    # strict: YAML scalars are taken as written, never converted (see the agent.core.values docstring)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)


class Source(_Model):
    """Where a check or task is written."""

    file: str = Field(description="the file, as given to the loader")
    line: int = Field(ge=1, le=10_000_000, description="1-based line of the item")

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class Schedule(_Model):
    """When a play's checks run: a fixed interval, or a cron expression in a timezone."""

    every: Interval | None = Field(None, description="run every this long (15s, 5m)")
    cron: Crontab | None = Field(None, description="5-field crontab expression ('0 8 * * 1-5')")
    timezone: Timezone = Field("UTC", description="IANA timezone the cron expression is read in")

    @model_validator(mode="after")
    def _exactly_one(self) -> Schedule:
        if (self.every is None) == (self.cron is None):
            raise ValueError("a schedule needs exactly one of 'every' or 'cron'")
        return self

    def trigger(self) -> BaseTrigger:
        """The APScheduler trigger for this schedule."""
        if self.every is not None:
            return IntervalTrigger(seconds=self.every)
        return WallClockOnce(crontab_trigger(self.cron or "", ZoneInfo(self.timezone)))  # a fall-back hour: once


class Flapping(_Model):
    """Flap detection (Icinga's): the weighted share of state changes over the last ``window``
    results, recent changes weighing more (0.8 for the oldest to 1.2 for the newest). At or
    above ``start`` percent the check is FLAPPING: one notice, its alerts and remediation are
    paused; below ``stop`` percent it has settled: one notice, normal alerting resumes."""

    window: int = Field(20, ge=3, le=100, description="how many recent results are looked at")
    start: float = Field(50.0, gt=0, le=100, description="percent of weighted changes that starts flapping")
    stop: float = Field(25.0, ge=0, lt=100, description="percent below which flapping stops (< start)")

    @model_validator(mode="after")
    def _ordered(self) -> Flapping:
        if self.stop >= self.start:
            raise ValueError(f"flapping 'stop' ({self.stop:g}) must be below 'start' ({self.start:g})")
        return self


class Check(_Model):
    """One probe: a check module, and how its result maps to OK / WARNING / CRITICAL."""

    name: str = Field(description="unique within the play; defaults to '<module> <params>'")
    module: str = Field(description="the check module (written in YAML as its key)")
    params: dict[str, Any] = Field(default_factory=dict, description="the module's parameters (templated)")
    expect: Expr | None = Field(None, description="expression over the facts; false means `severity`")
    value: Expr | None = Field(None, description="expression giving the value thresholds compare; "
                                                 "default is the module's default value")
    occurrence: Expr | None = Field(None, description="expression naming the causes of the problem (a text or "
                                    "number, or a list of them, e.g. the reasons of the halts in force): while "
                                    "the check stays in the same problem state, a result naming a cause the "
                                    "previous one did not is a new occurrence, told once as an update of the "
                                    "open incident (and remediated again); a cause that ends while others stay "
                                    "is not news")
    warning: str | None = Field(None, description="threshold for WARNING, e.g. '> 80'")
    critical: str | None = Field(None, description="threshold for CRITICAL, e.g. '> 90'")
    clear: str | None = Field(None, description="threshold to leave a bad state (hysteresis), e.g. '< 75'; "
                                                "default: the negation of the breached threshold")
    severity: Annotated[Severity, Strict(False)] = Field(Severity.CRITICAL, description="state when `expect` is false")
    after: int = Field(1, ge=1, le=MAX_AFTER, description="consecutive bad results before the state is hard")
    recover_after: int = Field(1, ge=1, le=MAX_AFTER, description="consecutive OK results before a hard problem "
                               "recovers (a success threshold: one lucky reading of an upstream that fails "
                               "intermittently does not resolve, then alert again); the confirming readings "
                               "run 2 s apart, and the first must be 2 s old per reading after it")
    for_: HoldFor | None = Field(None, alias="for", description="the bad state lasted this long before it is hard "
                                                               "(at most 1d)")
    remediate: NameList = Field(default_factory=list, description="remediations of this play to run "
                                                                   "when the state turns hard")
    timeout: Timeout = Field(10.0, description="per-check timeout")
    every: Interval | None = Field(None, description="interval overriding the play's schedule")
    tags: TagList = Field(default_factory=list, description="labels for routing and silencing")
    depends_on: NameList = Field(default_factory=list, description="checks this one depends on (a name of this play, or "
                                 "PLAYBOOK/CHECK of another): while one of them has a problem on the host, "
                                 "this check's alerts are suppressed and listed in that parent's alert instead")
    flapping: Flapping | None = Field(None, description="detect flapping (absent = off); see Flapping")
    source: Source | None = Field(None, description="where the check is written (set by the loader)")

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("name"):
            data = {**data, "name": default_task_name(data.get("module"), data.get("params"))}
        return data

    @field_validator("warning", "critical", "clear")
    @classmethod
    def _threshold_syntax(cls, value: str | None) -> str | None:
        if value is not None:
            Threshold.parse(value)
        return value

    @property
    def warning_threshold(self) -> Threshold | None:
        return Threshold.parse(self.warning) if self.warning is not None else None

    @property
    def critical_threshold(self) -> Threshold | None:
        return Threshold.parse(self.critical) if self.critical is not None else None

    @property
    def clear_threshold(self) -> Threshold | None:
        """The explicit ``clear`` threshold, else ``None`` (callers negate the breached one)."""
        return Threshold.parse(self.clear) if self.clear is not None else None


def default_task_name(module: str | None, params: Any) -> str:
    """``supervisor action=restart program=bot``, short enough for a status line."""
    if module is None:
        return "block"
    if isinstance(params, dict):
        text = " ".join(f"{k}={v}" for k, v in params.items())
    else:
        text = "" if params is None else str(params)
    label = f"{module} {text}".strip()
    return label if len(label) <= 60 else label[:57] + "..."


# `register` is the Ansible name; pydantic warns that it shadows ABCMeta.register on the class,
# which nothing here uses (instances read the field).
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)

    class Task(_Model):
        """One step of a play, a remediation or a handler: an action module, or a block."""

        name: str = Field(description="shown in the run output; defaults to '<module> <params>'")
        module: str | None = Field(None, description="the action module (written in YAML as its key)")
        params: dict[str, Any] = Field(default_factory=dict, description="the module's parameters, rendered "
                                                                         "when the task runs")
        when: Expr | None = Field(None, description="run only when this expression is true")
        register: str | None = Field(None, description="store the result under this variable name")
        retries: int | None = Field(None, ge=0, le=100, description="retries until `until` holds (default 3 with "
                                                            "`until`, else 0)")
        delay: Pause = Field(1.0, description="pause between retries")
        until: Expr | None = Field(None, description="retry until this expression over `result` is true")
        ignore_errors: bool = Field(False, description="a failure does not stop the play")
        changed_when: Expr | None = Field(None, description="overrides the module's `changed`")
        failed_when: Expr | None = Field(None, description="overrides the module's `failed`")
        notify: NameList = Field(default_factory=list, description="handlers to run at the end if changed")
        silence_until_ok: NameList = Field(default_factory=list, description=(
            "checks (CHECK of this play, or PLAYBOOK/CHECK) this task puts in a problem state on purpose "
            "(a halt, a stop): once it ran, their alerts are silenced on this host until each is OK again "
            "(at most 7 days); a check that never failed meanwhile ends it at its next OK reading"))
        timeout: Timeout | None = Field(None, description="per-task timeout (default: the engine's)")
        block: list[Task] | None = Field(None, description="tasks run in order")
        rescue: list[Task] | None = Field(None, description="tasks run when a task of `block` fails")
        always: list[Task] | None = Field(None, description="tasks run after `block`/`rescue` in any case")
        source: Source | None = Field(None, description="where the task is written (set by the loader)")

        @model_validator(mode="before")
        @classmethod
        def _default_name(cls, data: Any) -> Any:
            if isinstance(data, dict) and not data.get("name"):
                data = {**data, "name": default_task_name(data.get("module"), data.get("params"))}
            return data

        @property
        def effective_retries(self) -> int:
            if self.retries is not None:
                return self.retries
            return 3 if self.until else 0


BUDGET_HISTORY_S = 2 * 86400.0
"""How far back the agent reads its remediation runs at start-up (2 days): a budget's window
may not be longer, or a restart would forget runs that still count."""


class Budget(_Model):
    """How often a remediation may run before the agent escalates instead."""

    max: int = Field(ge=1, le=100, description="runs allowed within the window")
    within: Annotated[float, Between(1.0, 7 * DAY)] = Field(description="the sliding window (at most 2d: a rule)")
    then: str | None = Field(None, description="playbook to run (and page) once the budget is spent")


class Remediation(_Model):
    """Steps that fix a check's problem, under a budget and a cooldown."""

    steps: list[Task] = Field(min_length=1, description="tasks, same syntax as `tasks`")
    budget: Budget | None = Field(None, description="limit on runs; past it, escalate")
    cooldown: Grace | None = Field(None, description="minimum time between two runs (0 = none)")


class Playbook(_Model):
    """A playbook file: checks on a schedule, their remediations, and on-demand tasks."""

    version: Literal[1] = Field(description="language version; only 1 exists")
    name: str = Field(pattern=PLAY_NAME_PATTERN, description="unique name (agent run-playbook NAME)")
    description: str = Field("", description="what this play is for")
    hosts: str = Field("all", description="a host or group of the inventory, or 'all'")
    schedule: Schedule | None = Field(None, description="when checks run; absent = on demand only")
    vars: dict[str, Any] = Field(default_factory=dict, description="play vars; override host vars")
    confirm: str | None = Field(None, description="question asked before run-playbook (unless --yes)")
    on_interrupt: Literal["tell", "resume"] = Field(
        "tell", description="a run of `tasks` cut short (its process killed, or stopped by SIGHUP/SIGTERM between "
                            "two tasks): `tell` pages what was and was not done; `resume` (idempotent tasks only) "
                            "has the resident agent run the play again from its first task, then page")
    checks: list[Check] = Field(default_factory=list, description="probes run on the schedule")
    remediations: dict[str, Remediation] = Field(default_factory=dict, description="named fixes for checks")
    tasks: list[Task] = Field(default_factory=list, description="steps of `agent run-playbook NAME`")
    handlers: list[Task] = Field(default_factory=list, description="tasks run once at the end when notified")
    source: Annotated[Path, Strict(False)] | None = Field(None, description="the playbook file (set by the loader)")
