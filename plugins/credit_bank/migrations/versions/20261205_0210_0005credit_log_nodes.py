"""credit transcripts: stored interior nodes of the Merkle logs (credit_log_nodes)

Tree heads, inclusion and consistency proofs read O(log n) stored nodes instead of rebuilding
the tree from every leaf (issuing a transcript did that). Append-only like the leaves. The
nodes of the leaves logged so far are computed here, log by log, in chunks.

Revision ID: 0005credit_log_nodes
Revises: 0004credit_fast_check
Create Date: 2026-12-05 02:00:00

"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0005credit_log_nodes"
down_revision = "0004credit_fast_check"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credit_log_nodes",
        sa.Column("log", sa.String(length=16), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("log", "level", "idx", name=op.f("pk_credit_log_nodes")),
    )
    _backfill()
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE TRIGGER credit_log_nodes_no_update_delete BEFORE UPDATE OR DELETE ON credit_log_nodes
            FOR EACH ROW EXECUTE FUNCTION credit_append_only();
        """)
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER credit_log_nodes_no_{action.lower()} BEFORE {action} ON credit_log_nodes
                BEGIN SELECT RAISE(ABORT, 'credit_log_nodes is append-only'); END;
            """)


def _backfill() -> None:
    """Every complete subtree of the leaves logged so far (self-contained: no app imports)."""
    bind = op.get_bind()
    nodes = sa.table(
        "credit_log_nodes", sa.column("log"), sa.column("level"), sa.column("idx"), sa.column("hash")
    )
    for (log,) in bind.execute(sa.text("SELECT DISTINCT log FROM credit_log_leaves")).all():
        level = [
            bytes.fromhex(h)
            for (h,) in bind.execute(
                sa.text("SELECT leaf_hash FROM credit_log_leaves WHERE log = :log ORDER BY idx"), {"log": log}
            )
        ]
        depth = 0
        while len(level) > 1:
            level = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
            depth += 1
            rows = [{"log": log, "level": depth, "idx": i, "hash": h.hex()} for i, h in enumerate(level)]
            for k in range(0, len(rows), 5000):
                bind.execute(nodes.insert(), rows[k : k + 5000])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS credit_log_nodes_no_update_delete ON credit_log_nodes")
    else:
        op.execute("DROP TRIGGER IF EXISTS credit_log_nodes_no_update")
        op.execute("DROP TRIGGER IF EXISTS credit_log_nodes_no_delete")
    op.drop_table("credit_log_nodes")
