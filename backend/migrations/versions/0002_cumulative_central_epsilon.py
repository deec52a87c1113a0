"""cumulative central epsilon: per round (with the round's noise multiplier and delta) and per task

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 01:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('rounds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('central_noise_multiplier', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('central_delta', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('central_epsilon_total', sa.Float(), nullable=True))
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('central_epsilon_total', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('central_delta', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('central_dp_rounds', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('central_dp_rounds')
        batch_op.drop_column('central_delta')
        batch_op.drop_column('central_epsilon_total')
    with op.batch_alter_table('rounds', schema=None) as batch_op:
        batch_op.drop_column('central_epsilon_total')
        batch_op.drop_column('central_delta')
        batch_op.drop_column('central_noise_multiplier')
