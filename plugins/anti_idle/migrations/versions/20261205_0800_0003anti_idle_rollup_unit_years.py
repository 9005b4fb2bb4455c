"""anti_idle report rollups: verdict sums and time taken per rule, per unit and year

The dashboard's "share of time deducted or held" summed every person's day
verdicts and evidence lines of a city on each page load (issue 12). These derived
rows are rebuilt with the core's report rollups (lms_report_rollups, stamped in
report_rollups); not built here: the pages queue the rebuild when a stamp is
missing.

Revision ID: 0003anti_idle_rollup
Revises: 0002anti_idle
Create Date: 2026-12-05 08:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003anti_idle_rollup'
down_revision = '0002anti_idle'
branch_labels = None
depends_on = '0021rollup'  # report_rollups, where the rebuild stamps these


def upgrade() -> None:
    op.create_table('anti_idle_unit_years',
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('claimed_ms', sa.BigInteger(), nullable=False),
    sa.Column('held_ms', sa.BigInteger(), nullable=False),
    sa.Column('cut_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_anti_idle_unit_years_org_unit_id_org_units'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_unit_id', 'year', name=op.f('pk_anti_idle_unit_years'))
    )
    op.create_table('anti_idle_unit_rule_years',
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('rule', sa.String(length=8), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('amount_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_anti_idle_unit_rule_years_org_unit_id_org_units'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_unit_id', 'year', 'rule', 'action', name=op.f('pk_anti_idle_unit_rule_years'))
    )


def downgrade() -> None:
    op.drop_table('anti_idle_unit_rule_years')
    op.drop_table('anti_idle_unit_years')
