"""anti_idle beats: the JSON columns as json, not jsonb

As 0010anti_idle_state_json did for the person states: the raw beat's six JSON columns (the
claimed and credited ranges, the client's signals, the cuts, the flags, the session's covered
ranges) are written once and read back whole (recompute, the evidence), never queried inside
except ``client #> '{presence,device}'`` (``day_rules._DeviceJSON``), which ``json`` has too. As
``jsonb`` PostgreSQL parsed each round's columns into the binary form on the way in; as
``json`` it checks the text and keeps it as written (as SQLite does), the round's rows taking
their element's text (``pg_arrays.Rows``, ``json_array_elements``).

PostgreSQL only (SQLite stores JSON as text either way). ``ALTER COLUMN ... TYPE`` rewrites the
table (the append-only trigger does not fire: no row is updated); on a large table that is a
maintenance window's work.

Revision ID: 0013anti_idle_beat_json
Revises: 0012anti_idle_beat_no_course
Create Date: 2026-12-07 00:10:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0013anti_idle_beat_json"
down_revision = "0012anti_idle_beat_no_course"
branch_labels = None
depends_on = None

_COLUMNS = ("claimed", "client", "credited", "cuts", "flags", "session_covered")


def _retype(to: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        changes = ", ".join(f"ALTER COLUMN {c} TYPE {to} USING {c}::{to}" for c in _COLUMNS)
        op.execute(f"ALTER TABLE anti_idle_beats {changes}")


def upgrade() -> None:
    _retype("json")


def downgrade() -> None:
    _retype("jsonb")
