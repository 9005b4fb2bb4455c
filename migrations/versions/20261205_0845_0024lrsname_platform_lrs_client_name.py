"""The platform's own LRS client gets its Chinese name in existing databases

``flask lms xapi connect-embedded`` named the platform's client "LMS core (xAPI
emitter)" until 88ce12e; the LRS clients page showed that English name on a Chinese
page. New databases get "本平台（xAPI 发送端）" (``lms_core.xapi.credentials.CLIENT_NAME``);
this renames the client in databases made before, and only while it still has the
old default name: a name an operator chose is left alone.

The table belongs to the LRS plugin (its own branch, which may not be enabled, or may
be created after this revision on a fresh database), so the core only touches it when
it exists and never imports the plugin.

Revision ID: 0024lrsname
Revises: 0023refused
Create Date: 2026-12-05 08:45:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0024lrsname"
down_revision = "0023refused"
branch_labels = None
depends_on = None

OLD_NAME = "LMS core (xAPI emitter)"
NEW_NAME = "本平台（xAPI 发送端）"


def _rename(old: str, new: str) -> None:
    bind = op.get_bind()
    if not sa.inspect(bind).has_table("lrs_clients"):
        return
    clients = sa.table("lrs_clients", sa.column("name", sa.String))
    bind.execute(clients.update().where(clients.c.name == old).values(name=new))


def upgrade():
    _rename(OLD_NAME, NEW_NAME)


def downgrade():
    # The code before this revision named the client in English: give that name back.
    _rename(NEW_NAME, OLD_NAME)
