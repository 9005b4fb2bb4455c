"""anti_idle beats: one foreign key to the session row (with its person and lesson) instead of three

As the core's migration 0031ledgerfk does for the ledger: a raw beat's session, user and
lesson were three foreign keys, each checked (and its parent row locked, with a WAL record
for the person's ``users`` row and a multixact on the lesson's row shared by concurrent
rounds) for every beat. The beat's user and lesson are its session's (``services.beat_row``
takes them from the session the core locked), so one composite key ``(session_id, user_id,
lesson_id)`` referring to ``learning_sessions (id, user_id, lesson_id)`` holds what the
three did (the session row's own keys hold the user and the lesson) and also that the
beat's person and lesson are its session's. The course key stays: the lesson's course is
not part of the session row.

Deleting a user or a lesson reaches the raw beats through the sessions (``ON DELETE
CASCADE`` on each step), where the append-only trigger refuses it, as before. Every index
of the table stays: each serves a query (the day's beats, a lesson's last beat, a session's
last beat).

PostgreSQL: adding the key reads the table once to check every row, with the table locked
against inserts. SQLite: the table is rebuilt (batch mode) and its append-only triggers, which
the rebuild drops, are created again.

Revision ID: 0011anti_idle_beat_session_key
Revises: 0010anti_idle_state_json
Create Date: 2026-12-06 17:05:00

"""

from alembic import op

from lms_core.db import append_only_ddl

# revision identifiers, used by Alembic.
revision = "0011anti_idle_beat_session_key"
down_revision = "0010anti_idle_state_json"
branch_labels = None
#: The unique index on learning_sessions (id, user_id, lesson_id) the key refers to.
depends_on = "0031ledgerfk"

TABLE = "anti_idle_beats"
KEY = "fk_anti_idle_beats_session_id_learning_sessions"
SINGLE = {
    "fk_anti_idle_beats_session_id_learning_sessions": ("session_id", "learning_sessions"),
    "fk_anti_idle_beats_user_id_users": ("user_id", "users"),
    "fk_anti_idle_beats_lesson_id_lessons": ("lesson_id", "lessons"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in SINGLE:
            op.drop_constraint(name, TABLE, type_="foreignkey")
        op.create_foreign_key(
            KEY, TABLE, "learning_sessions", ["session_id", "user_id", "lesson_id"], ["id", "user_id", "lesson_id"],
            ondelete="CASCADE",
        )
        return
    with op.batch_alter_table(TABLE, recreate="always") as batch:
        for name in SINGLE:
            batch.drop_constraint(name, type_="foreignkey")
        batch.create_foreign_key(
            KEY, "learning_sessions", ["session_id", "user_id", "lesson_id"], ["id", "user_id", "lesson_id"],
            ondelete="CASCADE",
        )
    for statement in append_only_ddl(TABLE, "sqlite"):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(KEY, TABLE, type_="foreignkey")
        for name, (column, parent) in SINGLE.items():
            op.create_foreign_key(name, TABLE, parent, [column], ["id"], ondelete="CASCADE")
        return
    with op.batch_alter_table(TABLE, recreate="always") as batch:
        batch.drop_constraint(KEY, type_="foreignkey")
        for name, (column, parent) in SINGLE.items():
            batch.create_foreign_key(name, parent, [column], ["id"], ondelete="CASCADE")
    for statement in append_only_ddl(TABLE, "sqlite"):
        op.execute(statement)
