"""lessons.show_correct_answers (quiz review); lesson_feedback.updated_at (a survey answer edited)

Revision ID: 0014review
Revises: 0013logindelay
Create Date: 2026-12-04 23:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014review'
down_revision = '0013logindelay'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('lessons', schema=None) as batch_op:
        batch_op.add_column(sa.Column('show_correct_answers', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
    with op.batch_alter_table('lesson_feedback', schema=None) as batch_op:
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('lesson_feedback', schema=None) as batch_op:
        batch_op.drop_column('updated_at')
    with op.batch_alter_table('lessons', schema=None) as batch_op:
        batch_op.drop_column('show_correct_answers')
