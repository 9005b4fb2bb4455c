"""credential_sheets: one-time initial passwords for the admin who created the accounts

Also import_runs.reissue_passwords (the "give new initial passwords" box of a queued import).

Revision ID: 0011sheets
Revises: 0010topicrepr
Create Date: 2026-12-04 23:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011sheets'
down_revision = '0010topicrepr'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('credential_sheets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('import_run_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('downloaded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('accounts', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_credential_sheets_created_by_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['import_run_id'], ['import_runs.id'], name=op.f('fk_credential_sheets_import_run_id_import_runs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credential_sheets'))
    )
    with op.batch_alter_table('credential_sheets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credential_sheets_created_by_id'), ['created_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credential_sheets_import_run_id'), ['import_run_id'], unique=False)
    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reissue_passwords', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.drop_column('reissue_passwords')
    with op.batch_alter_table('credential_sheets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credential_sheets_import_run_id'))
        batch_op.drop_index(batch_op.f('ix_credential_sheets_created_by_id'))
    op.drop_table('credential_sheets')
