"""anti_idle person states: stored uncompressed up to a page, with room for HOT updates

Every accepted beat rewrites its person's state row (``INSERT … ON CONFLICT DO
UPDATE``), most of it JSON (recent sessions, the day's tally). Two PostgreSQL storage
defaults made that rewrite dear (docs/benchmarks.md, "PostgreSQL's side of a beat"):

* a row longer than ~2 kB (TOAST_TUPLE_THRESHOLD) is compressed with pglz on every
  write and decompressed on every read. Twenty sessions in a day take a learner past
  it; then pglz alone cost about a quarter of PostgreSQL's instructions for the round's
  two writes (~0.5 M instructions per beat, callgrind). ``toast_tuple_target = 8160``
  keeps rows inline and uncompressed up to a page; a longer row is still toasted.
* with the default fillfactor (100) a page holds five 1.4 kB rows and has no room for
  a new version, so about two thirds of the upserts were not HOT: a new index entry and
  a page elsewhere each time (the in-process group bench: 35 % HOT, 316 pages for 60
  rows). ``fillfactor = 50`` leaves half of each page for the next versions.

PostgreSQL only (SQLite has no such storage parameters). Existing rows move to pages
with room as they are next updated; ``VACUUM FULL anti_idle_person_states`` in a quiet
hour rewrites them at once.

Revision ID: 0009anti_idle_state_storage
Revises: 0008anti_idle_subtree
Create Date: 2026-12-06 04:00:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0009anti_idle_state_storage"
down_revision = "0008anti_idle_subtree"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE anti_idle_person_states SET (fillfactor = 50, toast_tuple_target = 8160)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE anti_idle_person_states RESET (fillfactor, toast_tuple_target)")
