"""Play runs: each run of a play's task list is written before its first task acts and ended
when it ends, with its owner process, so a run cut short (its process killed, or stopped by a
signal between two tasks) is found, told and, for a play that says so, finished.

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('play_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run', sa.String(length=32), nullable=False),
    sa.Column('play', sa.String(length=200), nullable=False),
    sa.Column('hosts', sa.JSON(), nullable=False),
    sa.Column('tasks', sa.JSON(), nullable=False),
    sa.Column('done', sa.JSON(), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('on_interrupt', sa.String(length=16), nullable=False),
    sa.Column('owner_host', sa.String(length=200), nullable=False),
    sa.Column('owner_pid', sa.Integer(), nullable=False),
    sa.Column('owner_started', sa.Float(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('resumed_from', sa.String(length=32), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('signal', sa.String(length=16), nullable=True),
    sa.Column('handled_at', sa.DateTime(), nullable=True),
    sa.Column('handled', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_play_runs')),
    sa.UniqueConstraint('run', name=op.f('uq_play_runs_run'))
    )
    with op.batch_alter_table('play_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_play_runs_handled_at'), ['handled_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_play_runs_started_at'), ['started_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('play_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_play_runs_started_at'))
        batch_op.drop_index(batch_op.f('ix_play_runs_handled_at'))
    op.drop_table('play_runs')
