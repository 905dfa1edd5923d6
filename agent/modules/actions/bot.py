"""Action: drive the bot's control endpoints (halt, resume, cancel-all, close-all).

``POST {bot.url}/control/<action>`` with the bearer token read from the environment variable
named by ``bot.control_token_env`` (the token is never logged, never in a message or result),
sent over the bot's unix socket ``bot.control_socket_path`` when the host has one (the stack's
default) rather than over TCP, unless ``url`` names another bot.
Check mode (and every run, first) reads ``GET /health`` to say what would change, e.g.
``would halt (currently healthy, 2 positions, 3 orders)``. A bot that does not answer is a
failed task with a clear message; the emergency playbook marks the step ``ignore_errors``
because its exchange steps do not need the bot.

``halt`` and ``resume`` also work while the bot is down: they write the bot's halt file (the
host's ``bot.halt_path``) themselves, then have the running bot confirm; see
:mod:`agent.modules.actions._bot_halt` for what each outcome means.
"""
from __future__ import annotations

import dataclasses
import os
import time
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from agent.core.values import Timeout
from agent.http import RequestFailed, Response, get_ok, request, safe_url
from agent.modules.actions import _bot_halt
from agent.modules.base import ActionModule, ActionResult, Params, RunContext, Secret
from botwarden.errors import ModuleError

BotVerb = Literal["halt", "resume", "cancel-all", "close-all", "status"]


class BotActionParams(Params):
    action: BotVerb = Field(
        description="halt: stop new entries, recorded in the halt file (holds while the bot is down and across "
                    "a restore) and confirmed by the bot once no entry is in flight; resume: end every halt (or "
                    "halt_ids); cancel-all: the bot cancels its resting orders except the stop-losses of open "
                    "positions; close-all: the bot halts, closes every position, cancels what can add exposure; "
                    "status: read /health only (never changes anything; for until: conditions)")
    reason: str | None = Field(None, description="halt: why, shown by `agent halt --status` and /health; "
                                                 "default: why the task runs")
    halt_ids: list[str] | None = Field(
        None, description="resume: end only these halts (ids from a halt's result, halt_id); default: every halt")
    halt_file: str | None = Field(None, description="halt/resume: the bot's halt file; default: the host's "
                                                    "bot.halt_path")
    url: str | None = Field(None, description="the bot's base URL; default: the host's bot.url")
    token_env: Annotated[str | None, Secret("env_name")] = Field(
        None, description="environment variable holding the control bearer token (its value is secret); "
                          "default: the host's bot.control_token_env")
    timeout: Timeout | None = Field(
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
        if not isinstance(bot_vars, dict):
            bot_vars = {}
        base = (params.url or bot_vars.get("url") or "").rstrip("/")
        halt_path = params.halt_file or bot_vars.get("halt_path")
        token_env = params.token_env or bot_vars.get("control_token_env") or "BOTWARDEN_BOT_TOKEN"
        # The token goes to the bot's 0600 unix socket when it has one, never to whoever holds its TCP port.
        sock = str(bot_vars.get("control_socket_path") or "") if not params.url else ""
        if not base and not (params.action in ("halt", "resume") and halt_path):
            return ActionResult(failed=True, msg="no bot URL: give url or define bot.url for the host")
        timeout = min(params.timeout or ctx.timeout, ctx.timeout)
        data: dict[str, Any] = {"action": params.action}
        try:
            before = await _health(base, timeout) if base else None
            health_error = None if base else "no bot URL (bot.url)"
        except ModuleError as exc:
            before, health_error = None, exc.message
        if params.action in ("halt", "resume"):
            return await self._halt_or_resume(params, ctx, base=base, token_env=str(token_env), timeout=timeout,
                                              path=str(halt_path) if halt_path else None, health=before,
                                              health_error=health_error, unix_socket=sock or None)
        if before is None:
            return ActionResult(failed=True, msg=f"the bot does not answer: {health_error}", data=data)
        halted_before = before.get("status") == "halted"
        data.update(status_before=before.get("status"), halted_before=halted_before,
                    positions_before=len(before.get("positions") or []), open_orders_before=before.get("open_orders"))
        state = _describe(before)
        data["health"] = before
        data["last_loop_epoch"] = _epoch(before.get("last_loop_at"))
        data["at_epoch"] = time.time()  # when this ran; a later status's last_loop_epoch is compared with it
        if params.action == "status":
            return ActionResult(changed=False, msg=state, data=data)

        if params.action == "cancel-all" and not before.get("open_orders"):
            return ActionResult(changed=False, msg=f"no open orders ({state})", data=data)
        if ctx.check_mode:
            return ActionResult(changed=True, msg=f"would {params.action} ({state})", data=data)

        token = os.environ.get(token_env)
        if not token:
            return ActionResult(failed=True, data=data,
                                msg=f"${token_env} is not set in the agent's environment: cannot authenticate "
                                    "to the bot's control endpoint")
        url = f"{base}/control/{params.action}"
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


    @staticmethod
    async def _halt_or_resume(params: BotActionParams, ctx: RunContext, *, base: str, token_env: str,
                              timeout: float, path: str | None, health: dict[str, Any] | None,
                              health_error: str | None, unix_socket: str | None = None) -> ActionResult:
        by = f"agent ({ctx.reason})"[:120] if ctx.reason else "agent"
        if params.action == "halt":
            result = await _bot_halt.halt(base=base, token_env=token_env, timeout=timeout, path=path,
                                          reason=params.reason or ctx.reason or "halted by the agent", by=by,
                                          health=health, health_error=health_error, ctx=ctx,
                                          unix_socket=unix_socket)
        else:
            result = await _bot_halt.resume(base=base, token_env=token_env, timeout=timeout, path=path,
                                            ids=params.halt_ids, health=health, health_error=health_error, ctx=ctx,
                                            unix_socket=unix_socket)
        return dataclasses.replace(result, data={**result.data, "action": params.action, "at_epoch": time.time(),
                                                 "last_loop_epoch": _epoch((health or {}).get("last_loop_at"))})


_DONE = {"cancel-all": "cancelled the bot's orders (the stop-losses of open positions kept)",
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
