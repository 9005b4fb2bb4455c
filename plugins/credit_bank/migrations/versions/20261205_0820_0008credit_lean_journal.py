"""credit ledger: the journal's foreign keys give way to the same-ledger trigger; sparse indexes

Batch posting (bench/credit_bench.py, 20 batches of 1,000, load 15-20): PostgreSQL CPU per
transfer 67 us with the three foreign keys of credit_transfers, 42.5 us without them and with
the two sparse indexes below. What the foreign keys enforced is kept:

* a journal row names existing accounts of its own ledger: the same-ledger trigger (a
  statement trigger on PostgreSQL since 0006, a row trigger on SQLite) joins both accounts
  and refuses the insert otherwise, so it already refused every row the foreign keys did
  (an account exists only with an existing ledger: credit_accounts keeps its own foreign key);
* an account named by the journal cannot go away or change identity: accounts are now
  never deleted, and their identity columns (id, ledger, kind, owner, period) never change
  (a trigger refuses; only the cached sums and the flags are updated).

``pending_id`` and ``reverses_id`` are NULL on almost every row: their indexes now hold the
other rows only (partial indexes), so an ordinary posting writes two index entries fewer.
The unique rule on ``pending_id`` is unchanged (NULLs never conflicted).

SQLite: the table is rebuilt without the foreign keys (batch mode), and its triggers, which a
rebuild drops, are created again.

Revision ID: 0008credit_lean_journal
Revises: 0007credit_rollups
Create Date: 2026-12-05 08:10:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0008credit_lean_journal"
down_revision = "0007credit_rollups"
branch_labels = None
depends_on = None

FKS = (
    ("fk_credit_transfers_credit_account_id_credit_accounts", "credit_accounts", "credit_account_id"),
    ("fk_credit_transfers_debit_account_id_credit_accounts", "credit_accounts", "debit_account_id"),
    ("fk_credit_transfers_ledger_id_credit_ledgers", "credit_ledgers", "ledger_id"),
)
IDENTITY = "id, ledger_id, kind, owner_id, period"

SQLITE_TRIGGERS = (
    """CREATE TRIGGER credit_transfers_no_update BEFORE UPDATE ON credit_transfers
       BEGIN SELECT RAISE(ABORT, 'credit_transfers is append-only'); END""",
    """CREATE TRIGGER credit_transfers_no_delete BEFORE DELETE ON credit_transfers
       BEGIN SELECT RAISE(ABORT, 'credit_transfers is append-only'); END""",
    """CREATE TRIGGER credit_transfers_same_ledger BEFORE INSERT ON credit_transfers
       WHEN (SELECT count(*) FROM credit_accounts
             WHERE id IN (NEW.debit_account_id, NEW.credit_account_id) AND ledger_id = NEW.ledger_id) <> 2
       BEGIN SELECT RAISE(ABORT, 'credit_transfers: both accounts must be on the same ledger'); END""",
)


def _sparse_indexes(create: bool) -> None:
    with op.batch_alter_table("credit_transfers") as batch:
        batch.drop_index("ix_credit_transfers_reverses_id")
    if create:
        op.create_index(
            "ix_credit_transfers_reverses_id",
            "credit_transfers",
            ["reverses_id"],
            postgresql_where=sa.text("reverses_id IS NOT NULL"),
            sqlite_where=sa.text("reverses_id IS NOT NULL"),
        )
        op.create_index(
            "uq_credit_transfers_pending_id",
            "credit_transfers",
            ["pending_id"],
            unique=True,
            postgresql_where=sa.text("pending_id IS NOT NULL"),
            sqlite_where=sa.text("pending_id IS NOT NULL"),
        )
    else:
        op.create_index("ix_credit_transfers_reverses_id", "credit_transfers", ["reverses_id"])


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, _, _ in FKS:
            op.drop_constraint(name, "credit_transfers", type_="foreignkey")
        op.drop_constraint("uq_credit_transfers_pending_id", "credit_transfers", type_="unique")
        _sparse_indexes(True)
        op.execute("""
            CREATE FUNCTION credit_accounts_keep() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'credit_accounts: an account is never deleted and keeps its identity';
            END $$;
        """)
        op.execute(f"""
            CREATE TRIGGER credit_accounts_keep BEFORE DELETE OR UPDATE OF {IDENTITY} ON credit_accounts
            FOR EACH ROW EXECUTE FUNCTION credit_accounts_keep();
        """)
        return
    # SQLite: rebuild the journal without the foreign keys; the rebuild drops its triggers.
    with op.batch_alter_table("credit_transfers", recreate="always") as batch:
        for name, _, _ in FKS:
            batch.drop_constraint(name, type_="foreignkey")
        batch.drop_constraint("uq_credit_transfers_pending_id", type_="unique")
    for name in ("credit_transfers_no_update", "credit_transfers_no_delete", "credit_transfers_same_ledger"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for sql in SQLITE_TRIGGERS:
        op.execute(sql)
    _sparse_indexes(True)
    op.execute("""
        CREATE TRIGGER credit_accounts_no_delete BEFORE DELETE ON credit_accounts
        BEGIN SELECT RAISE(ABORT, 'credit_accounts: an account is never deleted and keeps its identity'); END
    """)
    op.execute(f"""
        CREATE TRIGGER credit_accounts_keep_identity BEFORE UPDATE OF {IDENTITY} ON credit_accounts
        WHEN NEW.id IS NOT OLD.id OR NEW.ledger_id IS NOT OLD.ledger_id OR NEW.kind IS NOT OLD.kind
             OR NEW.owner_id IS NOT OLD.owner_id OR NEW.period IS NOT OLD.period
        BEGIN SELECT RAISE(ABORT, 'credit_accounts: an account is never deleted and keeps its identity'); END
    """)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS credit_accounts_keep ON credit_accounts")
        op.execute("DROP FUNCTION IF EXISTS credit_accounts_keep()")
        op.drop_index("uq_credit_transfers_pending_id", "credit_transfers")
        _sparse_indexes(False)
        op.create_unique_constraint("uq_credit_transfers_pending_id", "credit_transfers", ["pending_id"])
        for name, target, col in FKS:
            op.create_foreign_key(name, "credit_transfers", target, [col], ["id"], ondelete="RESTRICT")
        return
    op.execute("DROP TRIGGER IF EXISTS credit_accounts_no_delete")
    op.execute("DROP TRIGGER IF EXISTS credit_accounts_keep_identity")
    op.drop_index("uq_credit_transfers_pending_id", "credit_transfers")
    _sparse_indexes(False)
    with op.batch_alter_table("credit_transfers", recreate="always") as batch:
        batch.create_unique_constraint("uq_credit_transfers_pending_id", ["pending_id"])
        for name, target, col in FKS:
            batch.create_foreign_key(name, target, [col], ["id"], ondelete="RESTRICT")
    for name in ("credit_transfers_no_update", "credit_transfers_no_delete", "credit_transfers_same_ledger"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for sql in SQLITE_TRIGGERS:
        op.execute(sql)
