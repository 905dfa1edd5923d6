"""botwarden agent: a resident ops agent that keeps a trading bot safe.

Public surface is small on purpose; internals live in subpackages:
``agent.playbook`` (language), ``agent.modules`` (checks and actions), ``agent.engine``
(evaluation, scheduling, remediation), ``agent.store`` (SQLAlchemy), ``agent.notify``
(routes, outbox, apprise) and ``agent.cli``.
"""
from __future__ import annotations

__version__ = "0.1.0"
