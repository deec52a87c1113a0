"""bonds, the reward vault and attested weights (issue 15 and the score leaf of issue 14)

accounts.locked_until (the removed Staking.lockedUntil) gives way to accounts.reserved_wei (stake reserved as
bonds: Staking.BondReserved/BondReleased/Slashed); contributions gain the committee's attested weight and the
bond of the commitment; rounds gain the trainers' part of the budget (RewardVault.splitOf), what the committee
was paid, the protocol fee, and what was swept back to the sponsor after the claim window.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('locked_until')
        batch_op.add_column(sa.Column('reserved_wei', sa.String(80), nullable=False, server_default='0'))
    with op.batch_alter_table('contributions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('weight', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('bond_wei', sa.String(80), nullable=False, server_default='0'))
    with op.batch_alter_table('rounds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trainer_budget_wei', sa.String(80), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('aggregator_paid_wei', sa.String(80), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('swept_wei', sa.String(80), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('fee_wei', sa.String(80), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('rounds', schema=None) as batch_op:
        batch_op.drop_column('fee_wei')
        batch_op.drop_column('swept_wei')
        batch_op.drop_column('aggregator_paid_wei')
        batch_op.drop_column('trainer_budget_wei')
    with op.batch_alter_table('contributions', schema=None) as batch_op:
        batch_op.drop_column('bond_wei')
        batch_op.drop_column('weight')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('reserved_wei')
        batch_op.add_column(sa.Column('locked_until', sa.BigInteger(), nullable=True))
