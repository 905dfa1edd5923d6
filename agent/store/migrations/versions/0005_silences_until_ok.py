"""A silence can last until its check is OK again: ``ok_after``, set by a play's task that names
``silence_until_ok`` (the emergency's own halt and stop are not alerted as new problems): the
first OK reading observed after it ends the silence.

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("silences", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ok_after", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("silences", schema=None) as batch_op:
        batch_op.drop_column("ok_after")
