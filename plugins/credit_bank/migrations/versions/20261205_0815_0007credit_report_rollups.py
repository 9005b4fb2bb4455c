"""credit_bank report rollups: cadres per unit, band, party and position; posted credit per unit, year and band

The dashboard's "hours earned against required" grouped 100,000 cadres and their
counted accounts on every page load (issue 12). These derived rows hold the cadres
without a rank history (the others are few and read live); they are rebuilt with
the core's report rollups (lms_report_rollups, stamped in report_rollups), not
here: the pages queue the rebuild when a stamp is missing.

Revision ID: 0007credit_rollups
Revises: 0006credit_stmt_check
Create Date: 2026-12-05 08:15:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007credit_rollups'
down_revision = '0006credit_stmt_check'
branch_labels = None
depends_on = '0021rollup'  # report_rollups, where the rebuild stamps these


def upgrade() -> None:
    op.create_table('credit_bank_unit_people',
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('rank_band', sa.String(length=32), nullable=False),
    sa.Column('party_member', sa.Boolean(), nullable=False),
    sa.Column('position', sa.String(length=100), nullable=False),
    sa.Column('people', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_credit_bank_unit_people_org_unit_id_org_units'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_unit_id', 'rank_band', 'party_member', 'position', name=op.f('pk_credit_bank_unit_people'))
    )
    op.create_table('credit_bank_unit_earned',
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('rank_band', sa.String(length=32), nullable=False),
    sa.Column('earned', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_credit_bank_unit_earned_org_unit_id_org_units'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_unit_id', 'period', 'rank_band', name=op.f('pk_credit_bank_unit_earned'))
    )


def downgrade() -> None:
    op.drop_table('credit_bank_unit_earned')
    op.drop_table('credit_bank_unit_people')
