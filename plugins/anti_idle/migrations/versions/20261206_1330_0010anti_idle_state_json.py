"""anti_idle person states: the JSON columns as json, not jsonb

Every accepted beat reads its person's state row and writes it back whole; its JSON
columns (the kept sessions and lessons, the day's online tally: ~1.2 kB of the ~1.4 kB
row) are never queried inside, only read and written. As ``jsonb`` PostgreSQL parsed the
~1 kB of each write into its binary form (``jsonb_in``) and printed it back as text on
each read (``jsonb_out``); as ``json`` it checks the text on the way in and keeps it as
written. A round of 120 state rows (docs/benchmarks.md, "the person state's round trip"):
backend CPU ~37 → ~21 µs per row written, ~20 → ~11 µs per row read.

PostgreSQL only (SQLite stores JSON as text either way). ``ALTER COLUMN ... TYPE`` rewrites
the table (one row per person, a cache of the raw beats); the storage parameters of 0009
stay.

Revision ID: 0010anti_idle_state_json
Revises: 0009anti_idle_state_storage
Create Date: 2026-12-06 13:30:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0010anti_idle_state_json"
down_revision = "0009anti_idle_state_storage"
branch_labels = None
depends_on = None

_COLUMNS = ("sessions", "lessons", "day_tally")


def _retype(to: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        changes = ", ".join(f"ALTER COLUMN {c} TYPE {to} USING {c}::{to}" for c in _COLUMNS)
        op.execute(f"ALTER TABLE anti_idle_person_states {changes}")


def upgrade() -> None:
    _retype("json")


def downgrade() -> None:
    _retype("jsonb")
