"""anti_idle beats: the session key checked once per statement on PostgreSQL, not once per row

As the core's migration 0032sessionkey does for the ledger (read it for the rule, the locking
and the figures): the raw beats' foreign key ``(session_id, user_id, lesson_id)`` →
``learning_sessions (id, user_id, lesson_id)`` (0011anti_idle_beat_session_key) cost ~65 k
PostgreSQL instructions a beat, one SPI query per row. On PostgreSQL it becomes the three
triggers of ``lms_core.db.session_key_ddl``: an inserted beat naming no session of its own is
refused (``foreign_key_violation``), a session with raw beats cannot be deleted (``anti_idle_beats
is append-only``, what the key's ``ON DELETE CASCADE`` met at the append-only trigger) nor
re-keyed. SQLite keeps the foreign key (the model declares it for SQLite only).

Downgrade drops the triggers and adds the key back (a scan of the table to check every row).

Revision ID: 0014anti_idle_stmt_key
Revises: 0013anti_idle_beat_json
Create Date: 2026-12-07 03:25:00

"""

from alembic import op

from lms_core.db import drop_session_key_ddl, session_key_ddl

# revision identifiers, used by Alembic.
revision = "0014anti_idle_stmt_key"
down_revision = "0013anti_idle_beat_json"
branch_labels = None
depends_on = None

TABLE = "anti_idle_beats"
KEY = "fk_anti_idle_beats_session_id_learning_sessions"
COLUMNS = ["session_id", "user_id", "lesson_id"]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_constraint(KEY, TABLE, type_="foreignkey")
    for statement in session_key_ddl(TABLE):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in drop_session_key_ddl(TABLE):
        op.execute(statement)
    op.create_foreign_key(
        KEY, TABLE, "learning_sessions", COLUMNS, ["id", "user_id", "lesson_id"], ondelete="CASCADE"
    )
