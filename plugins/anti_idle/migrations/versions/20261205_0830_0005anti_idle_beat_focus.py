"""anti_idle beats carry the person's focused stream (rule R04f)

The running state after a beat gains the session that holds the person's focus and
until when, so the next beat of another stream knows whether to yield to it.

Revision ID: 0005anti_idle
Revises: 0004anti_idle
Create Date: 2026-12-05 08:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005anti_idle'
down_revision = '0004anti_idle'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns without a default: no row is rewritten, so the append-only
    # trigger is not involved; beats stored before read as "no focused stream".
    with op.batch_alter_table('anti_idle_beats', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('focus_session', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('focus_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('anti_idle_beats', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('focus_until')
        batch_op.drop_column('focus_session')
