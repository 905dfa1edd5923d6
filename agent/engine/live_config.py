"""The configuration the agent runs now, shared by its collaborators and replaced by a reload."""
from __future__ import annotations

from pathlib import Path

from agent.playbook.binding import BoundCheck
from agent.playbook.loader import Config


class LiveConfig:
    """The current :class:`Config`, swapped as a whole by a reload (never edited in place).

    Collaborators keep this object, not a configuration: each reads ``current`` when it needs
    it, so a reload takes effect for all of them at once.
    """

    def __init__(self, config: Config) -> None:
        self._current = config
        self._checks = {bc.key: bc for bc in config.bound_checks}
        self.generation = 0
        """Incremented by every :meth:`replace` (watchers re-derive what to watch)."""

    @property
    def current(self) -> Config:
        return self._current

    def replace(self, config: Config) -> None:
        self._current = config
        self._checks = {bc.key: bc for bc in config.bound_checks}
        self.generation += 1

    def check(self, key: str) -> BoundCheck | None:
        """The bound check with ``key`` in the current configuration."""
        return self._checks.get(key)

    def checks(self) -> dict[str, BoundCheck]:
        """Every bound check of the current configuration, by key."""
        return self._checks

    @property
    def var_dir(self) -> Path:
        settings = self._current.settings
        return Path(settings.path(settings.var_dir))

    @property
    def lock_dir(self) -> Path:
        """Cross-process single-flight locks (shared with ``agent run-playbook``)."""
        return self.var_dir / "locks"
