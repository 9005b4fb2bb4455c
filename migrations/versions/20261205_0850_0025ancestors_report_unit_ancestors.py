"""report_unit_ancestors, report_subtree_months: the org tree's closure, and the hours rollup summed per subtree

The charts sum each compared unit's subtree through the closure; the monthly trend
and the unit comparison read the subtree months (a dozen rows for a city).

Rebuilt with the report rollups (lms_core.reports.monthly.refresh); not built here:
with no stamp the pages queue the rebuild.

Revision ID: 0025ancestors
Revises: 0024lrsname
Create Date: 2026-12-05 08:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0025ancestors'
down_revision = '0024lrsname'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('report_unit_ancestors',
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('ancestor_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['ancestor_id'], ['org_units.id'], name=op.f('fk_report_unit_ancestors_ancestor_id_org_units'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_report_unit_ancestors_unit_id_org_units'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('unit_id', 'ancestor_id', name=op.f('pk_report_unit_ancestors'))
    )
    op.create_table('report_subtree_months',
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('credited_ms', sa.BigInteger(), nullable=False),
    sa.Column('learners', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_report_subtree_months_unit_id_org_units'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('unit_id', 'month', name=op.f('pk_report_subtree_months'))
    )


def downgrade():
    op.drop_table('report_subtree_months')
    op.drop_table('report_unit_ancestors')
