"""Small check and action modules for the playbook tests (not the shipped ones)."""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from agent.core.values import Duration
from agent.modules.base import (
    ActionModule,
    ActionResult,
    CheckModule,
    CheckResult,
    Params,
    Refers,
    RunContext,
)
from agent.modules.registry import Registry


class HttpCheck(CheckModule):
    name = "http"
    description = "GET a URL"
    default_value = "latency_ms"
    facts: ClassVar[dict[str, str]] = {"status_code": "HTTP status", "json": "decoded body", "latency_ms": "round trip"}

    class Params(Params):
        url: str = Field(description="URL to GET")
        timeout: Duration = Field(5.0, description="request timeout")

    async def run(self, params: Any, ctx: RunContext) -> CheckResult:
        return CheckResult(facts={"status_code": 200}, value=1.0)


class ProcessCheck(CheckModule):
    name = "process"
    description = "resources of a supervised program"
    default_value = "memory_percent"

    class Params(Params):
        program: str = Field(description="supervisord program")

    async def run(self, params: Any, ctx: RunContext) -> CheckResult:
        return CheckResult(facts={"memory_percent": 10.0}, value=10.0)


class EventCheck(CheckModule):
    name = "events"
    description = "no default value: thresholds need value:"

    class Params(Params):
        pattern: str = Field(".*", description="regex")

    async def run(self, params: Any, ctx: RunContext) -> CheckResult:
        return CheckResult()


class SupervisorAction(ActionModule):
    name = "supervisor"
    description = "start/stop/restart a program"

    class Params(Params):
        action: Literal["start", "stop", "restart"] = Field(description="what to do")
        program: str = Field(description="supervisord program")

    async def run(self, params: Any, ctx: RunContext) -> ActionResult:
        return ActionResult(changed=True)


class CommandAction(ActionModule):
    name = "command"
    description = "run a command"

    class Params(Params):
        argv: list[str] = Field(min_length=1, description="program and arguments")
        token: str | None = Field(None, description="a secret passed along")

    async def run(self, params: Any, ctx: RunContext) -> ActionResult:
        return ActionResult()


class NotifyAction(ActionModule):
    name = "notify"
    description = "send a message through a route"
    template_vars: ClassVar[frozenset[str]] = frozenset({"message"})

    class Params(Params):
        route: Annotated[str | None, Refers("route")] = Field(None, description="route name")
        message: str = Field("", description="body")
        template: Annotated[str | None, Refers("template")] = Field(None, description="template file")

    async def run(self, params: Any, ctx: RunContext) -> ActionResult:
        return ActionResult()


class CloseAction(ActionModule):
    name = "close"
    description = "close positions (a number parameter, for rendered types)"

    class Params(Params):
        slippage_pct: float = Field(1.0, description="limit price distance, percent")
        coin: str | None = Field(None, description="one coin, default all")

    async def run(self, params: Any, ctx: RunContext) -> ActionResult:
        return ActionResult()


def make_registry() -> Registry:
    reg = Registry()
    for check in (HttpCheck, ProcessCheck, EventCheck):
        reg.add_check(check)
    for action in (SupervisorAction, CommandAction, NotifyAction, CloseAction):
        reg.add_action(action)
    return reg
