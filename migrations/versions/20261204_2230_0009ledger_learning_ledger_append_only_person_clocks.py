"""learning ledger append-only, and the person clock

``learning_intervals`` is the canonical time ledger: database triggers now refuse
UPDATE and DELETE on it (SQLite and PostgreSQL), like the event log.
``learning_person_clocks`` holds how far each person's credited study reaches, so
the wall-clock budget is per person across sessions, tabs and devices.

Revision ID: 0009ledger
Revises: 0008prevlogin
Create Date: 2026-12-04 22:30:00

"""
from alembic import op
import sqlalchemy as sa

from lms_core.db import append_only_ddl, drop_append_only_ddl


# revision identifiers, used by Alembic.
revision = '0009ledger'
down_revision = '0008prevlogin'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('learning_person_clocks',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('credited_until', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_learning_person_clocks_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_learning_person_clocks'))
    )
    # Existing ledgers: each person's credit already reaches their last credited beat.
    op.execute("""
        INSERT INTO learning_person_clocks (user_id, credited_until)
        SELECT user_id, max(wall_end) FROM learning_intervals WHERE credited_ms > 0 GROUP BY user_id
    """)
    for statement in append_only_ddl("learning_intervals", op.get_bind().dialect.name):
        op.execute(statement)


def downgrade():
    for statement in drop_append_only_ddl("learning_intervals", op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_table('learning_person_clocks')
