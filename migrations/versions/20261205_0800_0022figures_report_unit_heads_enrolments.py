"""report_unit_heads, report_unit_enrolments: the dashboards' head counts and enrolments per unit (rollups)

The city dashboard counted 100,000 people and 300,000 enrolments on every page
load (issue 12: p95 30 s). These derived rows are rebuilt with the hours rollup
by lms_core.reports.monthly.refresh, which stamps each in report_rollups. They are
not built here: with no stamp the pages say the figures are being summed up and
queue the rebuild.

Revision ID: 0022figures
Revises: 0021rollup
Create Date: 2026-12-05 08:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0022figures'
down_revision = '0021rollup'
branch_labels = None
depends_on = None

BAND = sa.Enum('county_and_above', 'township', 'general', name='rankband', native_enum=False, length=32)


def upgrade():
    op.create_table('report_unit_heads',
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('rank_band', BAND, nullable=False),
    sa.Column('active', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_report_unit_heads_org_unit_id_org_units'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_unit_id', 'rank_band', name=op.f('pk_report_unit_heads'))
    )
    op.create_table('report_unit_enrolments',
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('rank_band', BAND, nullable=False),
    sa.Column('enrolments', sa.Integer(), nullable=False),
    sa.Column('completed', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_report_unit_enrolments_org_unit_id_org_units'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_unit_id', 'year', 'rank_band', name=op.f('pk_report_unit_enrolments'))
    )


def downgrade():
    op.drop_table('report_unit_enrolments')
    op.drop_table('report_unit_heads')
