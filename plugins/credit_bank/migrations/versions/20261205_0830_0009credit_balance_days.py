"""credit ledger: daily balance snapshots (credit_balance_days) and their builds

As-of-date balances, statements' totals and progress read one snapshot row per account
instead of folding the cadre's journal (plugins/credit_bank/snapshots.py). Both tables are
append-only like the journal; ``flask lms credit replay`` recomputes every row from it.

Revision ID: 0009credit_balance_days
Revises: 0008credit_lean_journal
Create Date: 2026-12-05 08:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0009credit_balance_days"
down_revision = "0008credit_lean_journal"
branch_labels = None
depends_on = None

TABLES = ("credit_balance_days", "credit_balance_builds")


def upgrade() -> None:
    op.create_table(
        "credit_balance_days",
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("debits_posted", sa.BigInteger(), nullable=False),
        sa.Column("credits_posted", sa.BigInteger(), nullable=False),
        sa.Column("debits_pending", sa.BigInteger(), nullable=False),
        sa.Column("credits_pending", sa.BigInteger(), nullable=False),
        sa.Column("closed_out", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "day", name=op.f("pk_credit_balance_days")),
    )
    op.create_table(
        "credit_balance_builds",
        sa.Column("through", sa.Date(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("through", name=op.f("pk_credit_balance_builds")),
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:  # credit_append_only() is 0001's
            op.execute(f"""
                CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION credit_append_only();
            """)
    else:
        for table in TABLES:
            for action in ("UPDATE", "DELETE"):
                op.execute(f"""
                    CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table}
                    BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;
                """)


def downgrade() -> None:
    op.drop_table("credit_balance_builds")
    op.drop_table("credit_balance_days")
