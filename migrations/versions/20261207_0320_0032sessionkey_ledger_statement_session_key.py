"""learning_intervals: the session key checked once per statement on PostgreSQL, not once per row

The ledger's one foreign key (0031ledgerfk: ``(session_id, user_id, lesson_id)`` →
``learning_sessions (id, user_id, lesson_id)``) cost PostgreSQL ~65 k instructions a beat:
``RI_FKey_check_ins`` runs, for every inserted row, an SPI query with its executor start-up,
a key-share lock and an index probe (``bench/beat_pg.py --top``, docs/benchmarks.md, "The
session keys as statement-level checks"). On PostgreSQL the key becomes three triggers
(``lms_core.db.session_key_ddl``) that keep the same rule with one query a statement:

* inserting rows: every distinct session key of the statement's rows (a transition table)
  must be a session row, else ``foreign_key_violation``, in a multi-row INSERT too. The
  session rows are held against a concurrent delete until commit: the beat's round has
  updated its sessions already (their ``xmin`` is the transaction's, so nothing more is
  done); any other writer's statement updates them once (a no-op), so that a concurrent
  delete waits and then sees the rows (READ COMMITTED) or fails to serialize (REPEATABLE
  READ, SERIALIZABLE), as the key's ``FOR KEY SHARE`` and cross-check did;
* deleting sessions (a user, a lesson or an enrolment deleted cascades to its sessions): a
  session with ledger rows is refused with ``learning_intervals is append-only``, the error
  the key's ``ON DELETE CASCADE`` met at the ledger's append-only trigger: the same refusal;
* changing a session's id, person or lesson while rows name it is refused
  (``foreign_key_violation``, as the key's ``ON UPDATE NO ACTION``).

SQLite keeps the foreign key (its check is cheap there, and SQLite has no transition
tables): the model declares it for SQLite only (``ddl_if``), and ``migrations/env.py``'s
``include_object`` does not ask PostgreSQL for it.

Downgrade drops the triggers and adds the key back, which reads the ledger once to check
every row, with the table locked against inserts (minutes on a year's ledger).

Revision ID: 0032sessionkey
Revises: 0031ledgerfk
Create Date: 2026-12-07 03:20:00

"""

from alembic import op

from lms_core.db import drop_session_key_ddl, session_key_ddl

# revision identifiers, used by Alembic.
revision = "0032sessionkey"
down_revision = "0031ledgerfk"
branch_labels = None
depends_on = None

TABLE = "learning_intervals"
KEY = "fk_learning_intervals_session_id_learning_sessions"
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
