"""The page's configuration: what it runs on, what is wrong with the files, and edits noticed.

The page starts on what the resident agent would start on (:data:`agent.engine.agent.START_ORDER`:
the files on disk, else the last good configuration, else the files as read or their valid part, else the built-in
one) and never exits for a broken file: it shows what is wrong on every page and in
``/healthz``, and loads the files again when they change (checked every few seconds, a cheap
``stat`` of each file), exactly as the agent does.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("agent.web")
CHECK_EVERY_S = 2.0


@dataclass(frozen=True)
class ConfigState:
    """What the page shows about its configuration."""

    origin: str
    note: str | None
    """One line when the page does not run on the files on disk (None when it does)."""
    errors: str
    """Every problem of the files on disk, as ``agent validate`` prints them."""


def state_of(chosen: Any) -> ConfigState:
    if chosen.origin == "disk":
        return ConfigState("disk", None, "")
    return ConfigState(chosen.origin, chosen.config.templating.redact(chosen.summary()),
                       chosen.config.templating.redact(chosen.details()))


class ConfigWatch:
    """Loads the configuration again when its files change and hands it to ``apply``."""

    def __init__(self, source: Any, state: ConfigState, apply: Callable[[Any, ConfigState], None]) -> None:
        self.source = source
        self.state = state
        self._apply = apply
        self._fingerprint: Any = None

    async def prime(self) -> None:
        self._fingerprint = await asyncio.to_thread(self.source.fingerprint)

    async def check(self) -> bool:
        """Reload when a file changed; True when what the page runs on changed."""
        from agent.engine.config_source import START_ORDER

        fingerprint = await asyncio.to_thread(self.source.fingerprint)
        if fingerprint == self._fingerprint:
            return False
        self._fingerprint = fingerprint
        chosen, disk = await asyncio.to_thread(self.source.choose, START_ORDER)
        if chosen is None:  # not even the built-in one: keep what runs, say what is wrong
            errors = "\n".join(str(d) for d in disk.diagnostics)
            self.state = ConfigState(self.state.origin, "the configuration on disk does not load", errors)
            return True
        self.state = state_of(chosen)
        self._apply(chosen.config, self.state)
        log.info("configuration loaded again: %s", self.state.note or "the files on disk")
        return True

    async def run(self, stop: asyncio.Event, changed: Callable[[], None]) -> None:
        """Check every :data:`CHECK_EVERY_S` until ``stop``; ``changed()`` after a change."""
        while not stop.is_set():
            try:
                if await self.check():
                    changed()
            except Exception:
                log.exception("loading the configuration again failed")
            try:
                await asyncio.wait_for(stop.wait(), CHECK_EVERY_S)
            except TimeoutError:
                pass
