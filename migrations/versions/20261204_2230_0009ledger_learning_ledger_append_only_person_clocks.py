"""learning ledger append-only, and the person clock

``learning_intervals`` is the canonical time ledger: database triggers now refuse
UPDATE and DELETE on it (SQLite and PostgreSQL), like the event log.
``learning_person_clocks`` holds how far each person's credited study reaches, so
the wall-clock budget is per person across sessions, tabs and devices.

Revision ID: 0009ledger
Revises: 0008prevlogin
Create Date: 2026-12-04 22:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009ledger'
down_revision = '0008prevlogin'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('learning_person_clocks',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('credited_until', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_learning_person_clocks_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_learning_person_clocks'))
    )
    # Existing ledgers: each person's credit already reaches their last credited beat.
    op.execute("""
        INSERT INTO learning_person_clocks (user_id, credited_until)
        SELECT user_id, max(wall_end) FROM learning_intervals WHERE credited_ms > 0 GROUP BY user_id
    """)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION learning_intervals_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'learning_intervals is append-only';
            END $$;
        """)
        op.execute("""
            CREATE TRIGGER learning_intervals_no_update_delete BEFORE UPDATE OR DELETE ON learning_intervals
            FOR EACH ROW EXECUTE FUNCTION learning_intervals_append_only();
        """)
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER learning_intervals_no_{action.lower()} BEFORE {action} ON learning_intervals
                BEGIN SELECT RAISE(ABORT, 'learning_intervals is append-only'); END;
            """)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS learning_intervals_no_update_delete ON learning_intervals")
        op.execute("DROP FUNCTION IF EXISTS learning_intervals_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS learning_intervals_no_update")
        op.execute("DROP TRIGGER IF EXISTS learning_intervals_no_delete")
    op.drop_table('learning_person_clocks')
