"""The playbook and inventory language: typed models, safe loading, validation, templating.

The engine and CLI use :func:`load_config`; it never raises for bad input and returns every
problem as a :class:`Diagnostic` with ``file:line:column``. See ``models.py`` (playbooks) and
``inventory.py`` (inventory) for the language reference.
"""
from __future__ import annotations

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

__all__ = [
    "AlertTemplates", "BoundCheck", "Budget", "Check", "Config", "Diagnostic", "Group", "Host",
    "Inventory", "LoadResult", "NotifySettings", "Playbook", "Remediation", "Route", "RouteMatch",
    "Schedule", "Source", "Target", "Task", "TemplateError", "Templating", "Threshold",
    "bind_task_params", "load_config", "resolve_hosts",
]
