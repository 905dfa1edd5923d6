"""What the store's operation groups share: the session contract and UTC handling."""
from __future__ import annotations

import json
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.orm import Session


class OperationsBase:
    """Subclasses provide ``_session()``: a fresh committed transaction on the store, the open
    one on a transaction object."""

    def _session(self) -> AbstractContextManager[Session]:  # pragma: no cover - abstract
        raise NotImplementedError


def aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: pass a timezone-aware UTC datetime")
    return value.astimezone(timezone.utc)


def value_text(value: Any) -> str | None:
    """The text stored for a check value: strings as they are, the rest as JSON (or repr)."""
    if value is None or isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def as_utc(value: datetime) -> datetime:
    # Aggregates (min/max) bypass the column type, so SQLite hands back a naive value or text.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
