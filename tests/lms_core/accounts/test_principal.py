"""The heartbeat's sign-in without the ORM user: cached per process, revocation honoured."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import event, update

from lms_core.accounts import principal
from lms_core.accounts.models import User, UserStatus
from lms_core.accounts.services import set_password
from lms_core.extensions import db
from lms_core.learning.models import LearningSession
from tests.conftest import login
from tests.factories import UserFactory
from tests.lms_core.learning.fixtures import build_course


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(principal, "clock", c)
    principal.forget_all()
    yield c
    principal.forget_all()


@pytest.fixture
def beat_url(app, tree, client, clock):
    kit = build_course(tree)
    user = UserFactory(username="liming", org_unit=tree.village_a, full_name="李明")
    db.session.commit()
    login(client, "liming")
    client.post(f"/courses/{kit.course.id}/enrol")
    client.get(f"/learn/lessons/{kit.video.id}")
    sid = db.session.query(LearningSession).filter_by(user_id=user.id).one().id
    return user, f"/learn/sessions/{sid}/beat"


def _statements(app):
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        seen.append(statement)

    return seen, count


def test_beat_reads_no_orm_user_and_caches_the_check(app, client, beat_url):
    user, url = beat_url
    seen, count = _statements(app)
    event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert client.post(url, json={"seq": 1, "event": "play", "position": 0}).status_code == 200
        assert client.post(url, json={"seq": 2, "event": "heartbeat", "position": 0}).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    reads = [s for s in seen if s.lstrip().startswith("SELECT") and "FROM users" in s]
    # One narrow read of the sign-in (version, status), for the first beat only; no roles, no unit join.
    assert len(reads) == 1, reads
    assert "password_hash" not in reads[0] and "role_assignments" not in reads[0]


def test_password_change_in_this_process_ends_beats_at_once(app, client, beat_url):
    user, url = beat_url
    assert client.post(url, json={"seq": 1, "event": "play", "position": 0}).status_code == 200
    set_password(db.session.get(User, user.id), "An0ther-Passw0rd!", actor=None)
    db.session.commit()
    assert client.post(url, json={"seq": 2, "event": "heartbeat", "position": 0}).status_code in (
        302,
        401,
    )  # signed out


def test_revocation_by_another_process_reaches_beats_when_the_entry_expires(app, client, beat_url, clock):
    user, url = beat_url
    assert client.post(url, json={"seq": 1, "event": "play", "position": 0}).status_code == 200
    # Another worker disables the account: a plain UPDATE, nothing in this process hears of it.
    db.session.execute(update(User).where(User.id == user.id).values(status=UserStatus.DISABLED))
    db.session.commit()
    clock.now += app.config["LMS_AUTH_CACHE_SECONDS"] - 1
    assert client.post(url, json={"seq": 2, "event": "heartbeat", "position": 0}).status_code == 200  # the stated bound
    clock.now += 2
    assert client.post(url, json={"seq": 3, "event": "heartbeat", "position": 0}).status_code in (
        302,
        401,
    )  # signed out


def test_other_pages_still_load_the_full_user(app, client, beat_url):
    user, _url = beat_url
    db.session.execute(update(User).where(User.id == user.id).values(session_version=User.session_version + 1))
    db.session.commit()
    # The dashboard reads the user afresh: the old sign-in is gone at once there.
    assert client.get("/dashboard").status_code in (302, 401)


def test_a_refused_beat_still_renders_its_error_page(app, client, beat_url, monkeypatch):
    """An error page on the beat path asks ``can()`` (navigation): the principal loads the user then."""
    _user, url = beat_url
    app.config["WTF_CSRF_ENABLED"] = True
    r = client.post(url, json={"seq": 1, "event": "play", "position": 0})
    assert r.status_code == 400
    first = principal.principal_for(_user.id, _user.session_version)
    assert first is not None and first is not principal.principal_for(_user.id, _user.session_version)


def test_the_cache_belongs_to_the_app(app, client, beat_url):
    """User ids belong to a database: two apps in one process (tests, tools) never share entries."""
    user, url = beat_url
    assert client.post(url, json={"seq": 1, "event": "play", "position": 0}).status_code == 200
    assert set(app.extensions["lms_principals"]) == {user.id}


def test_a_rounds_warm_read_keeps_what_each_beat_would_read(app, tree, clock):
    """``warm`` (a beat group's round) reads the expired sign-ins in one statement; each
    beat's ``principal_for`` then reads nothing and answers what its own read would."""
    alive = UserFactory(username="warm_a", org_unit=tree.village_a)
    gone = UserFactory(username="warm_b", org_unit=tree.village_a, status=UserStatus.DISABLED)
    db.session.commit()
    (a_id, a_version, a_unit), (b_id, b_version) = (
        (alive.id, alive.session_version, alive.org_unit_id),
        (
            gone.id,
            gone.session_version,
        ),
    )
    with app.app_context():
        principal.principal_for(a_id, a_version)  # fresh: not read again
        clock.now += 10  # expired, as at the player's 10 s cadence
        seen, count = _statements(app)
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            principal.warm([a_id, b_id, 999_999])
            assert len(seen) == 1
            got = principal.principal_for(a_id, a_version)
            assert principal.principal_for(b_id, b_version) is None  # disabled
            assert len(seen) == 1  # answered from what the round read
            assert principal.principal_for(999_999, 1) is None  # no such user: its own read, as before
            assert len(seen) == 2
            principal.warm([a_id, b_id])  # all fresh: nothing read
            assert len(seen) == 2
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        assert got is not None and got.id == a_id and got.org_unit_id == a_unit and got.active


@pytest.mark.backends("postgresql")  # the prepared read is PostgreSQL's; SQLite groups record beat by beat
def test_the_groups_own_read_keeps_the_same_principals(app, tree, clock):
    """The beat group's prepared read (``beat_rows.users``, PostgreSQL) keeps exactly what
    SQLAlchemy's read keeps (the status compared as stored, NULL locale, the flags)."""
    from lms_core.learning import beat_rows

    people = [
        UserFactory(username="warm_c", org_unit=tree.village_a, locale=None),
        UserFactory(username="warm_d", org_unit=tree.village_a, status=UserStatus.DISABLED, locale="en"),
        UserFactory(username="warm_e", org_unit=tree.village_a, must_change_password=True),
    ]
    db.session.commit()
    ids = [p.id for p in people]
    with app.app_context():
        principal.warm(ids)
        by_orm = {i: principal._cache().fresh(i, clock.now) for i in ids}
        principal.forget_all()
        principal.warm(ids, beat_rows.users)
        by_group = {i: principal._cache().fresh(i, clock.now) for i in ids}
        db.session.rollback()
    assert by_group == by_orm and all(by_orm.values())
    assert [p.active for p in by_orm.values()] == [True, False, True]  # type: ignore[union-attr]


def test_each_request_gets_its_own_copy_of_the_cached_principal(app, client, beat_url):
    """What one request memoises on its principal (the loaded user) is not seen by the next,
    and each copy holds the cached fields, nothing else."""
    user, _url = beat_url
    first = principal.principal_for(user.id, user.session_version)
    assert first is not None
    assert first.full_name == user.full_name  # loads and memoises the ORM user on this copy
    assert "_user" in first.__dict__
    second = principal.principal_for(user.id, user.session_version)
    assert second is not None and second is not first
    assert second == first and "_user" not in second.__dict__
    assert set(second.__dict__) == {f.name for f in dataclasses.fields(principal.Principal)}
