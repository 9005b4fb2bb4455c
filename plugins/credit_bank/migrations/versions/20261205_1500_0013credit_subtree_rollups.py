"""credit ledger: the dashboard's rollups summed per subtree (credit_bank_subtree_people, credit_bank_subtree_earned)

The city dashboard summed credit_bank_unit_people and credit_bank_unit_earned
through the tree's closure on every page load (28 ms of PostgreSQL for a city,
issue 12). The rollups now hold each unit's subtree already summed, read by primary
key for the compared units; nothing else read the per-unit rows, so those tables go.
Derived rows: not built here. The new stamp names are missing until the next
refresh, so the pages queue the rebuild; the old stamps are removed.

Revision ID: 0013credit_subtree
Revises: 0012credit_xf_ledger
Create Date: 2026-12-05 15:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0013credit_subtree"
down_revision = "0012credit_xf_ledger"
branch_labels = None
depends_on = None


def _people(name: str, unit: str) -> None:
    op.create_table(
        name,
        sa.Column(unit, sa.Integer(), nullable=False),
        sa.Column("rank_band", sa.String(length=32), nullable=False),
        sa.Column("party_member", sa.Boolean(), nullable=False),
        sa.Column("position", sa.String(length=100), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            [unit], ["org_units.id"], name=op.f(f"fk_{name}_{unit}_org_units"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(unit, "rank_band", "party_member", "position", name=op.f(f"pk_{name}")),
    )


def _earned(name: str, unit: str) -> None:
    op.create_table(
        name,
        sa.Column(unit, sa.Integer(), nullable=False),
        sa.Column("period", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rank_band", sa.String(length=32), nullable=False),
        sa.Column("earned", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            [unit], ["org_units.id"], name=op.f(f"fk_{name}_{unit}_org_units"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(unit, "period", "rank_band", name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    op.drop_table("credit_bank_unit_earned")
    op.drop_table("credit_bank_unit_people")
    op.execute("DELETE FROM report_rollups WHERE name IN ('credit_bank_unit_people', 'credit_bank_unit_earned')")
    _people("credit_bank_subtree_people", "unit_id")
    _earned("credit_bank_subtree_earned", "unit_id")


def downgrade() -> None:
    op.drop_table("credit_bank_subtree_earned")
    op.drop_table("credit_bank_subtree_people")
    op.execute("DELETE FROM report_rollups WHERE name IN ('credit_bank_subtree_people', 'credit_bank_subtree_earned')")
    _people("credit_bank_unit_people", "org_unit_id")
    _earned("credit_bank_unit_earned", "org_unit_id")
