"""anti_idle: a partial index in the review queue's order (held days not yet decided)

The review queue lists held days no auditor has decided, highest review score
first, then the oldest day (keyset on review_score DESC, day, id). Without an
index in that order PostgreSQL read and sorted the held days of every person in
scope on each page (issue 12). The index holds only the waiting days, so it
stays small as decisions accumulate.

Revision ID: 0006anti_idle_review
Revises: 0005anti_idle
Create Date: 2026-12-05 09:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0006anti_idle_review"
down_revision = "0005anti_idle"
branch_labels = None
depends_on = None

# As plugins.anti_idle.models.REVIEW_QUEUE_WHERE (copied: migrations do not import app code).
WAITING = "verdict = 'held' AND review_state NOT IN ('posted', 'voided')"


def upgrade() -> None:
    op.create_index(
        "ix_anti_idle_day_verdicts_review_queue",
        "anti_idle_day_verdicts",
        [sa.text("review_score DESC"), "day", "id"],
        postgresql_where=sa.text(WAITING),
        sqlite_where=sa.text(WAITING),
    )


def downgrade() -> None:
    op.drop_index("ix_anti_idle_day_verdicts_review_queue", table_name="anti_idle_day_verdicts")
