"""Initial schema: results, check states, incidents, the outbox, the audit trail.

Datetimes are naive UTC columns here; the models' UtcDateTime makes them aware again.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-21 14:58:56.166442

"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('check_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('play', sa.String(length=200), nullable=False),
    sa.Column('host', sa.String(length=200), nullable=False),
    sa.Column('check', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('duration_ms', sa.Float(), nullable=True),
    sa.Column('observed_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("state IN ('OK','WARNING','CRITICAL','UNKNOWN')", name=op.f('ck_check_results_state')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_check_results'))
    )
    with op.batch_alter_table('check_results', schema=None) as batch_op:
        batch_op.create_index('ix_check_results_key_observed', ['play', 'host', 'check', 'observed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_check_results_observed_at'), ['observed_at'], unique=False)

    op.create_table('incidents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=620), nullable=False),
    sa.Column('play', sa.String(length=200), nullable=False),
    sa.Column('host', sa.String(length=200), nullable=False),
    sa.Column('check', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('opened_at', sa.DateTime(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=200), nullable=True),
    sa.Column('ack_comment', sa.Text(), nullable=True),
    sa.Column('last_notified_at', sa.DateTime(), nullable=True),
    sa.Column('notify_count', sa.Integer(), nullable=False),
    sa.CheckConstraint("state IN ('OK','WARNING','CRITICAL','UNKNOWN')", name=op.f('ck_incidents_state')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incidents'))
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index('ix_incidents_key_resolved', ['key', 'resolved_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_resolved_at'), ['resolved_at'], unique=False)

    op.create_table('action_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('play', sa.String(length=200), nullable=False),
    sa.Column('host', sa.String(length=200), nullable=False),
    sa.Column('task', sa.String(length=400), nullable=False),
    sa.Column('module', sa.String(length=100), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('check_mode', sa.Boolean(), nullable=False),
    sa.Column('changed', sa.Boolean(), nullable=False),
    sa.Column('failed', sa.Boolean(), nullable=False),
    sa.Column('msg', sa.Text(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_action_runs_incident_id_incidents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_action_runs'))
    )
    with op.batch_alter_table('action_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_action_runs_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_action_runs_started_at'), ['started_at'], unique=False)

    op.create_table('check_states',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=620), nullable=False),
    sa.Column('play', sa.String(length=200), nullable=False),
    sa.Column('host', sa.String(length=200), nullable=False),
    sa.Column('check', sa.String(length=200), nullable=False),
    sa.Column('hard_state', sa.String(length=16), nullable=False),
    sa.Column('soft_state', sa.String(length=16), nullable=False),
    sa.Column('since', sa.DateTime(), nullable=False),
    sa.Column('soft_since', sa.DateTime(), nullable=True),
    sa.Column('consecutive', sa.Integer(), nullable=False),
    sa.Column('last_value', sa.Text(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_observed_at', sa.DateTime(), nullable=True),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('extras', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("hard_state IN ('OK','WARNING','CRITICAL','UNKNOWN')", name=op.f('ck_check_states_hard_state')),
    sa.CheckConstraint("soft_state IN ('OK','WARNING','CRITICAL','UNKNOWN')", name=op.f('ck_check_states_soft_state')),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_check_states_incident_id_incidents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_check_states')),
    sa.UniqueConstraint('key', name=op.f('uq_check_states_key'))
    )
    op.create_table('events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=620), nullable=True),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_events_incident_id_incidents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_key'), ['key'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_kind'), ['kind'], unique=False)

    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('route', sa.String(length=200), nullable=True),
    sa.Column('target', sa.String(length=200), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('dedup_key', sa.String(length=800), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("kind IN ('alert','resolve','repeat','notice','task')", name=op.f('ck_notifications_kind')),
    sa.CheckConstraint("status IN ('pending','sending','sent','failed','dead')", name=op.f('ck_notifications_status')),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_notifications_incident_id_incidents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_notifications_dedup_key'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notifications_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index('ix_notifications_status_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_notifications_target_status', ['target', 'status'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_target_status')
        batch_op.drop_index('ix_notifications_status_due')
        batch_op.drop_index(batch_op.f('ix_notifications_incident_id'))

    op.drop_table('notifications')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_kind'))
        batch_op.drop_index(batch_op.f('ix_events_key'))
        batch_op.drop_index(batch_op.f('ix_events_incident_id'))
        batch_op.drop_index(batch_op.f('ix_events_at'))

    op.drop_table('events')
    op.drop_table('check_states')
    with op.batch_alter_table('action_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_action_runs_started_at'))
        batch_op.drop_index(batch_op.f('ix_action_runs_incident_id'))

    op.drop_table('action_runs')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incidents_resolved_at'))
        batch_op.drop_index('ix_incidents_key_resolved')

    op.drop_table('incidents')
    with op.batch_alter_table('check_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_check_results_observed_at'))
        batch_op.drop_index('ix_check_results_key_observed')

    op.drop_table('check_results')

