"""Migration 0015pinyin backfills the pinyin of existing courses (and takes it out on downgrade)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy import create_engine

from tests.lms_core.test_migrations import _flask_db, empty_db, full_app  # noqa: F401 - fixtures


def test_0015_backfills_pinyin_and_downgrade_removes_it(full_app, empty_db):  # noqa: F811
    _flask_db(full_app, "upgrade", "0014review")
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    org_units = sa.table(
        "org_units", *(sa.column(c) for c in ("id", "code", "name", "kind", "path", "depth", "active", "created_at"))
    )
    courses = sa.table(
        "courses",
        *(
            sa.column(c)
            for c in (
                "id",
                "code",
                "title",
                "description",
                "topic_id",
                "nominal_hours_centi",
                "required",
                "published",
                "owner_unit_id",
                "created_at",
                "updated_at",
                "search_text",
            )
        ),
    )
    engine = create_engine(empty_db)
    try:
        with engine.begin() as conn:
            conn.execute(
                org_units.insert().values(
                    id=1, code="3601", name="市", kind="city", path="/1/", depth=0, active=True, created_at=now
                )
            )
            conn.execute(
                courses.insert(),
                [
                    {
                        "id": 1,
                        "code": "FZ01",
                        "title": "法治政府",
                        "description": "依法行政",
                        "topic_id": None,
                        "nominal_hours_centi": 100,
                        "required": False,
                        "published": True,
                        "owner_unit_id": 1,
                        "created_at": now,
                        "updated_at": now,
                        "search_text": "fz01\n法治政府\n依法行政",
                    },
                    {
                        "id": 2,
                        "code": "EN01",
                        "title": "English only",
                        "description": "",
                        "topic_id": None,
                        "nominal_hours_centi": 100,
                        "required": False,
                        "published": True,
                        "owner_unit_id": 1,
                        "created_at": now,
                        "updated_at": now,
                        "search_text": "en01\nenglish only\n",
                    },
                ],
            )
        _flask_db(full_app, "upgrade", "heads")
        with engine.connect() as conn:
            texts = dict(conn.execute(sa.select(courses.c.id, courses.c.search_text)).all())
        assert texts[1] == "fz01\n法治政府\n依法行政\nfazhizhengfu\nfzzf"
        assert texts[2] == "en01\nenglish only\n"
        _flask_db(full_app, "downgrade", "0014review")
        with engine.connect() as conn:
            texts = dict(conn.execute(sa.select(courses.c.id, courses.c.search_text)).all())
        assert texts[1] == "fz01\n法治政府\n依法行政"
    finally:
        engine.dispose()
