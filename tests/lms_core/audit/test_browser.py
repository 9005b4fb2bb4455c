"""The learning-log browser: sessions and events, scoped in SQL, keyset pages, exports equal the page."""

from __future__ import annotations

import datetime as dt

import pytest

from lms_core.accounts.models import User
from lms_core.audit.queries import EventLogQuery, SessionQuery
from lms_core.events.models import Event
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.jobs.services import commit
from lms_core.learning.models import LearningSession
from tests.conftest import login
from tests.lms_core.audit.log_world import T0, csv_rows, log_people, start_sessions, table_rows, xlsx_rows
from tests.lms_core.learning.fixtures import build_course


@pytest.fixture
def world(app, tree):
    kit = build_course(tree)
    people = log_people(tree, kit.course)
    inside, second, outside = people.inside, people.second, people.outside
    pairs = [
        (inside, kit.video),
        (inside, kit.document),
        (second, kit.video),
        (outside, kit.video),
        (inside, kit.video),
    ]
    times = [T0 + dt.timedelta(days=n // 2, minutes=n) for n in range(len(pairs))]
    start_sessions(kit.course, [(u, lesson, at) for (u, lesson), at in zip(pairs, times, strict=True)])
    return kit, people.auditor, inside, outside


def test_sessions_are_scoped_and_exports_equal_the_page(client, world):
    login(client, "nl_audit")
    page = client.get("/audit/sessions").get_data(as_text=True)
    rows = table_rows(page, "session-table")
    assert len(rows) == 4 and "城关干部" in page and "第二干部" in page and "青山干部" not in page
    rows_csv, total = csv_rows(client, "/audit/sessions.csv")
    assert total == "4" and len(rows_csv) == 5 and rows_csv[0][2] == "姓名"
    assert {r[2] for r in rows_csv[1:]} == {"城关干部", "第二干部"}
    rows_x = xlsx_rows(client, "/audit/sessions.xlsx")
    assert rows_x[0] == rows_csv[0]
    assert [["" if c is None else str(c) for c in r] for r in rows_x[1:]] == rows_csv[1:]


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("username=inside", {"城关干部"}),
        ("org=NL-CG", {"城关干部"}),
        ("from=2026-05-11&to=2026-05-11", {"第二干部"}),
        ("course=C001&from=2026-05-12", {"城关干部"}),
    ],
)
def test_session_filters_page_equals_export(client, world, tree, query, names):
    if "org=" in query:
        query = query.replace("NL-CG", tree.village_a.code)
    login(client, "nl_audit")
    page = client.get(f"/audit/sessions?{query}").get_data(as_text=True)
    rows_csv, total = csv_rows(client, f"/audit/sessions.csv?{query}")
    assert len(table_rows(page, "session-table")) == len(rows_csv) - 1 == int(total)
    assert {r[2] for r in rows_csv[1:]} == names


def test_lesson_filter(client, world):
    kit = world[0]
    login(client, "nl_audit")
    rows_csv, _total = csv_rows(client, f"/audit/sessions.csv?lesson={kit.document.id}")
    assert [r[6] for r in rows_csv[1:]] == [kit.document.title]


def test_keyset_pages_cover_every_row_once(app, world):
    _kit, auditor, _inside, _outside = world
    seen, before = [], ""
    with app.test_request_context():
        viewer = db.session.get(type(auditor), auditor.id)
        while True:
            rows, before = SessionQuery(viewer=viewer, size=1, before=before or "").page()
            seen += [r[0].id for r in rows]
            if not before:
                break
    assert len(seen) == len(set(seen)) == 4


def test_next_page_link_and_event_keyset(app, client, world):
    _kit, auditor, _inside, _outside = world
    login(client, "nl_audit")
    page = client.get("/audit/events").get_data(as_text=True)
    assert "export-progress" in page and "export-progress.js" in page
    # Pages of one row, cursor to cursor: every event in scope once, newest first;
    # events of one moment (the world's, frozen clock) are ordered by id.
    seen, before, cursors = [], "", []
    with app.test_request_context():
        viewer = db.session.get(type(auditor), auditor.id)
        while True:
            rows, before = EventLogQuery(viewer=viewer, size=1, before=before or "").page()
            seen += [(r[0].created_at, r[0].id) for r in rows]
            if not before:
                break
            cursors.append(before)
        total = EventLogQuery(viewer=viewer).count()
    assert len(set(seen)) == len(seen) == total > 3
    assert seen == sorted(seen, reverse=True)
    assert len({moment for moment, _id in seen}) < len(seen), "the world has events of one moment"
    r = client.get(f"/audit/events?before={cursors[0]}")
    assert r.status_code == 200
    assert 'id="event-table"' in r.get_data(as_text=True)


@pytest.mark.parametrize(
    "cursor",
    ["abc", "9" * 40, "-1", "0", "1%00", "99999999999999999-zz", "99999999999999999-" + "a" * 40, "1e5"],
)
@pytest.mark.parametrize("view", ["events", "sessions"])
def test_bad_cursors_are_400(client, world, view, cursor):
    login(client, "nl_audit")
    r = client.get(f"/audit/{view}?before={cursor}")
    assert r.status_code == 400, (view, cursor)
    assert "页面链接无效" in r.get_data(as_text=True)


@pytest.mark.parametrize("query", ["from=2026-02-30", "lesson=abc", "lesson=" + "9" * 30, "username=a%00b", "org=ZZZ"])
def test_bad_filters_are_400_on_page_and_export(client, world, query):
    login(client, "nl_audit")
    assert client.get(f"/audit/sessions?{query}").status_code == 400
    assert client.get(f"/audit/sessions.csv?{query}").status_code == 400
    assert client.get(f"/audit/events.xlsx?{query}").status_code == 400


def test_filtering_to_a_person_is_logged(client, world):
    _kit, auditor, inside, _outside = world
    login(client, "nl_audit")
    client.get("/audit/sessions?username=inside")
    client.get("/audit/events.csv?username=inside")
    client.get("/audit/sessions")  # not about one person
    logged = db.session.query(Event).filter_by(name="record.viewed").order_by(Event.id).all()
    assert [(e.object_id, e.payload["what"], e.actor_id) for e in logged] == [
        (str(inside.id), "log", auditor.id),
        (str(inside.id), "export", auditor.id),
    ]


def test_learners_cannot_browse(client, world):
    login(client, "inside")
    assert client.get("/audit/sessions").status_code == 403
    assert client.get("/audit/sessions.xlsx").status_code == 403


def test_the_page_does_not_read_its_rows_again_after_logging_the_look(client, world):
    """The look at a person's record is committed after the rows are read; the rows stay
    loaded (expired, the template read each event again: one SELECT per row)."""
    from sqlalchemy import event as sa_event

    login(client, "nl_audit")
    statements: list[tuple[str, object]] = []

    def seen(_conn, _cursor, statement, parameters, *_args):
        statements.append((statement, parameters))

    sa_event.listen(db.engine, "before_cursor_execute", seen)
    try:
        page = client.get("/audit/events?username=inside")
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", seen)
    assert page.status_code == 200
    inside = db.select(User.id).where(User.username == "inside").scalar_subquery()
    shown_ids = set(db.session.scalars(db.select(Event.id).where(Event.actor_id == inside)))
    assert len(table_rows(page.get_data(as_text=True), "event-table")) == len(shown_ids) >= 2
    assert any("INSERT INTO event_log" in s for s, _p in statements), "the look was logged"
    reloaded = [p for s, p in statements if "FROM event_log" in s and "WHERE event_log.id =" in s]
    # (the look's own event may be read back by its dispatch after the commit: not a page row)
    assert not any(set(p.values() if isinstance(p, dict) else p) & shown_ids for p in reloaded), reloaded


def test_an_export_is_written_as_its_rows_are_read(app, world, monkeypatch):
    """Flat memory: the CSV leaves batch by batch (the view streams this generator)."""
    from lms_core.audit import queries

    _kit, auditor, _inside, _outside = world
    monkeypatch.setattr(queries, "EXPORT_BATCH", 1)
    with app.test_request_context():
        query = SessionQuery(viewer=db.session.get(type(auditor), auditor.id))
        query.prepare_export()
        chunks = [c for c in query.export_csv() if c]
    # The BOM, then the header with the first row, then one chunk per further row (4 in scope).
    assert len(chunks) == 5, chunks
    assert chunks[0] == "\ufeff" and sum(c.count("\n") for c in chunks) == 5


def test_a_study_session_is_shown_by_its_lesson_and_start_not_its_hex_id(client, world):
    """The event log names a session by what a person knows it by (the lesson and when it
    was opened, Beijing time); its hex id stays in the title for cross-referencing."""
    kit, _auditor, inside, _outside = world
    session = (
        db.session.execute(
            db.select(LearningSession).where(LearningSession.user_id == inside.id).order_by(LearningSession.started_at)
        )
        .scalars()
        .first()
    )
    emit(
        "study.interval_credited",
        actor=inside,
        object_type="learning_sessions",
        object_id=session.id,
        course_id=kit.course.id,
        payload={"lesson_id": session.lesson_id, "seconds": 30.0},
    )
    commit()
    login(client, "nl_audit")
    page = client.get("/audit/events?name=study.").get_data(as_text=True)
    (row,) = table_rows(page, "event-table")
    title = db.session.get(type(kit.video), session.lesson_id).title
    # T0 is 09:00 in Beijing; the inside cadre's first session opened then.
    assert f"《{title}》的学习，2026-05-10 09:00 开始" in row
    assert f'title="学习会话 #{session.id}"' in row
    assert row.count(session.id) == 1, "the hex id only in the title"
