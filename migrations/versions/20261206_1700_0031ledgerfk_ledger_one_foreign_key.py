"""learning_intervals: one foreign key to the session row (with its person and lesson) instead of three

Each ledger row had three foreign keys: its session, its user and its lesson. PostgreSQL
checks each inserted row against each of them with a query that also locks the parent
row (``FOR KEY SHARE``): three checks per beat, and a lock, with its WAL record, on the
person's ``users`` row and on the lesson's row in every round transaction (the lesson's
row locked by every concurrent round becomes a multixact). The interval's user and lesson
are always its session's (``beat_rows.write`` takes them from the session row it locked),
so one composite key, ``(session_id, user_id, lesson_id)`` referring to
``learning_sessions (id, user_id, lesson_id)``, says all three did and more:

* the session exists, as before;
* the user and the lesson exist: the session row's own foreign keys to ``users`` and
  ``lessons`` hold them, and the session row cannot go (or change its user or lesson)
  while an interval refers to it;
* new: the interval's user and lesson are its session's (before, an interval could name
  another person's session).

Deleting a user or a lesson reaches the ledger through the sessions (``ON DELETE CASCADE``
on each step), where the append-only trigger refuses it, as it did directly before.

``ix_learning_intervals_lesson_id`` served the lesson foreign key's cascade (a deleted
lesson's rows found by lesson); no query reads the ledger by lesson alone (the learner's
lesson study reads by person, ``ix_learning_intervals_user_id_wall_end``), so it goes:
one index entry less per beat. The target of the new key is a unique index on
``learning_sessions (id, user_id, lesson_id)``; none of its columns changes after a
session is created, so a beat's update of the session stays HOT (migration 0030hotroom).

In a round of 100 beats (an in-process micro bench of the INSERT alone, 20,000 users):
52.5 → 34.5 µs of PostgreSQL CPU per row (docs/benchmarks.md, "The ledger's and the raw
beats' foreign keys").

PostgreSQL: adding the key reads the ledger once to check every row, with the table locked
against inserts (minutes on a year's ledger: docs/deployment.md, "Migrate"). SQLite: the
table is rebuilt (batch mode), and its append-only triggers, which the rebuild drops, are
created again.

Revision ID: 0031ledgerfk
Revises: 0030hotroom
Create Date: 2026-12-06 17:00:00

"""

from alembic import op

from lms_core.db import append_only_ddl

# revision identifiers, used by Alembic.
revision = "0031ledgerfk"
down_revision = "0030hotroom"
branch_labels = None
depends_on = None

TABLE = "learning_intervals"
TARGET = "uq_learning_sessions_id_user_id_lesson_id"
#: The composite key's name is the naming convention's for its first column (as the old
#: session key's was).
KEY = "fk_learning_intervals_session_id_learning_sessions"
SINGLE = {
    "fk_learning_intervals_session_id_learning_sessions": ("session_id", "learning_sessions"),
    "fk_learning_intervals_user_id_users": ("user_id", "users"),
    "fk_learning_intervals_lesson_id_lessons": ("lesson_id", "lessons"),
}
LESSON_INDEX = "ix_learning_intervals_lesson_id"


def upgrade() -> None:
    op.create_index(TARGET, "learning_sessions", ["id", "user_id", "lesson_id"], unique=True)
    if op.get_bind().dialect.name == "postgresql":
        for name in SINGLE:
            op.drop_constraint(name, TABLE, type_="foreignkey")
        op.create_foreign_key(
            KEY, TABLE, "learning_sessions", ["session_id", "user_id", "lesson_id"], ["id", "user_id", "lesson_id"],
            ondelete="CASCADE",
        )
        op.drop_index(LESSON_INDEX, table_name=TABLE)
        return
    with op.batch_alter_table(TABLE, recreate="always") as batch:
        for name in SINGLE:
            batch.drop_constraint(name, type_="foreignkey")
        batch.create_foreign_key(
            KEY,
            "learning_sessions",
            ["session_id", "user_id", "lesson_id"],
            ["id", "user_id", "lesson_id"],
            ondelete="CASCADE",
        )
        batch.drop_index(LESSON_INDEX)
    for statement in append_only_ddl(TABLE, "sqlite"):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(LESSON_INDEX, TABLE, ["lesson_id"])
        op.drop_constraint(KEY, TABLE, type_="foreignkey")
        for name, (column, parent) in SINGLE.items():
            op.create_foreign_key(name, TABLE, parent, [column], ["id"], ondelete="CASCADE")
    else:
        with op.batch_alter_table(TABLE, recreate="always") as batch:
            batch.drop_constraint(KEY, type_="foreignkey")
            for name, (column, parent) in SINGLE.items():
                batch.create_foreign_key(name, parent, [column], ["id"], ondelete="CASCADE")
            batch.create_index(LESSON_INDEX, ["lesson_id"])
        for statement in append_only_ddl(TABLE, "sqlite"):
            op.execute(statement)
    op.drop_index(TARGET, table_name="learning_sessions")
