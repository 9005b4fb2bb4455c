"""lessons.archived_at: a deleted lesson with learners' records is archived, not deleted

Revision ID: 0017archive
Revises: 0016notices
Create Date: 2026-12-04 23:55:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017archive'
down_revision = '0016notices'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('lessons', schema=None) as batch_op:
        batch_op.add_column(sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('lessons', schema=None) as batch_op:
        batch_op.drop_column('archived_at')
