"""learning_refused_beats: repeated, replayed and late heartbeats kept as evidence (append-only)

A beat whose ``seq`` was already accepted, or made longer ago than the late window,
earns nothing; it is now stored instead of dropped, and the table refuses UPDATE and
DELETE like the ledger.

Revision ID: 0023refused
Revises: 0022figures
Create Date: 2026-12-05 08:30:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from lms_core.db import append_only_ddl, drop_append_only_ddl


# revision identifiers, used by Alembic.
revision = '0023refused'
down_revision = '0022figures'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('learning_refused_beats',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('session_id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('lesson_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('made_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('beat', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['lesson_id'], ['lessons.id'], name=op.f('fk_learning_refused_beats_lesson_id_lessons'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['learning_sessions.id'], name=op.f('fk_learning_refused_beats_session_id_learning_sessions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_learning_refused_beats_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_learning_refused_beats'))
    )
    op.create_index('ix_learning_refused_beats_user_id_received_at', 'learning_refused_beats', ['user_id', 'received_at'], unique=False)
    for statement in append_only_ddl('learning_refused_beats', op.get_bind().dialect.name):
        op.execute(statement)


def downgrade():
    for statement in drop_append_only_ddl('learning_refused_beats', op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_index('ix_learning_refused_beats_user_id_received_at', table_name='learning_refused_beats')
    op.drop_table('learning_refused_beats')
