"""repair courses re-filed under topics named "<Topic id=N>"

The course edit form showed the course's Topic object as its repr, so saving a
course without retyping the topic moved it into a new topic literally named
"<Topic id=N>" (and saving again into "<Topic id=M>" for that one). This puts each
such course back under topic N, following the chain to the first real topic, and
deletes the junk topics. A chain that ends at a topic that no longer exists leaves
the course without a topic (as deleting a topic does: ON DELETE SET NULL).

Data only: no schema change, so downgrade has nothing to undo.

Revision ID: 0010topicrepr
Revises: 0009ledger
Create Date: 2026-12-04 22:30:00

"""
import re

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010topicrepr'
down_revision = '0009ledger'
branch_labels = None
depends_on = None

JUNK = re.compile(r"<Topic id=(\d+)>")

topics = sa.table("course_topics", sa.column("id", sa.Integer), sa.column("name", sa.String))
courses = sa.table("courses", sa.column("id", sa.Integer), sa.column("topic_id", sa.Integer))


def resolve(junk: dict[int, int], real: set[int], topic_id: int) -> int | None:
    """The real topic a junk topic stands for, following "<Topic id=N>" chains."""
    seen = set()
    while topic_id in junk and topic_id not in seen:
        seen.add(topic_id)
        topic_id = junk[topic_id]
    return topic_id if topic_id in real else None


def upgrade():
    conn = op.get_bind()
    junk: dict[int, int] = {}
    real: set[int] = set()
    for topic_id, name in conn.execute(sa.select(topics.c.id, topics.c.name)):
        match = JUNK.fullmatch(name.strip())
        if match:
            junk[topic_id] = int(match.group(1))
        else:
            real.add(topic_id)
    for topic_id in junk:
        conn.execute(courses.update().where(courses.c.topic_id == topic_id)
                     .values(topic_id=resolve(junk, real, topic_id)))
    if junk:
        conn.execute(topics.delete().where(topics.c.id.in_(list(junk))))


def downgrade():
    pass
