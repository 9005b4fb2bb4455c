"""login attempts: the answer given, and an index per username for the delays

Revision ID: 0013logindelay
Revises: 0012tokenscope
Create Date: 2026-12-04 23:00:00

The hard 15-minute account lock is replaced by progressive delays computed from
``login_attempts``; ``users.failed_logins`` and ``users.locked_until`` are no
longer read (kept so that a rollback to the previous release still works).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013logindelay'
down_revision = '0012tokenscope'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.String(length=16), nullable=True))
        batch_op.create_index('ix_login_attempts_username_created_at', ['username', 'created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_login_attempts_username_created_at')
        batch_op.drop_column('outcome')
