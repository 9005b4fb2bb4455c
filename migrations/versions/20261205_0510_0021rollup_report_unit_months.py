"""report_unit_months: study hours per unit, rank band and Beijing month (the reports' rollup)

Dashboards and the hours report read this rollup instead of folding every
person's daily totals on each page load (issue 12: the city dashboard read
500,000 daily rows). It is derived data, rebuilt from learning_daily_totals by
lms_core.reports.monthly.refresh; report_rollups stamps when. Built here once so
the pages have figures right after the upgrade.

Revision ID: 0021rollup
Revises: 0020optional
Create Date: 2026-12-05 05:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0021rollup'
down_revision = '0020optional'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('report_unit_months',
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('rank_band', sa.Enum('county_and_above', 'township', 'general', name='rankband', native_enum=False, length=32), nullable=False),
    sa.Column('credited_ms', sa.BigInteger(), nullable=False),
    sa.Column('learners', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_report_unit_months_org_unit_id_org_units'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_unit_id', 'month', 'rank_band', name=op.f('pk_report_unit_months'))
    )
    op.create_table('report_rollups',
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('refreshed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_report_rollups'))
    )
    if op.get_bind().dialect.name == "postgresql":
        month, now = "date_trunc('month', d.day)::date", "now()"
    else:  # SQLite keeps dates as text and timestamps as naive UTC
        month, now = "date(d.day, 'start of month')", "datetime('now')"
    # The same statement as lms_core.reports.monthly.recomputed(), written out: a
    # migration must not import application code that may change after it.
    op.execute(f"""
        INSERT INTO report_unit_months (org_unit_id, month, rank_band, credited_ms, learners)
        SELECT u.org_unit_id, {month}, u.rank_band, sum(d.credited_ms), count(DISTINCT d.user_id)
        FROM learning_daily_totals d JOIN users u ON u.id = d.user_id
        GROUP BY u.org_unit_id, {month}, u.rank_band
    """)
    op.execute(f"""
        INSERT INTO report_rollups (name, refreshed_at, rows, duration_ms)
        SELECT 'unit_months', {now}, count(*), 0 FROM report_unit_months
    """)


def downgrade():
    op.drop_table('report_rollups')
    op.drop_table('report_unit_months')
