"""course search text: the title's pinyin and initials, so fazhi and fzzf find 法治政府

Revision ID: 0015pinyin
Revises: 0014review
Create Date: 2026-12-04 23:40:00

"""
import re
import unicodedata

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015pinyin'
down_revision = '0014review'
branch_labels = None
depends_on = None

_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def _fold(code, title, description, with_pinyin):
    # Frozen copy of lms_core.courses.models.course_search_text as of this revision:
    # a migration must keep doing what it did when it was written.
    fields = "\n".join((code or "", title or "", description or ""))
    runs = _HAN_RUN.findall(unicodedata.normalize("NFKC", title or "")) if with_pinyin else []
    if runs:
        from pypinyin import Style, lazy_pinyin

        full = " ".join("".join(lazy_pinyin(run)) for run in runs)
        initials = " ".join("".join(lazy_pinyin(run, style=Style.FIRST_LETTER)) for run in runs)
        fields = f"{fields}\n{full}\n{initials}"
    return unicodedata.normalize("NFKC", fields).casefold()


def _refill(with_pinyin):
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
                     [{'course_id': r.id, 'folded': _fold(r.code, r.title, r.description, with_pinyin)}
                      for r in rows])
        last_id = rows[-1].id


def upgrade():
    _refill(with_pinyin=True)


def downgrade():
    _refill(with_pinyin=False)
