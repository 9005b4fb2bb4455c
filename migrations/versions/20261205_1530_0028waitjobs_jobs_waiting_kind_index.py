"""jobs: a partial index on kind for the jobs still queued or running

Once the report rollups are older than LMS_REPORT_ROLLUP_MAX_AGE and no worker has
run the queued rebuild yet, every report page asks whether a rebuild of that kind
is waiting. With only ix_jobs_status_run_after, PostgreSQL read every queued job of
every kind (50,600 rows on the issue-12 seed, 20-34 ms per page). The index holds
only the waiting jobs, so it stays small as done jobs accumulate.

Revision ID: 0028waitjobs
Revises: 0027subtree
Create Date: 2026-12-05 15:30:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0028waitjobs"
down_revision = "0027subtree"
branch_labels = None
depends_on = None

# As lms_core.jobs.models.WAITING_WHERE (copied: migrations do not import app code).
WAITING = "status IN ('queued', 'running')"


def upgrade() -> None:
    op.create_index(
        "ix_jobs_waiting_kind",
        "jobs",
        ["kind"],
        postgresql_where=sa.text(WAITING),
        sqlite_where=sa.text(WAITING),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_waiting_kind", table_name="jobs")
