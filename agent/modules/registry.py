"""The explicit module registry, built once at start-up.

No import-time discovery: :func:`default_registry` lists every shipped module. An unknown
module name or a clash is a load-time error, never a surprise on first use.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from agent.modules.base import ActionModule, CheckModule
from botwarden.errors import ConfigError


@dataclass
class Registry:
    checks: dict[str, type[CheckModule]] = field(default_factory=dict)
    actions: dict[str, type[ActionModule]] = field(default_factory=dict)

    def add_check(self, module: type[CheckModule]) -> None:
        _add(self.checks, module, "check")

    def add_action(self, module: type[ActionModule]) -> None:
        _add(self.actions, module, "action")

    def check(self, name: str) -> type[CheckModule]:
        try:
            return self.checks[name]
        except KeyError:
            raise ConfigError(f"unknown check module {name!r}",
                              hint=f"known: {', '.join(sorted(self.checks))}") from None

    def action(self, name: str) -> type[ActionModule]:
        try:
            return self.actions[name]
        except KeyError:
            raise ConfigError(f"unknown action module {name!r}",
                              hint=f"known: {', '.join(sorted(self.actions))}") from None


def _add(table: dict, module: type, kind: str) -> None:
    name = getattr(module, "name", None)
    if not name or not isinstance(name, str):
        raise ConfigError(f"{kind} module {module.__qualname__} has no name")
    if name in table and table[name] is not module:
        raise ConfigError(
            f"{kind} module name clash: {name!r} is claimed by {table[name].__module__} "
            f"and {module.__module__}"
        )
    table[name] = module


def default_registry() -> Registry:
    """Every shipped module. Add new modules here (and nowhere else)."""
    from agent.modules import actions, checks

    reg = Registry()
    for c in checks.ALL:
        reg.add_check(c)
    for a in actions.ALL:
        reg.add_action(a)
    return reg
