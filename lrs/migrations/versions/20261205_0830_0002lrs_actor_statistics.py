"""lrs_statements: statistics on the actor's account name and home page

The learning-log browser ties each statement to a learner through the actor's
account (``data #>> '{actor,account,name}'`` = users.username, and the home page
= LMS_PLATFORM_URL). PostgreSQL had no statistics on those expressions and
guessed that 0.5 % of statements were the platform's: it then scanned and sorted
every statement for a county's page (0.4-0.7 s on 200,000 statements). The
statistics give it the real shares, and it walks the newest statements instead
(0.04 s). Statistics, not an expression index: Alembic cannot compare an
expression index on SQLite, and the walk needs none (issue 12).

PostgreSQL only: SQLite has neither the operator nor extended statistics.

Revision ID: 0002lrs
Revises: 0001lrs
Create Date: 2026-12-05 08:30:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0002lrs"
down_revision = "0001lrs"
branch_labels = None
depends_on = None

# The expressions as lrs.log_query writes them (copied: migrations do not import app code).
ACTOR_NAME = "(data #>> '{actor,account,name}')"
ACTOR_HOME = "(data #>> '{actor,account,homePage}')"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"CREATE STATISTICS st_lrs_statements_actor_name ON {ACTOR_NAME} FROM lrs_statements")
    op.execute(f"CREATE STATISTICS st_lrs_statements_actor_home ON {ACTOR_HOME} FROM lrs_statements")
    op.execute("ANALYZE lrs_statements")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP STATISTICS IF EXISTS st_lrs_statements_actor_home")
    op.execute("DROP STATISTICS IF EXISTS st_lrs_statements_actor_name")
