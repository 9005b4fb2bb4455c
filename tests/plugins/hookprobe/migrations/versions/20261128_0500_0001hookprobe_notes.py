"""hookprobe: one small table, to prove that a plugin brings its own Alembic branch

Revision ID: 0001hookprobe
Revises:
Create Date: 2026-11-28 05:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = "0001hookprobe"
down_revision = None
branch_labels = ("hookprobe",)
depends_on = "0001core"


def upgrade():
    op.create_table(
        "hookprobe_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_hookprobe_notes_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hookprobe_notes")),
    )


def downgrade():
    op.drop_table("hookprobe_notes")
