"""``agent run``: the resident agent (supervised by supervisord in the stack)."""
from __future__ import annotations

import asyncio
import logging
import signal

from agent.cli import options
from agent.playbook.files import real_path


def run(
    paths: options.PlaybookPaths = None,
    inventory: options.Inventory = options.DEFAULT_INVENTORY,
    check: options.CheckMode = False,
    store: options.Store = None,
) -> None:
    """Run checks on their schedules, alert and remediate until SIGTERM. SIGHUP reloads."""
    from agent.engine.agent import Agent, ConfigSource

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per job run drowns the log
    targets = list(paths) if paths else [real_path(inventory).parent / "playbooks"]
    agent = Agent(ConfigSource(inventory, targets), store_url=store, check_mode=check)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await agent.run(stop)

    code = asyncio.run(main())
    if code:
        raise SystemExit(code)
