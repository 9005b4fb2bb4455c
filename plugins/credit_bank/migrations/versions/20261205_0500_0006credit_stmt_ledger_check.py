"""credit ledger: the same-ledger check runs once per statement, not once per journal row

On PostgreSQL the check that both accounts of a transfer are on its ledger was a row-level
BEFORE INSERT trigger: two primary-key look-ups through PL/pgSQL for every journal row,
about 15 us of backend CPU per row out of 57 (10,000-row INSERT ... SELECT, backend CPU from
/proc, three runs at load 14: 56-59 us/row with it, 40-44 without it or with the statement
trigger, 22-23 with no trigger or foreign key at all). It becomes an AFTER INSERT
statement-level trigger over the transition table: one join for the whole batch, the same
rule and the same error, raised in the same transaction before it can commit. Account rows
cannot disappear in between (the journal's foreign keys restrict their deletion).

SQLite is unchanged (its trigger is per row; SQLite has no transition tables).

Revision ID: 0006credit_stmt_check
Revises: 0005credit_log_nodes
Create Date: 2026-12-05 05:00:00

"""

from alembic import op

revision = "0006credit_stmt_check"
down_revision = "0005credit_log_nodes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS credit_transfers_same_ledger ON credit_transfers")
    op.execute("""
        CREATE FUNCTION credit_transfers_same_ledger_batch() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            bad smallint;
        BEGIN
            SELECT n.ledger_id INTO bad
              FROM credit_new_transfers AS n
              LEFT JOIN credit_accounts AS d ON d.id = n.debit_account_id AND d.ledger_id = n.ledger_id
              LEFT JOIN credit_accounts AS c ON c.id = n.credit_account_id AND c.ledger_id = n.ledger_id
             WHERE d.id IS NULL OR c.id IS NULL
             LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'credit_transfers: both accounts must be on ledger %', bad;
            END IF;
            RETURN NULL;
        END $$;
    """)
    op.execute("""
        CREATE TRIGGER credit_transfers_same_ledger AFTER INSERT ON credit_transfers
        REFERENCING NEW TABLE AS credit_new_transfers
        FOR EACH STATEMENT EXECUTE FUNCTION credit_transfers_same_ledger_batch();
    """)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS credit_transfers_same_ledger ON credit_transfers")
    op.execute("DROP FUNCTION IF EXISTS credit_transfers_same_ledger_batch()")
    # The row-level trigger of 0001, with the function as 0004 left it.
    op.execute("""
        CREATE TRIGGER credit_transfers_same_ledger BEFORE INSERT ON credit_transfers
        FOR EACH ROW EXECUTE FUNCTION credit_transfers_same_ledger();
    """)
