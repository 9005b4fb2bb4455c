"""Editable survey questions: survey_questions, survey_answers, answers carried over; quiz_questions.archived_at

Every survey lesson (and any lesson that has answers) gets the two questions its
fixed form asked: the 1–5 rating and the optional comment. Each existing answer
becomes answers to those questions, so no rating or comment is lost. The old
``lesson_feedback.rating``/``comment`` columns stay (rating now nullable) and are
no longer written; the downgrade drops the new tables and leaves them as they were.

Revision ID: 0019survey
Revises: 0018budget
Create Date: 2026-12-05 01:30:00

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0019survey"
down_revision = "0018budget"
branch_labels = None
depends_on = None

#: The wording of the fixed form, as learners saw it in Chinese.
RATING_TEXT = "本课时对您有多大帮助？（1 = 没有帮助，5 = 很有帮助）"
COMMENT_TEXT = "意见建议（选填）"


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _sql(empty: str, statement: str) -> sa.TextClause:
    # ``{empty}`` is an empty JSON array in the engine's own syntax (a constant, not input).
    return sa.text(statement.replace("{empty}", empty))


def upgrade():
    op.create_table(
        "survey_questions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lesson_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("options", _json(), nullable=False),
        sa.Column("scale", sa.Integer(), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["lesson_id"], ["lessons.id"], name=op.f("fk_survey_questions_lesson_id_lessons"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_questions")),
    )
    op.create_index(op.f("ix_survey_questions_lesson_id"), "survey_questions", ["lesson_id"], unique=False)
    op.create_table(
        "survey_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("choices", _json(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["question_id"],
            ["survey_questions.id"],
            name=op.f("fk_survey_answers_question_id_survey_questions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["lesson_feedback.id"],
            name=op.f("fk_survey_answers_response_id_lesson_feedback"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_answers")),
        sa.UniqueConstraint("response_id", "question_id", name=op.f("uq_survey_answers_response_id_question_id")),
    )
    op.create_index(op.f("ix_survey_answers_question_id"), "survey_answers", ["question_id"], unique=False)
    with op.batch_alter_table("lesson_feedback", schema=None) as batch_op:
        batch_op.alter_column("rating", existing_type=sa.Integer(), nullable=True)
    # Quiz questions are edited too now: one answered in an attempt is archived, not deleted.
    with op.batch_alter_table("quiz_questions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))

    bind = op.get_bind()
    empty = "CAST('[]' AS JSONB)" if bind.dialect.name == "postgresql" else "'[]'"
    for kind, text, required, position in (("rating", RATING_TEXT, True, 1), ("text", COMMENT_TEXT, False, 2)):
        bind.execute(
            _sql(
                empty,
                "INSERT INTO survey_questions (lesson_id, kind, text, options, scale, required, position) "
                "SELECT l.id, :kind, :text, {empty}, 5, :required, :position FROM "
                "(SELECT id FROM lessons WHERE kind = 'survey' UNION SELECT lesson_id FROM lesson_feedback) AS l",
            ),
            {"kind": kind, "text": text, "required": required, "position": position},
        )
    bind.execute(
        _sql(
            empty,
            "INSERT INTO survey_answers (response_id, question_id, score, choices, text) "
            "SELECT f.id, q.id, f.rating, {empty}, '' FROM lesson_feedback f "
            "JOIN survey_questions q ON q.lesson_id = f.lesson_id AND q.kind = 'rating' WHERE f.rating IS NOT NULL",
        )
    )
    bind.execute(
        _sql(
            empty,
            "INSERT INTO survey_answers (response_id, question_id, score, choices, text) "
            "SELECT f.id, q.id, NULL, {empty}, f.comment FROM lesson_feedback f "
            "JOIN survey_questions q ON q.lesson_id = f.lesson_id AND q.kind = 'text' WHERE f.comment <> ''",
        )
    )


def downgrade():
    # Answers given after the upgrade exist only in survey_answers: put the first rating and
    # comment of each sheet back into the old columns before dropping, so nothing rated is lost.
    bind = op.get_bind()
    bind.execute(
        sa.text(
            "UPDATE lesson_feedback SET rating = (SELECT a.score FROM survey_answers a "
            "JOIN survey_questions q ON q.id = a.question_id WHERE a.response_id = lesson_feedback.id "
            "AND q.kind = 'rating' AND a.score IS NOT NULL ORDER BY q.position, q.id LIMIT 1) WHERE rating IS NULL"
        )
    )
    bind.execute(sa.text("DELETE FROM lesson_feedback WHERE rating IS NULL"))
    with op.batch_alter_table("lesson_feedback", schema=None) as batch_op:
        batch_op.alter_column("rating", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("quiz_questions", schema=None) as batch_op:
        batch_op.drop_column("archived_at")
    op.drop_index(op.f("ix_survey_answers_question_id"), table_name="survey_answers")
    op.drop_table("survey_answers")
    op.drop_index(op.f("ix_survey_questions_lesson_id"), table_name="survey_questions")
    op.drop_table("survey_questions")
