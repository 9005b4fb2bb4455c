"""users.previous_login_at: the sign-in before the current one, shown as 上次登录

Revision ID: 0008prevlogin
Revises: 0007imports
Create Date: 2026-12-04 22:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008prevlogin'
down_revision = '0007imports'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_login_at', sa.DateTime(timezone=True), nullable=True))
    # No backfill: before this revision only the latest sign-in was kept, and the
    # login-attempt log may have been pruned; the second sign-in after the upgrade fills it.


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('previous_login_at')
