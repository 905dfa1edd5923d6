"""``agent halt`` and ``agent resume``: the operator's hands on the bot's circuit breaker.

* ``agent halt --status``: per host, every halt in force (id, kind, since, by whom, why) read
  from the bot's halt file, and whether the running bot reports itself halted. Works with the
  bot dead: the halt file is the truth the bot reads before it trades.
* ``agent halt [--reason TEXT]``: take a halt (written to the halt file, then confirmed by the
  bot once no entry is in flight); it holds while the bot is down and across a restore.
* ``agent resume [ID...] [--yes]``: end the halts (all, or the ids given) after showing them and
  asking (``--yes`` skips the question; without a terminal it refuses, exit 5). Nothing else
  resumes trading.

Both act through the ``bot`` action (the same code the playbooks use), take the lock of the
bot program so they wait for a running emergency or restart, and land in the audit trail with
the operator as actor (``agent history``). Exit 1 when the halt is not recorded or the resume
failed.
"""
from __future__ import annotations

import asyncio
import getpass
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from agent.cli import options
from agent.cli.common import confirm_or_exit, console, escape, load, store_url
from agent.modules.base import ActionResult, HostContext, RunContext
from botwarden.errors import BotwardenError, ConfigError, ExitCode

REQUEST_TIMEOUT_S = 10.0
LOCK_WAIT_S = 120.0


class NotHaltedError(BotwardenError):
    exit_code = ExitCode.FAILED


def halt(
    status: Annotated[bool, typer.Option("--status", "-s", help="show the halts in force and why; change nothing")]
    = False,
    reason: Annotated[str | None, typer.Option("--reason", "-m", help="why (shown by --status)")] = None,
    limit: options.Limit = None,
    inventory: options.Inventory = options.DEFAULT_INVENTORY,
    store: options.Store = None,
) -> None:
    """Halt new entries on the bot (durable), or show why it is halted (--status)."""
    config = load(inventory, None)
    hosts = _hosts(config, limit)
    if status:
        for host in hosts:
            _print_status(host, asyncio.run(_run("status", host, {})))
        return
    who = getpass.getuser()
    params = {"reason": reason or f"halted by {who} (agent halt)"}
    failed = False
    for host in hosts:
        result = asyncio.run(_locked_run(config, "halt", host, params, who=who, store=store))
        recorded = bool(result.data.get("durable"))
        failed |= not recorded
        style = "yellow" if recorded else "red"
        word = "halted" if recorded else "NOT HALTED"
        console.print(f"[{style}]{word}: {escape(f'[{host.name}]')}[/] {escape(result.msg)}")
    if failed:
        raise NotHaltedError("the halt could not be recorded on every host (see above)")


def resume(
    ids: Annotated[list[str] | None, typer.Argument(help="end only these halts (ids from `agent halt --status`)")]
    = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    limit: options.Limit = None,
    inventory: options.Inventory = options.DEFAULT_INVENTORY,
    store: options.Store = None,
) -> None:
    """Resume trading: end the bot's halts (all, or the given ids) after confirmation."""
    config = load(inventory, None)
    hosts = _hosts(config, limit)
    previews = {h.name: asyncio.run(_run("resume", h, {"halt_ids": ids}, check_mode=True)) for h in hosts}
    todo = [h for h in hosts if previews[h.name].changed]
    for host in hosts:
        if not previews[host.name].changed:
            console.print(f"[green]ok: {escape(f'[{host.name}]')}[/] {escape(previews[host.name].msg)}")
    if not todo:
        return
    for host in todo:
        console.print(f"{escape(f'[{host.name}]')} {escape(previews[host.name].msg)}")
    question = f"Resume trading on {', '.join(h.name for h in todo)}? The bot may open positions at once."
    if not yes:
        confirm_or_exit(question)
    who = getpass.getuser()
    failed = False
    for host in todo:
        result = asyncio.run(_locked_run(config, "resume", host, {"halt_ids": ids}, who=who, store=store))
        failed |= result.failed
        style = "red" if result.failed else "yellow"
        word = "failed" if result.failed else "resumed"
        console.print(f"[{style}]{word}: {escape(f'[{host.name}]')}[/] {escape(result.msg)}")
    if failed:
        raise typer.Exit(ExitCode.FAILED)


def _hosts(config: Any, limit: str | None) -> list[HostContext]:
    hosts = list(config.hosts.values())
    if limit:
        wanted = {h.strip() for h in limit.split(",")}
        hosts = [h for h in hosts if h.name in wanted]
    if not hosts:
        raise ConfigError("no host" + (f" within --limit {limit}" if limit else " in the inventory"))
    return hosts


async def _run(action: str, host: HostContext, params: Mapping[str, Any], *, check_mode: bool = False,
               reason: str = "") -> ActionResult:
    from agent.http import close_shared_clients
    from agent.modules.actions.bot import BotAction, BotActionParams

    ctx = RunContext(host=host, timeout=REQUEST_TIMEOUT_S, check_mode=check_mode, reason=reason)
    try:
        return await BotAction().run(BotActionParams.model_validate({"action": action, **params}), ctx)
    finally:
        await close_shared_clients()


async def _locked_run(config: Any, action: str, host: HostContext, params: Mapping[str, Any], *, who: str,
                      store: str | None) -> ActionResult:
    """Run the bot action under the bot program's lock and audit it with the operator as actor."""
    from agent.engine.locks import target_locks
    from agent.store import Store

    actor = f"{who} via agent {action}"
    program = (host.vars.get("bot") or {}).get("program", "bot")
    started = datetime.now(UTC)
    async with target_locks(config.settings.path(config.settings.var_dir) / "locks",
                            [f"{host.name}/program:{program}"], owner=actor, timeout=LOCK_WAIT_S):
        result = await _run(action, host, params, reason=actor)
    st = Store(store_url(config, store), redact=config.templating.redact)  # the audited row is redacted
    try:
        st.migrate()
        st.record_action_run(play=f"agent {action}", host=host.name, task=f"{action} the bot", module="bot",
                             params=dict(params), reason=f"operator ran agent {action}", actor=actor,
                             check_mode=False, changed=result.changed, failed=result.failed, msg=result.msg,
                             started_at=started, finished_at=datetime.now(UTC))
    finally:
        st.close()
    return result


def _print_status(host: HostContext, result: ActionResult) -> None:
    from botwarden.halts import HaltFile

    path = (host.vars.get("bot") or {}).get("halt_path")
    halts = [h.as_dict() for h in HaltFile(path).active()] if path else list(result.data.get("health", {})
                                                                              .get("halts") or [])
    name = escape(f"[{host.name}]")
    if halts:
        console.print(f"[red]HALTED: {name}[/] {len(halts)} halt(s) in force" + (f" ({escape(path)})" if path else ""))
        for h in halts:
            console.print(f"  {escape(h['id'])}  {escape(h['kind'])}  since {escape(h['at'] or '?')}  by "
                          f"{escape(h['by'])}: {escape(h['reason'])}")
        console.print("  resume with: agent resume" + (f" --limit {escape(host.name)}" if host.name else ""))
    else:
        console.print(f"[green]not halted: {name}[/] no halt in force" + (f" ({escape(path)})" if path else ""))
    if result.data.get("health"):
        health = result.data["health"]
        console.print(f"  bot: answering, {escape(str(health.get('status')))}"
                      + (f" ({escape(str(health.get('halted_reason')))})" if health.get("halted_reason") else ""))
    else:
        console.print(f"  bot: {escape(result.msg)} (it reads the halts when it starts and before every entry)")
