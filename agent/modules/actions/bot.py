"""Action: drive the bot's control endpoints (halt, resume, cancel-all, close-all).

``POST {bot.url}/control/<action>`` with the bearer token read from the environment variable
named by ``bot.control_token_env`` (the token is never logged, never in a message or result),
sent over the bot's unix socket ``bot.control_socket_path`` when the host has one (the stack's
default) rather than over TCP, unless ``url`` names another bot.
Check mode (and every run, first) reads ``GET /health`` to say what would change, e.g.
``would halt (currently healthy, 2 positions, 3 orders)``. A bot that does not answer is a
failed task with a clear message; the emergency playbook marks the step ``ignore_errors``
because its exchange steps do not need the bot.
"""
from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from agent.core.values import Duration
from agent.http import RequestFailed, Response, get_ok, request, safe_url
from agent.modules.base import ActionModule, ActionResult, Params, RunContext, Secret
from botwarden.errors import ModuleError

BotVerb = Literal["halt", "resume", "cancel-all", "close-all", "status"]


class BotActionParams(Params):
    action: BotVerb = Field(
        description="halt: stop new entries (persisted); resume: clear every halt; cancel-all: the bot "
                    "cancels its resting orders; close-all: the bot halts, closes every position, cancels orders; "
                    "status: read /health only (never changes anything; for until: conditions)")
    url: str | None = Field(None, description="the bot's base URL; default: the host's bot.url")
    token_env: Annotated[str | None, Secret("env_name")] = Field(
        None, description="environment variable holding the control bearer token (its value is secret); "
                          "default: the host's bot.control_token_env")
    timeout: Duration | None = Field(
        None, description="timeout of each request (the whole request); default and upper bound: the task's")


class BotAction(ActionModule):
    """See the module docstring."""

    name: ClassVar[str] = "bot"
    Params: ClassVar[type[BotActionParams]] = BotActionParams
    description: ClassVar[str] = "Halt, resume, cancel-all or close-all through the bot's control endpoints"
    supports_check_mode: ClassVar[bool] = True
    destructive: ClassVar[bool] = True

    async def run(self, params: BotActionParams, ctx: RunContext) -> ActionResult:
        bot_vars = ctx.host.vars.get("bot") or {}
        base = (params.url or (bot_vars.get("url") if isinstance(bot_vars, dict) else None) or "").rstrip("/")
        if not base:
            return ActionResult(failed=True, msg="no bot URL: give url or define bot.url for the host")
        timeout = min(params.timeout or ctx.timeout, ctx.timeout)
        data: dict[str, Any] = {"action": params.action}
        try:
            before = await _health(base, timeout)
        except ModuleError as exc:
            return ActionResult(failed=True, msg=f"the bot does not answer: {exc.message}", data=data)
        halted_before = before.get("status") == "halted"
        data.update(status_before=before.get("status"), halted_before=halted_before,
                    positions_before=len(before.get("positions") or []), open_orders_before=before.get("open_orders"))
        state = _describe(before)
        data["health"] = before
        data["last_loop_epoch"] = _epoch(before.get("last_loop_at"))
        data["at_epoch"] = time.time()  # when this ran; a later status's last_loop_epoch is compared with it
        if params.action == "status":
            return ActionResult(changed=False, msg=state, data=data)

        if params.action == "halt" and halted_before:
            data["halted"] = True
            return ActionResult(changed=False, msg=f"already halted ({before.get('halted_reason')})", data=data)
        if params.action == "resume" and not halted_before:
            data["halted"] = False
            return ActionResult(changed=False, msg=f"not halted ({state})", data=data)
        if params.action == "cancel-all" and not before.get("open_orders"):
            return ActionResult(changed=False, msg=f"no open orders ({state})", data=data)
        if ctx.check_mode:
            return ActionResult(changed=True, msg=f"would {params.action} ({state})", data=data)

        token_env = params.token_env or (bot_vars.get("control_token_env") if isinstance(bot_vars, dict) else None) \
            or "BOTWARDEN_BOT_TOKEN"
        token = os.environ.get(token_env)
        if not token:
            return ActionResult(failed=True, data=data,
                                msg=f"${token_env} is not set in the agent's environment: cannot authenticate "
                                    "to the bot's control endpoint")
        url = f"{base}/control/{params.action}"
        # The token goes to the bot's 0600 unix socket when it has one, never to whoever holds its TCP port.
        sock = bot_vars.get("control_socket_path") if isinstance(bot_vars, dict) and not params.url else None
        try:
            response = await request("POST", url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout,
                                     unix_socket=sock or None)
        except RequestFailed as exc:
            return ActionResult(failed=True, data=data, msg=f"the bot does not answer: {exc}")
        body = _json(response)
        if response.status == 401:
            return ActionResult(failed=True, data=data,
                                msg=f"the bot refused the control token (401): ${token_env} differs from the "
                                    "bot's token")
        if response.status != 200:
            why = body.get("error") if isinstance(body, dict) else response.text[:200]
            return ActionResult(failed=True, data=data,
                                msg=f"POST {safe_url(url)} -> HTTP {response.status}: {why}")
        data["response"] = body
        data["at_epoch"] = time.time()
        try:
            after = await _health(base, timeout)
            data.update(status_after=after.get("status"), halted=after.get("status") == "halted",
                        positions_after=len(after.get("positions") or []), open_orders_after=after.get("open_orders"))
        except ModuleError:
            pass  # the control call succeeded; a failed re-read does not undo it
        return ActionResult(changed=True, msg=f"{_DONE[params.action]} (was {state})", data=data)


_DONE = {"halt": "halted new entries", "resume": "resumed trading", "cancel-all": "cancelled the bot's orders",
         "close-all": "closed the bot's positions"}


async def _health(base: str, timeout: float) -> dict[str, Any]:
    url = f"{base}/health"
    try:
        body = _json(await get_ok(url, timeout=timeout))
    except RequestFailed as exc:
        raise ModuleError(str(exc)) from None
    if not isinstance(body, dict):
        raise ModuleError(f"GET {safe_url(url)} failed: not a JSON object")
    return body


def _json(response: Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _epoch(iso: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(iso)).timestamp() if iso else None
    except ValueError:
        return None


def _describe(health: dict[str, Any]) -> str:
    status = health.get("status", "unknown")
    n_pos = len(health.get("positions") or [])
    n_ord = health.get("open_orders") or 0
    return f"currently {status}, {n_pos} position(s), {n_ord} open order(s)"
