"""Indexes in the learning-log browser's order: event_log and learning_sessions by (time, id)

The browser lists events newest first by (created_at, id) and study sessions by
(started_at, id), keyset-paginated. Without an index in that order PostgreSQL
read a county's month of events by walking the whole log backwards (2.2 s per
page at full size, issue 12); with it a date range is a range of the index.

Plain CREATE INDEX: it blocks writes to the table while it builds (seconds for a
million rows); run the upgrade in a quiet window.

Revision ID: 0026logidx
Revises: 0025ancestors
Create Date: 2026-12-05 09:00:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0026logidx"
down_revision = "0025ancestors"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_event_log_created_at_id", "event_log", ["created_at", "id"])
    op.create_index("ix_learning_sessions_started_at_id", "learning_sessions", ["started_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_learning_sessions_started_at_id", table_name="learning_sessions")
    op.drop_index("ix_event_log_created_at_id", table_name="event_log")
