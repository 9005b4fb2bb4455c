"""Surveys carried over by 0019 say "（选填）" once: the page adds it to every optional question

0019survey named the fixed form's comment question "意见建议（选填）", as the old
form's label read; the survey page now marks every optional question with
"（选填）" itself, so learners saw it twice. The carried-over question gets the
wording new surveys get ("意见建议"). Only that exact, still optional question is
changed: a wording an author chose is left alone.

Revision ID: 0020optional
Revises: 0019survey
Create Date: 2026-12-05 05:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0020optional"
down_revision = "0019survey"
branch_labels = None
depends_on = None

OLD_TEXT = "意见建议（选填）"
NEW_TEXT = "意见建议"


def upgrade():
    op.execute(
        sa.text(
            "UPDATE survey_questions SET text = :new WHERE text = :old AND kind = 'text' AND required = :optional"
        ).bindparams(new=NEW_TEXT, old=OLD_TEXT, optional=False)
    )


def downgrade():
    # Nothing to undo: the schema is unchanged, and "意见建议" reads right under 0019 as well
    # (putting "（选填）" back could not tell the carried-over questions from new ones).
    pass
