"""credit ledger: a BRIN index on the journal's visibility columns (effective_date, recorded_at)

A daily snapshot build reads only the lines that became visible after the last built day
(effective after it, or recorded after it ended): with this index it reads the journal's newest
block ranges, not the whole journal (plugins/credit_bank/snapshots.py). BRIN keeps one summary
per 128 pages, so it costs posting almost nothing; the journal is appended in time order, which
is what BRIN needs. (SQLite has no BRIN and gets an ordinary index.)

Revision ID: 0011credit_visible_brin
Revises: 0010credit_group_prepare
Create Date: 2026-12-05 11:50:00

"""

from alembic import op

revision = "0011credit_visible_brin"
down_revision = "0010credit_group_prepare"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_credit_transfers_visible", "credit_transfers", ["effective_date", "recorded_at"], postgresql_using="brin"
    )


def downgrade() -> None:
    op.drop_index("ix_credit_transfers_visible", table_name="credit_transfers")
