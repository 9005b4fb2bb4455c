"""credit ledger: a fast same-ledger check; API token scopes for the transfer API

1. The same-ledger insert trigger looks both accounts up by primary key.

The PostgreSQL trigger counted ``WHERE id IN (debit, credit) AND ledger_id = x``. PL/pgSQL
caches a generic plan per connection, and one planned while credit_accounts was small may
walk the (ledger_id, kind, owner_id, period) index over every account of the ledger: it cost
0.5 ms per journal row with 10,000 accounts, 90 % of a batch insert. Two primary-key
look-ups cannot be planned any other way. Same rule, same error; SQLite is unchanged.

2. ``credit_token_scopes``: the credit-bank scopes granted to core API tokens
(``credit:transfers`` lets a token post to ``/api/v1/credit/transfers``).

Revision ID: 0004credit_fast_check
Revises: 0003credit_ranks
Create Date: 2026-12-05 01:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0004credit_fast_check"
down_revision = "0003credit_ranks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credit_token_scopes",
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("granted_by", sa.Integer(), nullable=True),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["token_id"], ["api_tokens.id"], name=op.f("fk_credit_token_scopes_token_id_api_tokens"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_id", "scope", name=op.f("pk_credit_token_scopes")),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
        CREATE OR REPLACE FUNCTION credit_transfers_same_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM credit_accounts
                           WHERE id = NEW.debit_account_id AND ledger_id = NEW.ledger_id)
               OR NOT EXISTS (SELECT 1 FROM credit_accounts
                              WHERE id = NEW.credit_account_id AND ledger_id = NEW.ledger_id) THEN
                RAISE EXCEPTION 'credit_transfers: both accounts must be on ledger %', NEW.ledger_id;
            END IF;
            RETURN NEW;
        END $$;
    """)


def downgrade() -> None:
    op.drop_table("credit_token_scopes")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
        CREATE OR REPLACE FUNCTION credit_transfers_same_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF (SELECT count(*) FROM credit_accounts
                WHERE id IN (NEW.debit_account_id, NEW.credit_account_id) AND ledger_id = NEW.ledger_id) <> 2 THEN
                RAISE EXCEPTION 'credit_transfers: both accounts must be on ledger %', NEW.ledger_id;
            END IF;
            RETURN NEW;
        END $$;
    """)
