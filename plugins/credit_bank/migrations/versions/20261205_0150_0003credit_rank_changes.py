"""credit_rank_changes: promotion history (append-only; corrections are new entries)

Requirements follow the rank held at the right date and a promotion opens the
"within a year of promotion" requirement, so the bank keeps each cadre's rank band over
time. Triggers refuse UPDATE and DELETE on SQLite and PostgreSQL (on PostgreSQL through
0001credit's credit_append_only() function).

Revision ID: 0003credit_ranks
Revises: 0002credit_proofs
Create Date: 2026-12-05 01:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003credit_ranks'
down_revision = '0002credit_proofs'
branch_labels = None
depends_on = None

TABLE = 'credit_rank_changes'


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('effective_date', sa.Date(), nullable=True),
        sa.Column('from_band', sa.String(length=32), nullable=True),
        sa.Column('to_band', sa.String(length=32), nullable=True),
        sa.Column('corrects_id', sa.Integer(), nullable=True),
        sa.Column('withdrawn', sa.Boolean(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('recorded_by', sa.Integer(), nullable=True),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['corrects_id'], ['credit_rank_changes.id'],
                                name=op.f('fk_credit_rank_changes_corrects_id_credit_rank_changes')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_credit_rank_changes_user_id_users'),
                                ondelete='RESTRICT'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_rank_changes')),
        sa.UniqueConstraint('corrects_id', name=op.f('uq_credit_rank_changes_corrects_id')),
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_rank_changes_user_id'), ['user_id'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"""
            CREATE TRIGGER {TABLE}_no_update_delete BEFORE UPDATE OR DELETE ON {TABLE}
            FOR EACH ROW EXECUTE FUNCTION credit_append_only();
        """)
    else:
        for action in ('UPDATE', 'DELETE'):
            op.execute(f"""
                CREATE TRIGGER {TABLE}_no_{action.lower()} BEFORE {action} ON {TABLE}
                BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only'); END;
            """)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_update_delete ON {TABLE}")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_update")
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_delete")
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_rank_changes_user_id'))
    op.drop_table(TABLE)
