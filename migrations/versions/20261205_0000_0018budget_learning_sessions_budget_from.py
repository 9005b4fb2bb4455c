"""learning_sessions.budget_from: how far a session's time is used up

Beats queued offline and delivered together used to find only the few
milliseconds since the previous beat; the session now remembers where its last
credit ended, so they are credited for the time in which they were played.

Revision ID: 0018budget
Revises: 0017archive
Create Date: 2026-12-04 23:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0018budget'
down_revision = '0017archive'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('learning_sessions', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('budget_from', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('learning_sessions', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('budget_from')
