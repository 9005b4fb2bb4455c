"""credit ledger: the 学分 ledger (XF, 学分银行学分)

Reference data only: ledger 5, ``XF``, whose amounts are 0.01 学分. Counted 学时 become 学分
through the policy's conversions (linked transfers through the conversion pools, see
plugins/credit_bank/type_conversion.py). The application also inserts a missing reference
ledger on first use (``ledger.ensure_ledgers``), so the insert ignores an existing row.

Revision ID: 0012credit_xf_ledger
Revises: 0011credit_visible_brin
Create Date: 2026-12-05 12:05:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0012credit_xf_ledger"
down_revision = "0011credit_visible_brin"
branch_labels = None
depends_on = None

XF = {"id": 5, "code": "XF", "name": "Credit bank credits", "scale": 2}


def upgrade() -> None:
    have = op.get_bind().execute(sa.text("SELECT 1 FROM credit_ledgers WHERE id = :id"), {"id": XF["id"]}).first()
    if have is None:
        op.execute(
            sa.text("INSERT INTO credit_ledgers (id, code, name, scale) VALUES (:id, :code, :name, :scale)").bindparams(
                **XF
            )
        )


def downgrade() -> None:
    # Only an unused ledger can go: credit_accounts keeps its foreign key (RESTRICT), so a
    # ledger with accounts refuses, and the journal, which is append-only, stays whole.
    op.execute(sa.text("DELETE FROM credit_ledgers WHERE id = :id").bindparams(id=XF["id"]))
