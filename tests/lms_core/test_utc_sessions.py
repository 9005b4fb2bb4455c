"""The app's PostgreSQL sessions run in UTC, whatever the server's default time zone.

psycopg reads a ``timestamptz`` in the session's zone: in a UTC session its values carry
``datetime.UTC`` itself, and the app's conversions to UTC cost nothing (``lms_core.db.install_utc_sessions``).
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine, text

from lms_core.db import install_utc_sessions
from lms_core.extensions import db

pytestmark = pytest.mark.backends("postgresql")


def test_app_sessions_are_utc(app):
    assert db.session.execute(text("SHOW TimeZone")).scalar_one() == "UTC"
    moment = db.session.execute(text("SELECT timestamptz '2026-12-06 08:00:00+08'")).scalar_one()
    assert moment == dt.datetime(2026, 12, 6, 0, 0, tzinfo=dt.UTC)
    assert moment.tzinfo is dt.UTC


def test_a_server_zone_elsewhere_is_overridden(app):
    """A database whose sessions default to Beijing time (a deployment's ``timezone``)."""
    engine = create_engine(db.engine.url, connect_args={"options": "-c TimeZone=Asia/Shanghai"})
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW TimeZone")).scalar_one() == "Asia/Shanghai"
        engine.dispose()
        install_utc_sessions(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SHOW TimeZone")).scalar_one() == "UTC"
            moment = conn.execute(text("SELECT timestamptz '2026-12-06 08:00:00+08'")).scalar_one()
            assert moment.tzinfo is dt.UTC
            # A Beijing day is still named in the SQL, not taken from the session.
            day = conn.execute(text("SELECT (timestamptz '2026-12-05 16:30:00+00' AT TIME ZONE 'Asia/Shanghai')::date"))
            assert day.scalar_one() == dt.date(2026, 12, 6)
            conn.rollback()
            assert conn.execute(text("SHOW TimeZone")).scalar_one() == "UTC"  # not undone by a rollback
    finally:
        engine.dispose()
