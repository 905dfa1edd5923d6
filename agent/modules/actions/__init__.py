"""Action modules. ``ALL`` lists them for the registry."""
from __future__ import annotations

from agent.modules.actions.backup import BackupAction
from agent.modules.actions.backup_verify import BackupVerifyAction
from agent.modules.actions.bot import BotAction
from agent.modules.actions.command import CommandAction
from agent.modules.actions.db import DbAction
from agent.modules.actions.drift import DriftAction
from agent.modules.actions.exchange import ExchangeAction
from agent.modules.actions.notify import NotifyAction
from agent.modules.actions.report import ReportAction
from agent.modules.actions.restore import RestoreAction
from agent.modules.actions.supervisor import SupervisorAction
from agent.modules.base import ActionModule

ALL: list[type[ActionModule]] = [
    SupervisorAction,
    NotifyAction,
    CommandAction,
    ReportAction,
    ExchangeAction,
    BotAction,
    BackupAction,
    BackupVerifyAction,
    RestoreAction,
    DbAction,
    DriftAction,
]
