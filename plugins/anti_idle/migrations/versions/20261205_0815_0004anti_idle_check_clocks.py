"""anti_idle check clocks: the playing time toward a person's next check, as a memo

So a player's check poll adds the intervals stored since its last look instead of
summing the person's history (checks._playing_ms_since).

Revision ID: 0004anti_idle
Revises: 0003anti_idle_rollup
Create Date: 2026-12-05 08:15:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004anti_idle'
down_revision = '0003anti_idle_rollup'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'anti_idle_check_clocks',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('reference_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('played_ms', sa.BigInteger(), nullable=False),
        sa.Column('through_id', sa.BigInteger(), nullable=False),
        sa.Column('through_wall_end', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_anti_idle_check_clocks_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_anti_idle_check_clocks')),
    )


def downgrade() -> None:
    op.drop_table('anti_idle_check_clocks')
