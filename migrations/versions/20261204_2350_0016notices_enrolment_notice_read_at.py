"""enrolments.notice_read_at: new 调训 tasks show on the dashboard until read

Revision ID: 0016notices
Revises: 0015pinyin
Create Date: 2026-12-04 23:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016notices'
down_revision = '0015pinyin'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('enrolments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notice_read_at', sa.DateTime(timezone=True), nullable=True))
    # Tasks assigned before this revision are not news: learners saw them in their course
    # list already. Marking them read keeps the upgrade from flooding every dashboard.
    enrolments = sa.table('enrolments', sa.column('notice_read_at', sa.DateTime(timezone=True)),
                          sa.column('enrolled_at', sa.DateTime(timezone=True)))
    op.get_bind().execute(enrolments.update().values(notice_read_at=enrolments.c.enrolled_at))


def downgrade():
    with op.batch_alter_table('enrolments', schema=None) as batch_op:
        batch_op.drop_column('notice_read_at')
