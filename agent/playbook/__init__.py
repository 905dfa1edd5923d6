"""The playbook and inventory language: typed models, safe loading, validation, templating.

The engine and CLI use :func:`load_config`; it never raises for bad input and returns every
problem as a :class:`Diagnostic` with ``file:line:column``. See ``models.py`` (playbooks) and
``inventory.py`` (inventory) for the language reference.

The names below are imported on first use (PEP 562), not with the package: importing one light
submodule (``agent.playbook.files``, ``agent.playbook.diagnostics``) runs this file first, and
importing every submodule here (pydantic models, the check registry, Jinja) cost each process
that needs only ``real_path`` about 0.25 s of CPU: ``agent inbox`` and ``agent events-listener``
at every stack start, and every ``agent`` command.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.playbook.binding import BoundCheck, bind_task_params
    from agent.playbook.diagnostics import Diagnostic
    from agent.playbook.inventory import (
        AlertTemplates,
        Group,
        Host,
        Inventory,
        NotifySettings,
        Route,
        RouteMatch,
        Target,
        resolve_hosts,
    )
    from agent.playbook.loader import Config, LoadResult, load_config
    from agent.playbook.models import Budget, Check, Playbook, Remediation, Schedule, Source, Task
    from agent.playbook.templating import TemplateError, Templating
    from agent.playbook.thresholds import Threshold

_HOME = {
    "BoundCheck": "binding", "bind_task_params": "binding",
    "Diagnostic": "diagnostics",
    "AlertTemplates": "inventory", "Group": "inventory", "Host": "inventory", "Inventory": "inventory",
    "NotifySettings": "inventory", "Route": "inventory", "RouteMatch": "inventory", "Target": "inventory",
    "resolve_hosts": "inventory",
    "Config": "loader", "LoadResult": "loader", "load_config": "loader",
    "Budget": "models", "Check": "models", "Playbook": "models", "Remediation": "models",
    "Schedule": "models", "Source": "models", "Task": "models",
    "TemplateError": "templating", "Templating": "templating",
    "Threshold": "thresholds",
}

__all__ = [
    "AlertTemplates", "BoundCheck", "Budget", "Check", "Config", "Diagnostic", "Group", "Host",
    "Inventory", "LoadResult", "NotifySettings", "Playbook", "Remediation", "Route", "RouteMatch",
    "Schedule", "Source", "Target", "Task", "TemplateError", "Templating", "Threshold",
    "bind_task_params", "load_config", "resolve_hosts",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
