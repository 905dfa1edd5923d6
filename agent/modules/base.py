"""The module contract.

Every check or action type is one file defining one subclass of :class:`CheckModule` or
:class:`ActionModule`. Its ``Params`` model is the single source of truth for validation and
for the generated reference (``agent modules``): every field needs a ``description``.

Contract for ``run``:

* it is a coroutine; blocking calls (XML-RPC, psutil, ``stat`` of a path that may be on a dead
  mount, the SDK) go through :meth:`RunContext.run_blocking`, which runs them on the bounded
  thread pool of the module's kind (:mod:`agent.modules.probe_pools`), so the event loop never
  blocks and a probe stuck in the kernel never takes a thread the outbox or an action needs;
* it honours ``ctx.timeout`` for its own I/O (the engine also enforces it from outside);
* expected failures raise :class:`botwarden.errors.ModuleError` (or return a result with
  ``error`` set); the engine turns them into UNKNOWN / failed, never a traceback;
* an action computes what would change first and guards only the side effect with
  ``if not ctx.check_mode:`` (the Ansible way), so ``--check`` previews exactly.
"""
from __future__ import annotations

import asyncio
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic.fields import FieldInfo

from agent.core.redaction import MASK, string_leaves, url_credentials


@dataclass(frozen=True)
class Refers:
    """Parameter metadata: the value names a ``route`` of the inventory or a ``template`` file
    of the templates directory. ``agent validate`` checks that it exists (and that a template
    compiles), so a misspelt name fails at load, not when the step runs.

    Use: ``route: Annotated[str | None, Refers("route")] = Field(None, description=...)``.
    """

    kind: Literal["route", "template"]


class Params(BaseModel):
    """Base for module parameter models: unknown keys are errors, values are immutable.

    A field that holds a secret carries :class:`Secret` in its ``Annotated`` metadata; see
    :func:`secret_values` and :func:`audit_view` for what the engine does with it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


SecretKind = Literal["value", "url", "env_name"]


@dataclass(frozen=True)
class Secret:
    """Marks a ``Params`` field as secret: ``headers: Annotated[dict[str, str], Secret()]``.

    ``kind``: ``value`` (every string in the field is a secret: shown as ``***`` in the audit
    trail and redacted wherever it appears), ``url`` (the URL's password and secret query
    values are), ``env_name`` (the field names an environment variable whose value is one).
    The engine registers them with the configuration's redactor when the parameters are bound,
    before the module runs, so a module's own message that quotes one is redacted too.
    """

    kind: SecretKind = "value"


def secret_kind(info: FieldInfo) -> SecretKind | None:
    """The :class:`Secret` kind of a field, or ``None`` when it is not secret."""
    return next((m.kind for m in info.metadata if isinstance(m, Secret)), None)


def secret_values(params: BaseModel, environ: Mapping[str, str] | None = None) -> set[str]:
    """The secret strings of bound ``params`` (nested models included), to register for redaction."""
    env = os.environ if environ is None else environ
    found: set[str] = set()
    for name, info in type(params).model_fields.items():
        value = getattr(params, name)
        kind = secret_kind(info)
        if kind == "value":
            for leaf in string_leaves(value):  # "Bearer <token>": the token alone is secret too
                found.add(leaf)
                found.update(word for word in leaf.split() if len(word) >= 8)
        elif kind == "url" and isinstance(value, str):
            found |= url_credentials(value)
        elif kind == "env_name" and isinstance(value, str) and env.get(value):
            found.add(env[value])
        for nested in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(nested, BaseModel):
                found |= secret_values(nested, env)
    return found


def audit_view(params: BaseModel) -> dict[str, Any]:
    """``params`` as JSON-ready data for the audit trail, every ``value`` secret masked as ``***``
    (a mapping keeps its keys: ``{"Authorization": "***"}``)."""
    out = params.model_dump(mode="json", by_alias=True)
    for name, info in type(params).model_fields.items():
        key = info.alias or name
        value = getattr(params, name)
        if secret_kind(info) == "value" and out.get(key) is not None:
            out[key] = _masked(out[key])
        elif isinstance(value, BaseModel):
            out[key] = audit_view(value)
    return out


def _masked(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return MASK


@dataclass(frozen=True)
class CheckResult:
    """What a check observed.

    ``facts`` are exposed to ``expect``/``warning``/``critical``/``clear`` expressions by name
    (e.g. ``status_code``, ``json``, ``latency_ms``). ``value`` is the primary fact used for
    thresholds when the check does not name one with ``value:``. ``error`` set means the
    probe itself failed: the state is UNKNOWN with this reason.
    """

    facts: Mapping[str, Any] = field(default_factory=dict)
    value: Any = None
    error: str | None = None
    summary: str = ""
    occurrence: str | None = None
    """Which occurrence of the failure observed this is (a supervisord program: the start time of
    its last process, given only once that process has ended; None while it starts or runs).
    When it changes while the check stays in a problem state, the problem happened again
    although no state changed (a restarted program that died before any check saw it running):
    the engine treats that as a new failure of the open incident. A module gives it only for a
    failure that has happened, never for a recovery under way (a restart seen STARTING is not a
    new crash, and its later exit must still be one)."""
    seen_at: float | None = None
    """Unix time of the sign of life a good result rests on, when it is older than the probe (a
    heartbeat: its last beat). ``None``: the moment the probe ran. Checks that ``depends_on`` this
    one are told on their own only when this one was seen healthy after their problem began."""
    evidence_at: float | None = None
    """Unix time of the newest event a count over a window rests on (a log check: its newest
    matching line). A dependent failing on events that all happened before its parent recovered is
    still the parent's fault, whatever its state, until a newer one comes (see
    :mod:`agent.notify.lifecycle.dependency_hold`)."""
    evidence_since: float | None = None
    """Unix time of the oldest event such a count rests on (a log check: its oldest matching line in
    the window): events older than the parent's fault (before its last healthy reading) are not its."""

    @classmethod
    def failed(cls, error: str, **facts: Any) -> CheckResult:
        return cls(facts=facts, error=error)


@dataclass(frozen=True)
class ActionResult:
    """What an action did (or, in check mode, would do)."""

    changed: bool = False
    failed: bool = False
    skipped: bool = False
    msg: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The ``result`` / ``register`` view used by ``until``, ``when`` and templates."""
        out = dict(self.data)
        out.update(changed=self.changed, failed=self.failed, skipped=self.skipped, msg=self.msg)
        return out


T = TypeVar("T")


class BlockingRunner(Protocol):
    """Runs a blocking call off the event loop (:class:`agent.modules.probe_pools.ProbePool`)."""

    async def run(self, fn: Callable[..., T], *args: Any) -> T: ...


class Notifier(Protocol):
    """What the ``notify`` action needs from the notification system."""

    async def notify(
        self,
        *,
        route: str | None,
        title: str,
        body: str,
        severity: str,
        host: str,
        tags: tuple[str, ...] = (),
        check_mode: bool = False,
        attachments: Sequence[str] = (),
        once: str | None = None,
    ) -> Mapping[str, Any]:
        """Queue (or, in check mode, preview) a message. ``once``: a key under which it is queued
        at most once (a run again of a play run cut short does not send its messages again); the
        answer then says ``already_sent`` instead of ``queued``."""
        ...


@dataclass(frozen=True)
class HostContext:
    """A host from the inventory as modules see it: its name and its merged vars.

    Well-known vars: ``supervisor.url`` (e.g. ``unix:///abs/var/supervisor.sock``),
    ``bot.*`` and ``exchange.*`` from the stack settings.
    """

    name: str
    vars: Mapping[str, Any] = field(default_factory=dict)

    @property
    def supervisor_url(self) -> str | None:
        sup = self.vars.get("supervisor") or {}
        return sup.get("url") if isinstance(sup, Mapping) else None


@dataclass(frozen=True)
class RunContext:
    """Everything a module may use while it runs."""

    host: HostContext
    timeout: float = 10.0
    check_mode: bool = False
    notifier: Notifier | None = None
    template_vars: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""  # why this runs (the check and transition, or the person and command)
    blocking: BlockingRunner | None = None
    """Where blocking calls run; None: asyncio's default executor (one-shot runs, tests)."""
    message_key: str | None = None
    """The task's key in a recorded play run (the same in the runs again of one cut short): a
    message it sends under this key is sent once (:class:`Notifier` ``once``)."""

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker thread of this run's pool (see ``blocking``)."""
        if self.blocking is None:
            return await asyncio.to_thread(fn, *args)
        return await self.blocking.run(fn, *args)


class _Module(ABC):
    name: ClassVar[str]
    """The YAML key that selects this module (``http``, ``supervisor``)."""
    Params: ClassVar[type[Params]]
    description: ClassVar[str]
    """One line for the reference."""


class CheckModule(_Module):
    default_value: ClassVar[str | None] = None
    """The fact thresholds compare when a check has no ``value:``."""
    facts: ClassVar[Mapping[str, str]] = {}
    """Documented facts: name -> description (shown by ``agent modules``)."""
    fact_values: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    """Facts that only ever hold one of a few values: name -> the values (``agent validate`` finds
    an ``expect:`` or a remediation's ``when:`` that compares one with anything else, such as
    ``state == 'running'``, which is never true)."""

    @abstractmethod
    async def run(self, params: Any, ctx: RunContext) -> CheckResult: ...


class ActionModule(_Module):
    supports_check_mode: ClassVar[bool] = True
    destructive: ClassVar[bool] = False
    """Destructive actions make a play ask for confirmation unless ``--yes``."""
    template_vars: ClassVar[frozenset[str]] = frozenset()
    """Names the module adds to the step's variables when it renders a template file it names
    (a ``Refers("template")`` parameter); ``agent validate`` checks the file reads no other."""

    @abstractmethod
    async def run(self, params: Any, ctx: RunContext) -> ActionResult: ...
