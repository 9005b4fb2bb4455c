"""course search text: code, title and description folded once for the catalogue's LIKE

Revision ID: 0006search
Revises: 0005daily
Create Date: 2026-11-28 08:00:00

"""
import unicodedata

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006search'
down_revision = '0005daily'
branch_labels = None
depends_on = None


def _fold(code, title, description):
    # Frozen copy of lms_core.courses.models.course_search_text as of this revision:
    # a migration must keep doing what it did when it was written.
    text = "\n".join((code or "", title or "", description or ""))
    return unicodedata.normalize("NFKC", text).casefold()


def upgrade():
    op.add_column('courses', sa.Column('search_text', sa.Text(), server_default='', nullable=False))
    bind = op.get_bind()
    courses = sa.table('courses', sa.column('id', sa.Integer), sa.column('code', sa.String),
                       sa.column('title', sa.String), sa.column('description', sa.Text),
                       sa.column('search_text', sa.Text))
    last_id = 0
    while True:  # in batches: a catalogue of any size, bounded memory
        rows = bind.execute(sa.select(courses.c.id, courses.c.code, courses.c.title, courses.c.description)
                            .where(courses.c.id > last_id).order_by(courses.c.id).limit(1000)).all()
        if not rows:
            break
        bind.execute(courses.update().where(courses.c.id == sa.bindparam('course_id'))
                     .values(search_text=sa.bindparam('folded')),
                     [{'course_id': r.id, 'folded': _fold(r.code, r.title, r.description)} for r in rows])
        last_id = rows[-1].id


def downgrade():
    with op.batch_alter_table('courses') as batch:  # SQLite before 3.35 has no DROP COLUMN
        batch.drop_column('search_text')
