"""anti_idle beats carry their running state; day verdicts their tallies

So the online credit path reads one previous row instead of summing history, and a
recompute can start on any day from the rows before it.

Revision ID: 0002anti_idle
Revises: 0001anti_idle
Create Date: 2026-12-04 22:45:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = '0002anti_idle'
down_revision = '0001anti_idle'
branch_labels = None
depends_on = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')
    # Adding columns with constant defaults: no row is updated, so the append-only
    # trigger is not involved (PostgreSQL stores the default in the catalogue).
    with op.batch_alter_table('anti_idle_beats', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('flags', json, nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('hidden_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_claim_end', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('session_claimed_ms', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('session_covered', json, nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('lesson_credited_ms', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('day_credited_ms', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.create_index('ix_anti_idle_beats_user_id_lesson_id_id', ['user_id', 'lesson_id', 'id'], unique=False)
    with op.batch_alter_table('anti_idle_day_verdicts', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('tally', json, nullable=False, server_default='{}'))


def downgrade() -> None:
    with op.batch_alter_table('anti_idle_day_verdicts', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('tally')
    with op.batch_alter_table('anti_idle_beats', schema=None, recreate='never') as batch_op:
        batch_op.drop_index('ix_anti_idle_beats_user_id_lesson_id_id')
        for column in ('day_credited_ms', 'lesson_credited_ms', 'session_covered', 'session_claimed_ms',
                       'last_claim_end', 'hidden_since', 'flags'):
            batch_op.drop_column(column)
