"""A group round's sign-ins come with the round's read (``beat_rows.prefetch``, PostgreSQL).

``principal.warm`` keeps each person's principal for the round's beats; nearly every sign-in
has expired by the person's next beat, and its read was a statement of its own each round.
The round's locked read now carries the same columns; a person it did not find is read by
that statement as before. Same principals, same answers, one statement fewer a round.
"""

from __future__ import annotations

import pytest
import time_machine
from sqlalchemy import update

from lms_core.accounts import principal
from lms_core.accounts.models import User, UserStatus
from lms_core.extensions import db
from lms_core.learning import beat_group, beat_rows, beat_tx, pg_arrays
from tests.factories import UserFactory
from tests.lms_core.learning.test_beat_asgi import people, play_rounds, psycopg_statements, run_group
from tests.lms_core.learning.test_beat_front import Player, beats

pytestmark = [
    pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True),
    pytest.mark.backends("postgresql"),
]


def test_a_rounds_sign_ins_are_read_with_its_rows(app, kit, tree):
    users = people(app, kit, tree, 4)
    players = [Player(app, kit, u, lean=True) for u in users]
    played = beats()
    play_rounds(app, players, played[:2])
    with app.app_context():
        principal.forget_all()  # every sign-in expired, as at the player's 10 s cadence
    at, body = played[2]
    with psycopg_statements() as statements, time_machine.travel(at, tick=False):
        answers = run_group(app, [(p, body) for p in players])
    assert all(a is not None and a[0] == 200 for a in answers), answers
    assert not any("FROM users WHERE" in s for s in statements), statements
    reads = [s for s in statements if "AS k(session_id, user_id)" in s]  # the round's read
    assert len(reads) == 1 and "JOIN users AS u" in reads[0], reads


def test_the_rounds_sign_ins_are_those_of_their_own_read(app, kit, tree):
    """What the round's read keeps for ``principal.warm`` is what ``_PG_USERS`` reads (a disabled
    person, a password to change, no locale), and a person it did not find is read as before."""
    users = people(app, kit, tree, 3)
    players = [Player(app, kit, u, lean=True) for u in users]
    play_rounds(app, players, beats()[:1])
    outsider = UserFactory(org_unit=tree.village_a, locale="en")
    db.session.commit()
    db.session.execute(update(User).where(User.id == users[0].id).values(locale=None))
    db.session.execute(update(User).where(User.id == users[1].id).values(status=UserStatus.DISABLED))
    db.session.execute(update(User).where(User.id == users[2].id).values(must_change_password=True))
    db.session.commit()
    ids = [u.id for u in users] + [outsider.id]
    info = beat_tx.connection().info
    batch = beat_group.begin(info)
    try:
        with psycopg_statements() as statements:
            beat_rows.prefetch(batch, [(p.session_id, p.user.id) for p in players])
            kept = beat_rows.users(ids)
    finally:
        beat_group.end(info)
    own = beat_rows._pg(beat_rows._PG_USERS, {"user_ids": pg_arrays.literal(ids)})
    db.session.rollback()
    assert sorted(kept) == sorted(own) and len(own) == 4
    # The outsider alone read by the statement of old.
    assert [s for s in statements if "FROM users WHERE" in s] == [beat_rows._PG_USERS], statements
