"""The beat's updated rows: room on each page for their next version (HOT updates)

Every accepted beat updates its session row, its lesson's progress row, the person's
clock and the day's total. An update that changes no indexed column is HOT (heap-only:
no new index entry, one page touched) only if the new version fits on the row's own
page. With PostgreSQL's default fillfactor (100) inserts pack each page full, so the
first update of a row on a packed page moves it to another page and adds an entry to
every index of the table: three for learning_sessions, four for lesson_progress. In
the in-process group bench (``bench/beat_split.py --group 100 --sets 4 --cycles 10``)
only 23 % of the session updates and 55 % of the progress updates were HOT
(docs/benchmarks.md, "The beat's updated rows: room for HOT updates").

``fillfactor`` leaves that much of each page to updates: 70 % for sessions and
progress (rows of ~150-450 bytes with three and four indexes, where a non-HOT update
costs most), 80 % for the clocks and day totals (rows of ~50 bytes with the primary
key only: a fifth of a page holds ~30 versions). None of the columns a beat writes is
indexed (``lms_core/learning/beat_rows.py``), so each such update can be HOT.

PostgreSQL only (SQLite has no storage parameters). Existing pages are not rewritten:
rows move to pages with room as they are next updated (sessions are short-lived, so new
ones soon carry the load); ``VACUUM FULL`` of a table in a quiet hour rewrites it at once.

Revision ID: 0030hotroom
Revises: 0029unityears
Create Date: 2026-12-06 16:40:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0030hotroom"
down_revision = "0029unityears"
branch_labels = None
depends_on = None

#: As the models declare them (copied: migrations do not import app code).
FILLFACTOR = {
    "learning_sessions": 70,
    "lesson_progress": 70,
    "learning_person_clocks": 80,
    "learning_daily_totals": 80,
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, fillfactor in FILLFACTOR.items():
            op.execute(f"ALTER TABLE {table} SET (fillfactor = {fillfactor})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in FILLFACTOR:
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
