"""The store's operations, written once for :class:`Store` and :class:`StoreTransaction`.

Each method obtains a session from ``self._session()``: a fresh committed transaction on
the store, the open one on a transaction object. The operations are grouped by what they
keep, one module each.
"""
from __future__ import annotations

from agent.store._ops_audit import AuditOperations
from agent.store._ops_checks import CheckOperations
from agent.store._ops_incidents import IncidentOperations
from agent.store._ops_outbox import OutboxOperations
from agent.store._ops_play_runs import PlayRunOperations

__all__ = ["Operations"]


class Operations(CheckOperations, IncidentOperations, OutboxOperations, AuditOperations, PlayRunOperations):
    """Every store operation. Subclasses provide ``_session()``."""
