"""anti_idle person states: one row per person with the running state the next beat needs

So a heartbeat reads and writes one row instead of its history (previous beats of the
session, lesson and person) and the day verdict (plugins/anti_idle/state.py). Derived
data: a missing row is rebuilt from the stored beats on the person's next beat.

Revision ID: 0007anti_idle_state
Revises: 0006anti_idle_review
Create Date: 2026-12-05 11:30:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = '0007anti_idle_state'
down_revision = '0006anti_idle_review'
branch_labels = None
depends_on = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')
    op.create_table(
        'anti_idle_person_states',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('day_credited_ms', sa.BigInteger(), nullable=False),
        sa.Column('focus_session', sa.String(length=32), nullable=True),
        sa.Column('focus_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('sessions', json, nullable=False),
        sa.Column('lessons', json, nullable=False),
        sa.Column('tally_day', sa.Date(), nullable=True),
        sa.Column('day_tally', json, nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_anti_idle_person_states_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_anti_idle_person_states')),
    )


def downgrade() -> None:
    op.drop_table('anti_idle_person_states')
