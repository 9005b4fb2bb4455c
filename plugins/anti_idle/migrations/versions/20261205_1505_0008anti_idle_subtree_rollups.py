"""anti_idle report rollups summed per subtree: anti_idle_subtree_years, anti_idle_subtree_rule_years

The dashboard summed every unit's row of anti_idle_unit_years and
anti_idle_unit_rule_years under the chosen root on every page load (8 ms of
PostgreSQL for a city, issue 12). The rollups now hold each unit's subtree already
summed, so the chart reads its root's rows by primary key; nothing else read the
per-unit rows, so those tables go. Derived rows: not built here. The new stamp names
are missing until the next refresh, so the pages queue the rebuild; the old stamps
are removed.

Revision ID: 0008anti_idle_subtree
Revises: 0007anti_idle_state
Create Date: 2026-12-05 15:05:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008anti_idle_subtree"
down_revision = "0007anti_idle_state"
branch_labels = None
depends_on = None


def _years(name: str, unit: str) -> None:
    op.create_table(
        name,
        sa.Column(unit, sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("claimed_ms", sa.BigInteger(), nullable=False),
        sa.Column("held_ms", sa.BigInteger(), nullable=False),
        sa.Column("cut_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint([unit], ["org_units.id"], name=op.f(f"fk_{name}_{unit}_org_units"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint(unit, "year", name=op.f(f"pk_{name}")),
    )


def _rules(name: str, unit: str) -> None:
    op.create_table(
        name,
        sa.Column(unit, sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rule", sa.String(length=8), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("amount_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint([unit], ["org_units.id"], name=op.f(f"fk_{name}_{unit}_org_units"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint(unit, "year", "rule", "action", name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    op.drop_table("anti_idle_unit_rule_years")
    op.drop_table("anti_idle_unit_years")
    op.execute("DELETE FROM report_rollups WHERE name IN ('anti_idle_unit_years', 'anti_idle_unit_rule_years')")
    _years("anti_idle_subtree_years", "unit_id")
    _rules("anti_idle_subtree_rule_years", "unit_id")


def downgrade() -> None:
    op.drop_table("anti_idle_subtree_rule_years")
    op.drop_table("anti_idle_subtree_years")
    op.execute("DELETE FROM report_rollups WHERE name IN ('anti_idle_subtree_years', 'anti_idle_subtree_rule_years')")
    _years("anti_idle_unit_years", "org_unit_id")
    _rules("anti_idle_unit_rule_years", "org_unit_id")
