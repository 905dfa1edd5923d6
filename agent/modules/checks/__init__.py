"""Check modules. ``ALL`` lists them for the registry."""
from __future__ import annotations

from agent.modules.base import CheckModule
from agent.modules.checks.command import CommandCheck
from agent.modules.checks.drift import DriftCheck
from agent.modules.checks.exchange import ExchangeCheck
from agent.modules.checks.file import FileCheck
from agent.modules.checks.heartbeat import HeartbeatCheck
from agent.modules.checks.http import HttpCheck
from agent.modules.checks.log import LogCheck
from agent.modules.checks.process import ProcessCheck
from agent.modules.checks.prometheus import PrometheusCheck
from agent.modules.checks.sql import SqlCheck
from agent.modules.checks.supervisor import SupervisorCheck
from agent.modules.checks.system import SystemCheck
from agent.modules.checks.tls import TlsCheck

ALL: list[type[CheckModule]] = [
    SupervisorCheck,
    HttpCheck,
    PrometheusCheck,
    ProcessCheck,
    SystemCheck,
    CommandCheck,
    HeartbeatCheck,
    ExchangeCheck,
    SqlCheck,
    LogCheck,
    FileCheck,
    TlsCheck,
    DriftCheck,
]
