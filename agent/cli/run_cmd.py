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
    limit_malloc_arenas()
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


MALLOC_ARENAS = 1
"""glibc's malloc arenas for the resident agent (its default is 8 per core): each thread that
allocates gets an arena of its own, and the agent's few threads (the store's, apprise's
deliveries, the metrics server) each kept a partly used one. One: every thread allocates from the
main heap. Idle RSS with docs/performance.md's scenario, 30 s after the start, median of 8 samples:
99.1-99.3 MB with one arena (3 runs), 99.4-100.5 MB with two (5 runs), 101.3-101.5 MB with
glibc's default (2 runs); ``malloc_trim`` after the load gave nothing more. No thread of the agent
allocates hot, and Python's own allocations are serialized by the interpreter lock anyway."""


def limit_malloc_arenas() -> bool:
    """``mallopt(M_ARENA_MAX, MALLOC_ARENAS)`` (glibc's documented tunable, what the environment
    variable ``MALLOC_ARENA_MAX`` sets), before the agent starts a thread; False where the C
    library is not glibc (nothing changes there) or the environment already chose."""
    import ctypes
    import os

    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols: the C library's on Linux
    except (OSError, AttributeError):
        return False
    m_arena_max = -8  # <malloc.h>
    return bool(mallopt(m_arena_max, MALLOC_ARENAS))
