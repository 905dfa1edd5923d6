"""Alert lifecycle: announced state, suppression and escalation of incidents; grouped
messages (notification_incidents); operator silences.

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("announced_state", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("announced_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("eligible_since", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("suppressed", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("escalation_level", sa.Integer(), server_default="0", nullable=False))
    # Incidents opened before this migration were alerted the old way: count them as announced.
    op.execute("UPDATE incidents SET announced_state = state, announced_at = last_notified_at "
               "WHERE notify_count > 0")
    op.create_table(
        "notification_incidents",
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name=op.f("fk_notification_incidents_incident_id_incidents")),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"],
                                name=op.f("fk_notification_incidents_notification_id_notifications")),
        sa.PrimaryKeyConstraint("notification_id", "incident_id", name=op.f("pk_notification_incidents")),
    )
    with op.batch_alter_table("notification_incidents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notification_incidents_incident_id"), ["incident_id"], unique=False)
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("matchers", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("expired_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_silences")),
    )
    with op.batch_alter_table("silences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_silences_ends_at"), ["ends_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("silences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_silences_ends_at"))
    op.drop_table("silences")
    with op.batch_alter_table("notification_incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_incidents_incident_id"))
    op.drop_table("notification_incidents")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        for column in ("escalation_level", "suppressed", "eligible_since", "announced_at", "announced_state"):
            batch_op.drop_column(column)
