"""The agent's store: SQLAlchemy on SQLite (WAL), schema versioned by shipped Alembic migrations.

Public surface::

    store = Store("sqlite:////abs/var/agent.db"); store.migrate()
    with store.transaction() as tx:          # one unit of work
        incident_id = tx.open_incident(...)
        tx.enqueue_notification(...)
"""
from __future__ import annotations

from agent.store._ops_outbox import REPEAT_NOTE
from agent.store.records import (
    CHECK_STATE_VERSION,
    NOTIFICATION_KINDS,
    NOTIFICATION_STATUSES,
    ActionRunRecord,
    CheckResultRecord,
    CheckStateRecord,
    EventRecord,
    IncidentRecord,
    NotificationKind,
    NotificationRecord,
    NotificationStatus,
    PlayRunRecord,
    SilenceRecord,
    check_key,
)
from agent.store.store import Store, StoreTransaction

__all__ = [
    "CHECK_STATE_VERSION",
    "NOTIFICATION_KINDS",
    "NOTIFICATION_STATUSES",
    "REPEAT_NOTE",
    "ActionRunRecord",
    "CheckResultRecord",
    "CheckStateRecord",
    "EventRecord",
    "IncidentRecord",
    "NotificationKind",
    "NotificationRecord",
    "NotificationStatus",
    "PlayRunRecord",
    "SilenceRecord",
    "Store",
    "StoreTransaction",
    "check_key",
]
