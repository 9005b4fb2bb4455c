"""api token scope: read-only or read-write, chosen at creation

Revision ID: 0012tokenscope
Revises: 0011sheets
Create Date: 2026-12-04 22:30:00

Tokens created before scopes existed keep the rights they had (read-write);
new tokens default to read-only in the model.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012tokenscope'
down_revision = '0011sheets'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'scope', sa.Enum('read', 'read_write', name='tokenscope', native_enum=False, length=16),
            nullable=False, server_default='read_write'))


def downgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('scope')
