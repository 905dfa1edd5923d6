"""What the store's operation groups share: the session contract and the UTC check."""
from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, datetime

from sqlalchemy.orm import Session


class OperationsBase:
    """Subclasses provide ``_session()``: a fresh committed transaction on the store, the open
    one on a transaction object."""

    def _session(self) -> AbstractContextManager[Session]:  # pragma: no cover - abstract
        raise NotImplementedError


def aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: pass a timezone-aware UTC datetime")
    return value.astimezone(UTC)
