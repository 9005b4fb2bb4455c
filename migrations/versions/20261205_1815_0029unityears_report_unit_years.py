"""report_unit_years: the hours report's rows, one per unit and year with twelve month columns

The hours report pivoted the year's report_unit_months rows on every page load
(9,500 rows for a county, 98,000 for the city: about 15 ms of PostgreSQL CPU per
county page, issue 12). The refresh now pivots them once into this table, and the
page reads one row per unit. Derived rows: not built here. The new stamp name is
missing until the next refresh, so the pages queue the rebuild.

Revision ID: 0029unityears
Revises: 0028waitjobs
Create Date: 2026-12-05 18:15:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0029unityears"
down_revision = "0028waitjobs"
branch_labels = None
depends_on = None

MONTHS = [f"m{m:02d}" for m in range(1, 13)]


def upgrade() -> None:
    op.create_table(
        "report_unit_years",
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in MONTHS),
        sa.ForeignKeyConstraint(
            ["org_unit_id"],
            ["org_units.id"],
            name=op.f("fk_report_unit_years_org_unit_id_org_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_unit_id", "year", name=op.f("pk_report_unit_years")),
    )


def downgrade() -> None:
    op.drop_table("report_unit_years")
    op.execute("DELETE FROM report_rollups WHERE name = 'unit_years'")
