"""The module contract.

Every check or action type is one file defining one subclass of :class:`CheckModule` or
:class:`ActionModule`. Its ``Params`` model is the single source of truth for validation and
for the generated reference (``agent modules``): every field needs a ``description``.

Contract for ``run``:

* it is a coroutine; blocking libraries (XML-RPC, psutil on slow paths, the SDK) are called
  through ``asyncio.to_thread`` so the event loop never blocks;
* it honours ``ctx.timeout`` for its own I/O (the engine also enforces it from outside);
* expected failures raise :class:`agent.errors.ModuleError` (or return a result with
  ``error`` set); the engine turns them into UNKNOWN / failed, never a traceback;
* an action computes what would change first and guards only the side effect with
  ``if not ctx.check_mode:`` (the Ansible way), so ``--check`` previews exactly.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True)
class Refers:
    """Parameter metadata: the value names a ``route`` of the inventory or a ``template`` file
    of the templates directory. ``agent validate`` checks that it exists (and that a template
    compiles), so a misspelt name fails at load, not when the step runs.

    Use: ``route: Annotated[str | None, Refers("route")] = Field(None, description=...)``.
    """

    kind: Literal["route", "template"]


class Params(BaseModel):
    """Base for module parameter models: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
    ) -> Mapping[str, Any]: ...


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

    @abstractmethod
    async def run(self, params: Any, ctx: RunContext) -> CheckResult: ...


class ActionModule(_Module):
    supports_check_mode: ClassVar[bool] = True
    destructive: ClassVar[bool] = False
    """Destructive actions make a play ask for confirmation unless ``--yes``."""

    @abstractmethod
    async def run(self, params: Any, ctx: RunContext) -> ActionResult: ...
