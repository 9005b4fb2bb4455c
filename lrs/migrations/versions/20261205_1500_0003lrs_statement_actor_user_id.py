"""lrs_statements.actor_user_id: the platform learner a statement is about, stored beside it

The learning-log browser scopes statements to an auditor's subtree through their
learner's unit. The learner was only inside the statement's JSON (the actor's
account name, when its home page is LMS_PLATFORM_URL), so a county's count read
and hashed every candidate statement's JSON (45 ms of PostgreSQL CPU per page with
1,000,000 statements, issue 12). The LRS now stores the learner's ``users.id`` when
it stores a statement; this revision adds the column and its index
(learner, stored) and fills it for the statements already stored, in SQL, with
the same rule: the account's home page equals LMS_PLATFORM_URL (without its
trailing slash) and its name is a username.

No foreign key: the LRS keeps what it stored whatever happens to an account.
The UPDATE rewrites every platform statement's row once (about a minute per
million on PostgreSQL); run the upgrade in a quiet window.

Revision ID: 0003lrs
Revises: 0002lrs
Create Date: 2026-12-05 15:00:00

"""

import sqlalchemy as sa
from alembic import op
from flask import current_app, has_app_context

# revision identifiers, used by Alembic.
revision = "0003lrs"
down_revision = "0002lrs"
branch_labels = None
depends_on = None


def _platform_base() -> str:
    # As lrs.statements.platform_base (migrations do not import app code).
    config = current_app.config if has_app_context() else {}
    return str(config.get("LMS_PLATFORM_URL", "")).rstrip("/")


def upgrade() -> None:
    op.add_column("lrs_statements", sa.Column("actor_user_id", sa.Integer(), nullable=True))
    base = _platform_base()
    if base:
        bind = op.get_bind()
        if bind.dialect.name == "postgresql":
            bind.execute(
                sa.text(
                    "UPDATE lrs_statements s SET actor_user_id = u.id FROM users u "
                    "WHERE u.username = s.data #>> '{actor,account,name}' "
                    "AND s.data #>> '{actor,account,homePage}' = :base"
                ),
                {"base": base},
            )
        else:
            bind.execute(
                sa.text(
                    "UPDATE lrs_statements SET actor_user_id = (SELECT u.id FROM users u "
                    "WHERE u.username = json_extract(lrs_statements.data, '$.actor.account.name')) "
                    "WHERE json_extract(data, '$.actor.account.homePage') = :base"
                ),
                {"base": base},
            )
    op.create_index("ix_lrs_statements_actor_user_id_stored", "lrs_statements", ["actor_user_id", "stored"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ANALYZE lrs_statements")  # the planner's figures for the new column


def downgrade() -> None:
    op.drop_index("ix_lrs_statements_actor_user_id_stored", table_name="lrs_statements")
    with op.batch_alter_table("lrs_statements") as batch_op:
        batch_op.drop_column("actor_user_id")
