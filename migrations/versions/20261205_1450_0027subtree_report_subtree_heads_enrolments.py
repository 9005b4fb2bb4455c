"""report_subtree_heads, report_subtree_enrolments: head counts and enrolments summed per subtree

The city dashboard summed report_unit_heads and report_unit_enrolments through the
tree's closure on every page load (about 10 ms of PostgreSQL each for a city's 49
counties, issue 12). The rollups now hold each unit's subtree already summed (one
row per unit, read by primary key); nothing else read the per-unit rows, so those
tables go. Derived rows: not built here. The new stamp names are missing until the
next refresh, so the pages queue the rebuild; the old stamps are removed.

Revision ID: 0027subtree
Revises: 0026logidx
Create Date: 2026-12-05 14:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0027subtree'
down_revision = '0026logidx'
branch_labels = None
depends_on = None

BAND = sa.Enum('county_and_above', 'township', 'general', name='rankband', native_enum=False, length=32)


def upgrade():
    op.drop_table('report_unit_enrolments')
    op.drop_table('report_unit_heads')
    op.execute("DELETE FROM report_rollups WHERE name IN ('unit_heads', 'unit_enrolments')")
    op.create_table('report_subtree_heads',
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('active', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_report_subtree_heads_unit_id_org_units'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('unit_id', name=op.f('pk_report_subtree_heads'))
    )
    op.create_table('report_subtree_enrolments',
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('enrolments', sa.Integer(), nullable=False),
    sa.Column('completed', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_report_subtree_enrolments_unit_id_org_units'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('unit_id', 'year', name=op.f('pk_report_subtree_enrolments'))
    )


def downgrade():
    op.drop_table('report_subtree_enrolments')
    op.drop_table('report_subtree_heads')
    op.execute("DELETE FROM report_rollups WHERE name IN ('subtree_heads', 'subtree_enrolments')")
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
