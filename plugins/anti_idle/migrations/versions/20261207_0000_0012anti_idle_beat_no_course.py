"""anti_idle beats: no course column (the beat's course is its lesson's)

A raw beat carried its course (``course_id``) with a foreign key to ``courses``: every beat's
INSERT checked it, which locks the course row ``FOR KEY SHARE`` (one row shared by every learner
of the course, so concurrent rounds lock it as a multixact and log it), ~52 k of ~960 k backend
instructions a beat (docs/benchmarks.md). No query reads the column: the reports, the auditor
console, recompute, the learner pages and the exports select beats by person, day, session or
lesson, and the plugin takes the course of a beat's policy from the core's claim, not from the
beat. The course stays determined another way, as strictly as before:

* the beat's one key ``(session_id, user_id, lesson_id)`` refers to its session's row
  (0011anti_idle_beat_session_key), whose own key holds the lesson, and the lesson's
  ``course_id`` is a foreign key to the course;
* a lesson never changes course (``courses.structure.update_lesson`` refuses to move it to a
  section of another course), so the course a beat's lesson has now is the one it had when the
  beat was received;
* deleting a course still reaches its raw beats (course → lessons → sessions → beats, ``ON
  DELETE CASCADE`` on each step), where the append-only trigger refuses it, as before.

The upgrade first checks that every stored beat's course is its lesson's (the core wrote it
from the lesson it locked) and refuses to drop the column otherwise: nothing the column held is
lost. The downgrade adds the column back filled from the lessons (the append-only trigger is
switched off for that one UPDATE on PostgreSQL; SQLite's triggers are gone during the rebuild
and created again after it), with its key.

PostgreSQL: dropping a column only marks it dropped (no rewrite). SQLite: the table is rebuilt
(batch mode) and its append-only triggers, which the rebuild drops, are created again.

Revision ID: 0012anti_idle_beat_no_course
Revises: 0011anti_idle_beat_session_key
Create Date: 2026-12-07 00:00:00

"""

import sqlalchemy as sa
from alembic import op

from lms_core.db import append_only_ddl, drop_append_only_ddl

# revision identifiers, used by Alembic.
revision = "0012anti_idle_beat_no_course"
down_revision = "0011anti_idle_beat_session_key"
branch_labels = None
depends_on = None

TABLE = "anti_idle_beats"
KEY = "fk_anti_idle_beats_course_id_courses"
#: Beats whose stored course is not their lesson's (none, as the core writes them).
MISMATCHED = (
    "SELECT count(*) FROM anti_idle_beats AS b JOIN lessons AS l ON l.id = b.lesson_id WHERE b.course_id <> l.course_id"
)
FILL = "UPDATE anti_idle_beats SET course_id = (SELECT l.course_id FROM lessons AS l WHERE l.id = anti_idle_beats.lesson_id)"


def upgrade() -> None:
    bind = op.get_bind()
    mismatched = bind.execute(sa.text(MISMATCHED)).scalar_one()
    if mismatched:
        raise RuntimeError(
            f"{mismatched} raw beats name a course that is not their lesson's: the column is kept "
            "(investigate before dropping it)"
        )
    if bind.dialect.name == "postgresql":
        op.drop_constraint(KEY, TABLE, type_="foreignkey")
        op.drop_column(TABLE, "course_id")
        return
    with op.batch_alter_table(TABLE, recreate="always") as batch:
        batch.drop_constraint(KEY, type_="foreignkey")
        batch.drop_column("course_id")
    for statement in append_only_ddl(TABLE, "sqlite"):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.add_column(TABLE, sa.Column("course_id", sa.Integer(), nullable=True))
        op.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {TABLE}_no_update_delete")
        op.execute(FILL)
        op.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {TABLE}_no_update_delete")
        op.alter_column(TABLE, "course_id", nullable=False)
        op.create_foreign_key(KEY, TABLE, "courses", ["course_id"], ["id"], ondelete="CASCADE")
        return
    with op.batch_alter_table(TABLE, recreate="always") as batch:
        batch.add_column(sa.Column("course_id", sa.Integer(), nullable=True))
    # The rebuild dropped the append-only triggers (dropped again here in case it did not).
    for statement in drop_append_only_ddl(TABLE, "sqlite"):
        op.execute(statement)
    op.execute(FILL)
    with op.batch_alter_table(TABLE, recreate="always") as batch:
        batch.alter_column("course_id", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(KEY, "courses", ["course_id"], ["id"], ondelete="CASCADE")
    for statement in append_only_ddl(TABLE, "sqlite"):
        op.execute(statement)
