"""Halt and resume for the ``bot`` action: the halt file first, then the bot's confirmation.

A halt must hold whether the bot is alive or not, so the agent writes it to the bot's halt file
itself (:mod:`botwarden.halts`, the host's ``bot.halt_path``): the bot reads that file when it
starts and again before every entry order. Then it asks the running bot to confirm
(``POST /control/halt``), which answers only once no entry order is being sent and none can
be. The result says exactly which of the two happened:

* recorded and confirmed: halted;
* recorded, not confirmed: the halt holds for every entry the bot decides from now on and
  when it starts, but a hung bot might still be sending one: the task fails so the play can
  stop the bot (the emergency playbook does);
* not recorded but confirmed: the bot wrote the file itself (``durable`` in its answer);
* neither: not halted, and the message says so.

Resume ends the halts in the file (all, or ``halt_ids``) and tells the bot, which re-reads
them; a bot that is down trades only once it is started again. A resume is always explicit: no
shipped playbook resumes a halt it did not take itself.
"""
from __future__ import annotations

import asyncio
import os
from typing import Any
from urllib.parse import urlencode

from agent.core.redaction import Redactor
from agent.http import RequestFailed, Response, request
from agent.modules.base import ActionResult, RunContext
from botwarden.halts import Halt, HaltFile, HaltFileError

MAX_BODY_BYTES = 256 * 1024
FILE_TIMEOUT_S = 10.0
NO_ANSWER = "it does not answer"


def describe_halts(halts: list[dict[str, Any]]) -> str:
    return "; ".join(f"{h.get('kind')}: {h.get('reason')} (by {h.get('by')}, id {h.get('id')})" for h in halts) \
        or "none"


async def _starting_point(path: str | None, health: dict[str, Any] | None, health_error: str | None,
                          ) -> tuple[dict[str, Any], HaltFile | None, list[dict[str, Any]]]:
    """What a halt or a resume starts from: the data so far, the halt file and the halts in force
    (read from the file when there is one, else from the bot's health)."""
    data: dict[str, Any] = _before(health, health_error)
    halts_file = HaltFile(path) if path else None
    in_force = await _active(halts_file) if halts_file else list(health.get("halts") or []) if health else []
    data["halts_before"] = in_force
    return data, halts_file, in_force


async def halt(*, base: str, token_env: str, timeout: float, path: str | None, reason: str, by: str,
               health: dict[str, Any] | None, health_error: str | None, ctx: RunContext,
               unix_socket: str | None = None) -> ActionResult:
    # The bot keeps the reason (its halt file, its database) and serves it on its unauthenticated
    # loopback /health: a secret pasted into it (or rendered by a playbook) is masked here, the one
    # place the agent writes a halt, with every secret the agent's environment holds.
    masked = Redactor.for_environment()
    reason, by = masked.redact(reason), masked.redact(by)
    data, halts_file, in_force = await _starting_point(path, health, health_error)
    already = [h for h in in_force if h.get("kind") == "control"]
    if ctx.check_mode:
        where = f"record a halt in {path}" if path else "ask the bot to halt"
        data.update(recorded=False, confirmed=False, durable=bool(already and path), halts=in_force,
                    halt_id=already[0].get("id") if already else None, halted=bool(already))
        if already:
            return ActionResult(changed=False, data=data, msg=f"already halted ({describe_halts(already)})")
        return ActionResult(changed=True, data=data, msg=f"would {where} and have the bot confirm "
                                                       f"({_state(health, health_error)})")
    recorded: Halt | None = None
    new = False
    file_error: str | None = None
    if halts_file is not None:
        try:
            recorded, new = await asyncio.wait_for(
                asyncio.to_thread(halts_file.add, "control", reason, by=by), FILE_TIMEOUT_S)
        except (HaltFileError, TimeoutError) as exc:
            file_error = str(exc) or f"timed out after {FILE_TIMEOUT_S:g}s"
    answer, bot_error = await _post(base, "halt", {"reason": reason, "by": by}, token_env, timeout, unix_socket)
    bot_error = _why(health, health_error, answer, bot_error)
    confirmed = answer is not None and answer.get("halted") is True  # no entry in flight, none can start
    bot_durable = answer is not None and answer.get("durable") is True
    halts_now = (answer or {}).get("halts") or ([h.as_dict() for h in await _active_halts(halts_file)]
                                               if halts_file else [])
    data.update(recorded=recorded is not None, confirmed=confirmed, durable=recorded is not None or bot_durable,
                halt_id=recorded.id if recorded else ((answer or {}).get("halt") or {}).get("id"),
                halts=halts_now, halted=recorded is not None or confirmed)
    if recorded is not None:
        kept = f"recorded in {path}" if new else f"already recorded in {path} ({recorded.describe()})"
        durable = f"{kept}: it holds while the bot is down and across a restore, until an explicit resume"
        if confirmed:
            return ActionResult(changed=new or not data["halted_before"], data=data,
                                msg=f"halted new entries: {durable}; the bot confirmed no entry is in flight")
        return ActionResult(failed=True, changed=new, data=data,
                            msg=f"halt {durable}; the bot reads it when it starts and before every entry. The "
                                f"running bot did not confirm ({bot_error}): if it is alive but stuck, an entry "
                                "it is sending may still go out")
    if confirmed and bot_durable:
        return ActionResult(changed=not data["halted_before"], data=data,
                            msg="halted new entries: the bot recorded the halt in its halt file and confirmed"
                                + (f" (the agent could not write it: {file_error})" if file_error else ""))
    if confirmed:
        return ActionResult(failed=True, changed=True, data=data,
                            msg="the running bot halted but could NOT record the halt: a restart would lose it ("
                                + (file_error or "no halt file known for this host (bot.halt_path)") + ")")
    return ActionResult(failed=True, data=data,
                        msg="NOT halted: "
                            + (f"the halt file could not be written ({file_error})" if file_error
                               else "no halt file known for this host (bot.halt_path)")
                            + f" and the bot did not take the halt ({bot_error})")


async def resume(*, base: str, token_env: str, timeout: float, path: str | None, ids: list[str] | None,
                 health: dict[str, Any] | None, health_error: str | None, ctx: RunContext,
                 unix_socket: str | None = None) -> ActionResult:
    data, halts_file, in_force = await _starting_point(path, health, health_error)
    to_end = [h for h in in_force if ids is None or h.get("id") in ids]
    if not to_end and not (health or {}).get("halted_reason"):
        data.update(halted=bool(in_force), halts=in_force, ended=[])
        what = f"none of {', '.join(ids)} is in force" if ids else "not halted"
        return ActionResult(changed=False, data=data, msg=f"{what} ({_state(health, health_error)})")
    if ctx.check_mode:
        data.update(halted=bool(in_force), halts=in_force, ended=[])
        return ActionResult(changed=True, data=data,
                            msg=f"would end {len(to_end)} halt(s): {describe_halts(to_end)}")
    ended: list[dict[str, Any]] = []
    if halts_file is not None:
        try:
            ended = [h.as_dict() for h in await asyncio.wait_for(asyncio.to_thread(halts_file.clear, ids),
                                                                 FILE_TIMEOUT_S)]
        except (HaltFileError, TimeoutError) as exc:
            data.update(halted=True, halts=in_force, ended=[])
            return ActionResult(failed=True, data=data,
                                msg=f"NOT resumed: {exc or 'the halt file is busy'}; the halts stay in force")
    query = {"by": "agent"} | ({"id": ids} if ids else {})
    answer, bot_error = await _post(base, "resume", query, token_env, timeout, unix_socket)
    bot_error = _why(health, health_error, answer, bot_error)
    if answer is not None:
        ended += [h for h in answer.get("ended") or [] if h.get("id") not in {e.get("id") for e in ended}]
    remaining = (answer or {}).get("halts")
    if remaining is None:
        remaining = [h.as_dict() for h in await _active_halts(halts_file)] if halts_file else in_force
    data.update(ended=ended, halts=remaining, halted=bool(remaining), confirmed=answer is not None)
    still = f"; still in force: {describe_halts(remaining)}" if remaining else ""
    if answer is None and halts_file is None:
        return ActionResult(failed=True, data=data, msg=f"NOT resumed: the bot did not answer ({bot_error})")
    bot = "the bot confirmed" if answer is not None else \
        f"the bot did not answer ({bot_error}): it trades once it is running again"
    return ActionResult(changed=bool(ended), data=data,
                        msg=f"resumed: ended {len(ended)} halt(s) ({describe_halts(ended)}); {bot}{still}")


def _why(health: dict[str, Any] | None, health_error: str | None, answer: dict[str, Any] | None,
         bot_error: str) -> str:
    """Why the bot did not answer: a bot that did not answer /health either is down or stuck,
    whatever the control request then said (no token, refused connection)."""
    if answer is None and health is None and (bot_error.startswith(NO_ANSWER) or "is not set" in bot_error):
        return f"{NO_ANSWER}: {health_error}"
    return bot_error


def _before(health: dict[str, Any] | None, health_error: str | None) -> dict[str, Any]:
    halted = bool(health and health.get("status") == "halted")
    return {"bot_answers": health is not None, "bot_error": health_error, "status_before": (health or {}).get("status"),
            "halted_before": halted, "health": health or {}}


def _state(health: dict[str, Any] | None, health_error: str | None) -> str:
    if health is None:
        return f"the bot does not answer: {health_error}"
    return f"currently {health.get('status', 'unknown')}, {len(health.get('positions') or [])} position(s), " \
           f"{health.get('open_orders') or 0} open order(s)"


async def _active_halts(halts_file: HaltFile | None) -> list[Halt]:
    if halts_file is None:
        return []
    return await asyncio.wait_for(asyncio.to_thread(halts_file.active), FILE_TIMEOUT_S)


async def _active(halts_file: HaltFile) -> list[dict[str, Any]]:
    return [h.as_dict() for h in await _active_halts(halts_file)]


async def _post(base: str, verb: str, query: dict[str, Any], token_env: str,
                timeout: float, unix_socket: str | None = None) -> tuple[dict[str, Any] | None, str]:
    """The bot's JSON answer to ``POST /control/<verb>`` (None and why when there is none); over
    ``unix_socket`` (the bot's 0600 control socket) when given, so the token never goes over TCP."""
    token = os.environ.get(token_env)
    if not base:
        return None, "no bot URL (bot.url)"
    if not token:
        return None, f"${token_env} is not set in the agent's environment: cannot authenticate to the bot"
    url = f"{base}/control/{verb}?{urlencode(query, doseq=True)}"
    try:
        response = await request("POST", url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout,
                                 max_body_bytes=MAX_BODY_BYTES, unix_socket=unix_socket)
    except RequestFailed as exc:
        return None, f"{NO_ANSWER}: {exc.reason}"
    body = _json(response)
    if response.status == 401:
        return None, f"it refused the control token (401): ${token_env} differs from the bot's token"
    if not isinstance(body, dict):
        return None, f"HTTP {response.status} without a JSON answer"
    if response.status != 200:
        return (body if verb == "halt" and body.get("halted") else None), \
            f"HTTP {response.status}: {str(body.get('error') or body)[:300]}"
    return body, ""


def _json(response: Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
