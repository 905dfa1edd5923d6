"""Action: send a message through the notification system (routes, outbox, apprise)."""
from __future__ import annotations

import hashlib
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from agent.modules.base import ActionModule, ActionResult, Params, Refers, RunContext
from agent.rendering import SandboxedTemplates, TemplateRenderer, render_or_fallback


class NotifyActionParams(Params):
    route: Annotated[str | None, Refers("route")] = Field(
        None, description="named route from the inventory; default: routed by severity")
    title: str = Field(description="message title")
    body: str | None = Field(None, description="message text (give body or template)")
    template: Annotated[str | None, Refers("template")] = Field(
        None, description="template file name in templates/, rendered with the play's vars, e.g. emergency.md.j2"
    )
    severity: Literal["info", "warning", "critical"] = Field("warning", description="info, warning or critical")
    tags: list[str] = Field(default_factory=list, description="tags routes can match on")

    @field_validator("template")
    @classmethod
    def _bare_name(cls, name: str | None) -> str | None:
        if name is not None and ("/" in name or "\\" in name or name.startswith(".")):
            raise ValueError(f"template {name!r} must be a file name in templates/, not a path")
        return name

    @model_validator(mode="after")
    def _body_or_template(self) -> NotifyActionParams:
        if (self.body is None) == (self.template is None):
            raise ValueError("give exactly one of body or template")
        return self


class NotifyAction(ActionModule):
    """Hands the message to ``ctx.notifier``, which queues it (or previews it in check mode)."""

    name: ClassVar[str] = "notify"
    Params: ClassVar[type[NotifyActionParams]] = NotifyActionParams
    description: ClassVar[str] = "Send a message to a route (queued in the outbox, delivered by apprise)"
    supports_check_mode: ClassVar[bool] = True
    template_vars: ClassVar[frozenset[str]] = frozenset({"title", "severity", "host", "tags", "reason"})

    async def run(self, params: NotifyActionParams, ctx: RunContext) -> ActionResult:
        if ctx.notifier is None:
            return ActionResult(failed=True, msg="notifications are not configured")
        body = params.body if params.body is not None else self._render(params, ctx)
        # The notifier computes the targets and only queues when not in check mode.
        outcome = dict(
            await ctx.notifier.notify(
                route=params.route,
                title=params.title,
                body=body,
                severity=params.severity,
                host=ctx.host.name,
                tags=tuple(params.tags),
                check_mode=ctx.check_mode,
                # Sent once per run and its runs again, unless what it says changed.
                once=f"{ctx.message_key}:{_digest(params.title)}" if ctx.message_key else None,
            )
        )
        if outcome.get("error"):
            return ActionResult(failed=True, msg=f"cannot notify: {outcome['error']}", data=outcome)
        targets = outcome.get("targets") or []
        where = f"route {params.route}" if params.route else f"{params.severity} routes"
        verb = "would notify" if ctx.check_mode else "notified"
        if outcome.get("already_sent"):
            return ActionResult(msg=f"already sent by the run cut short this run finishes ({where}): {params.title}",
                                data=outcome)
        return ActionResult(
            changed=True, msg=f"{verb} {where} ({len(targets)} target(s)): {params.title}", data=outcome
        )

    @staticmethod
    def _render(params: NotifyActionParams, ctx: RunContext) -> str:
        # Render with the notification system's own renderer when it exposes one, so the
        # message looks like every other; a broken template falls back to a plain body
        # (render_or_fallback) because a typo must not cost the operator the message.
        renderer: TemplateRenderer = getattr(ctx.notifier, "templating", None) or SandboxedTemplates()
        template_vars: dict[str, Any] = {
            **ctx.template_vars,
            "title": params.title,
            "severity": params.severity,
            "host": ctx.host.name,
            "tags": list(params.tags),
            "reason": ctx.reason,
        }
        assert params.template is not None  # the validator guarantees body or template
        return render_or_fallback(renderer, params.template, template_vars)


def _digest(title: str) -> str:
    return hashlib.sha256(title.encode()).hexdigest()[:16]
