"""Migrations build an empty database and match the models exactly.

Each test makes its own empty database (a new one in the session's PostgreSQL
cluster, or a new SQLite file), enables every installed plugin so that every
Alembic branch is applied, and runs ``flask db`` through the CLI as a deployment would.
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib.metadata
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.dialects import postgresql

from lms_core.extensions import db
from tests.lms_core.apps import build_app

ENV_PY = Path(__file__).resolve().parents[2] / "migrations" / "env.py"


def env_include_object() -> Any:
    """``include_object`` exactly as ``migrations/env.py`` defines it.

    env.py cannot be imported (it runs the migrations at import), so the function
    definition is taken from its source.
    """
    module = ast.parse(ENV_PY.read_text())
    (fn,) = [node for node in module.body if isinstance(node, ast.FunctionDef) and node.name == "include_object"]
    namespace: dict[str, Any] = {}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), str(ENV_PY), "exec"), namespace)  # noqa: S102
    return namespace["include_object"]


def installed_plugins() -> list[str]:
    return sorted(ep.name for ep in importlib.metadata.entry_points(group="lms.plugins"))


@pytest.fixture
def empty_db(db_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if db_backend == "postgresql":
        return request.getfixturevalue("pg_cluster").create_database(f"mig_{uuid.uuid4().hex[:10]}")
    return f"sqlite:///{tmp_path / 'empty.sqlite3'}"


@pytest.fixture
def full_app(empty_db: str, tmp_path: Path) -> Iterator[Flask]:
    app = build_app(empty_db, tmp_path, LMS_PLUGINS=installed_plugins())
    yield app
    with app.app_context():
        db.engine.dispose()


def _flask_db(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["db", *args])
    assert result.exit_code == 0, f"flask db {' '.join(args)} failed:\n{result.output}\n{result.exception!r}"
    return result.output


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _drift(app: Flask) -> list[Any]:
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": env_include_object(), "compare_type": True, "compare_server_default": False}
        )
        return list(compare_metadata(context, db.metadata))


@pytest.mark.backends("postgresql")
def test_upgrade_heads_on_empty_postgresql_has_no_drift(full_app, empty_db):
    assert _tables(empty_db) == set()
    _flask_db(full_app, "upgrade", "heads")
    tables = _tables(empty_db)
    with full_app.app_context():
        model_tables = set(db.metadata.tables)
    assert model_tables <= tables, f"tables without a migration: {sorted(model_tables - tables)}"
    assert _drift(full_app) == []
    # and Alembic's own check, running env.py as `flask db migrate` would (exits 1 on drift)
    _flask_db(full_app, "check")


def test_downgrade_to_base_and_upgrade_again(full_app, empty_db):
    _flask_db(full_app, "upgrade", "heads")
    with full_app.app_context():
        model_tables = set(db.metadata.tables)
    assert model_tables <= _tables(empty_db)
    _flask_db(full_app, "downgrade", "base")
    assert _tables(empty_db) <= {"alembic_version"}
    _flask_db(full_app, "upgrade", "heads")
    assert model_tables <= _tables(empty_db)
    assert _drift(full_app) == []
    # the append-only triggers came back with the tables
    engine = create_engine(empty_db)
    try:
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(
                text("INSERT INTO event_log (name, payload, created_at) VALUES ('x', '{}', CURRENT_TIMESTAMP)")
            )
            conn.execute(text("DELETE FROM event_log"))
    finally:
        engine.dispose()


def test_upgrade_reaches_every_head_of_every_enabled_branch(full_app, empty_db):
    from alembic.script import ScriptDirectory

    _flask_db(full_app, "upgrade", "heads")
    with full_app.app_context():
        script = ScriptDirectory.from_config(full_app.extensions["migrate"].migrate.get_config())
        heads = set(script.get_heads())
        core_head = script.get_revision("core@head")
        # A head another branch's revision depends on (``depends_on``: a plugin's key to a core
        # table's new index), that revision a head or one of its ancestors, is applied before it,
        # and Alembic records only the dependent branch's head.
        needed = set()
        for head in heads:
            for revision in script.iterate_revisions(head, "base"):
                dependencies = revision.dependencies  # type: ignore[union-attr]
                needed |= {dependencies} if isinstance(dependencies, str) else set(dependencies or ())
    assert core_head is not None and core_head.revision in heads
    engine = create_engine(empty_db)
    try:
        with engine.connect() as conn:
            applied = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()
    assert applied == heads - needed


#: The columns of org_units and courses as the older revisions these tests start from had them.
ORG_UNIT_COLUMNS = ("id", "code", "name", "kind", "path", "depth", "active", "created_at")
COURSE_COLUMNS = (
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
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _table(name: str, columns: tuple[str, ...]) -> sa.TableClause:
    return sa.table(name, *(sa.column(c) for c in columns))


def _city(conn: Any) -> None:
    """The one org unit the courses below belong to."""
    conn.execute(
        _table("org_units", ORG_UNIT_COLUMNS)
        .insert()
        .values(id=1, code="3601", name="市", kind="city", path="/1/", depth=0, active=True, created_at=NOW)
    )


def _course(cid: int, **values: Any) -> dict[str, Any]:
    """A course row of unit 1 (code ``C<id>``), with ``values`` over the defaults."""
    row = {"id": cid, "code": f"C{cid}", "title": f"课程{cid}", "description": "", "topic_id": None}
    row |= {"nominal_hours_centi": 100, "required": False, "published": True, "owner_unit_id": 1}
    row |= {"created_at": NOW, "updated_at": NOW, "search_text": ""}
    return row | values


def test_0010_puts_courses_back_under_the_topic_their_repr_named(full_app, empty_db):
    """Courses filed under "<Topic id=N>" (the edit form's bug) go back to topic N; the junk topics go."""
    _flask_db(full_app, "upgrade", "0009ledger")
    topics = sa.table("course_topics", sa.column("id"), sa.column("name"))
    courses = _table("courses", COURSE_COLUMNS)
    engine = create_engine(empty_db)
    try:
        with engine.begin() as conn:
            _city(conn)
            conn.execute(
                topics.insert(),
                [
                    {"id": 5, "name": "基层治理"},
                    {"id": 6, "name": "法治建设"},
                    {"id": 7, "name": "<Topic id=5>"},  # saved once
                    {"id": 8, "name": "<Topic id=7>"},  # saved twice: a chain
                    {"id": 9, "name": "<Topic id=6>"},
                    {"id": 10, "name": "<Topic id=99>"},  # its topic is gone
                    {"id": 11, "name": "Topic id=5"},  # a real (odd) name, not the repr
                ],
            )
            rows = [(1, 5), (2, 7), (3, 8), (4, 9), (5, 10), (6, 11), (7, None)]
            conn.execute(courses.insert(), [_course(cid, topic_id=tid) for cid, tid in rows])
        _flask_db(full_app, "upgrade", "heads")
        with engine.connect() as conn:
            assert dict(conn.execute(sa.select(courses.c.id, courses.c.topic_id)).all()) == {
                1: 5,
                2: 5,
                3: 5,
                4: 6,
                5: None,
                6: 11,
                7: None,
            }
            assert dict(conn.execute(sa.select(topics.c.id, topics.c.name)).all()) == {
                5: "基层治理",
                6: "法治建设",
                11: "Topic id=5",
            }
    finally:
        engine.dispose()


def _insert(conn: Any, name: str, rows: list[dict[str, Any]]) -> None:
    conn.execute(sa.table(name, *(sa.column(c) for c in rows[0])).insert(), rows)


def test_0015_backfills_pinyin_and_downgrade_removes_it(full_app, empty_db):
    """Existing courses get their title's pinyin and initials in the search column; downgrade takes them out."""
    _flask_db(full_app, "upgrade", "0014review")
    courses = _table("courses", COURSE_COLUMNS)
    engine = create_engine(empty_db)
    try:
        with engine.begin() as conn:
            _city(conn)
            conn.execute(
                courses.insert(),
                [
                    _course(
                        1, code="FZ01", title="法治政府", description="依法行政", search_text="fz01\n法治政府\n依法行政"
                    ),
                    _course(2, code="EN01", title="English only", search_text="en01\nenglish only\n"),
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


def test_0019_carries_every_survey_answer_into_the_editable_questions(full_app, empty_db):
    """Ratings and comments given on the fixed form become answers to its two questions; none is lost."""
    _flask_db(full_app, "upgrade", "0018budget")
    now = NOW
    engine = create_engine(empty_db)
    try:
        with engine.begin() as conn:
            _city(conn)
            user = {
                "org_unit_id": 1,
                "rank_band": "general",
                "party_member": True,
                "status": "active",
                "failed_logins": 0,
            }
            user |= {"session_version": 1, "must_change_password": False, "created_at": now}
            _insert(conn, "users", [{"id": i, "username": f"u{i}", "full_name": f"学员{i}", **user} for i in (1, 2, 3)])
            _insert(conn, "courses", [_course(1, title="课程")])
            _insert(conn, "course_sections", [{"id": 1, "course_id": 1, "title": "第一讲", "position": 1}])
            lesson = {"section_id": 1, "course_id": 1, "required": True, "completion_threshold_pct": 95}
            lesson |= {"min_read_seconds": 60, "passing_score_pct": 60, "max_attempts": 3, "shuffle_questions": True}
            lesson |= {"created_at": now}
            _insert(
                conn,
                "lessons",
                [
                    {"id": 1, "title": "问卷甲", "kind": "survey", "position": 1, **lesson},
                    {"id": 2, "title": "问卷乙（无人作答）", "kind": "survey", "position": 2, **lesson},
                    {"id": 3, "title": "视频", "kind": "video", "position": 3, **lesson},
                ],
            )
            _insert(
                conn,
                "lesson_feedback",
                [
                    {
                        "id": 1,
                        "user_id": 1,
                        "lesson_id": 1,
                        "course_id": 1,
                        "rating": 5,
                        "comment": "很好",
                        "created_at": now,
                    },
                    {
                        "id": 2,
                        "user_id": 2,
                        "lesson_id": 1,
                        "course_id": 1,
                        "rating": 2,
                        "comment": "",
                        "created_at": now,
                    },
                    # An answer on a non-survey lesson (the old form allowed it): carried over too.
                    {
                        "id": 3,
                        "user_id": 3,
                        "lesson_id": 3,
                        "course_id": 1,
                        "rating": 4,
                        "comment": "清楚",
                        "created_at": now,
                    },
                ],
            )
        _flask_db(full_app, "upgrade", "heads")
        with engine.connect() as conn:
            questions = conn.execute(
                sa.text(
                    "SELECT lesson_id, kind, position, scale, required, text FROM survey_questions "
                    "ORDER BY lesson_id, position"
                )
            ).all()
            # 0020 drops the "（选填）" 0019 wrote into the comment's wording: the page marks it.
            assert [tuple(q) for q in questions] == [
                (lesson_id, kind, position, 5, required, text)
                for lesson_id in (1, 2, 3)
                for kind, position, required, text in (
                    ("rating", 1, True, "本课时对您有多大帮助？（1 = 没有帮助，5 = 很有帮助）"),
                    ("text", 2, False, "意见建议"),
                )
            ]
            answers = conn.execute(
                sa.text(
                    "SELECT a.response_id, q.kind, a.score, a.text FROM survey_answers a "
                    "JOIN survey_questions q ON q.id = a.question_id ORDER BY a.response_id, q.position"
                )
            ).all()
            assert [tuple(a) for a in answers] == [
                (1, "rating", 5, ""),
                (1, "text", None, "很好"),
                (2, "rating", 2, ""),
                (3, "rating", 4, ""),
                (3, "text", None, "清楚"),
            ]
        # And back: the downgrade keeps every sheet's rating.
        _flask_db(full_app, "downgrade", "0018budget")
        with engine.connect() as conn:
            kept = conn.execute(sa.text("SELECT id, rating, comment FROM lesson_feedback ORDER BY id")).all()
            assert [tuple(r) for r in kept] == [(1, 5, "很好"), (2, 2, ""), (3, 4, "清楚")]
    finally:
        engine.dispose()


def test_0024_names_the_platforms_lrs_client_in_chinese_only_when_it_has_the_old_name(full_app, empty_db):
    """The platform's client keeps no English default name; clients an operator named are left alone."""
    # Without the LRS's table (the plugin's branch not applied yet) the revision does nothing, both ways.
    _flask_db(full_app, "upgrade", "0024lrsname")
    _flask_db(full_app, "downgrade", "0023refused")
    assert "lrs_clients" not in _tables(empty_db)
    _flask_db(full_app, "upgrade", "lrs@head")
    scopes = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    clients = sa.table(
        "lrs_clients",
        *(sa.column(c) for c in ("id", "name", "key", "secret_sha256", "active", "created_at", "created_by")),
        sa.column("scopes", scopes),
    )
    old = "LMS core (xAPI emitter)"
    given = {1: old, 2: f"{old} 备用", 3: "省干部网络学院"}
    engine = create_engine(empty_db)
    try:
        with engine.begin() as conn:
            row = {"secret_sha256": "0" * 64, "scopes": ["all"], "active": True, "created_at": NOW, "created_by": "cli"}
            conn.execute(clients.insert(), [row | {"id": i, "name": n, "key": f"k{i}"} for i, n in given.items()])
        _flask_db(full_app, "upgrade", "heads")
        with engine.connect() as conn:
            names = dict(conn.execute(sa.select(clients.c.id, clients.c.name)).all())
        assert names == given | {1: "本平台（xAPI 发送端）"}
        _flask_db(full_app, "downgrade", "0023refused")
        with engine.connect() as conn:
            names = dict(conn.execute(sa.select(clients.c.id, clients.c.name)).all())
        assert names == given
    finally:
        engine.dispose()


def test_0003lrs_stores_each_statements_learner_and_downgrade_removes_it(full_app, empty_db):
    """Statements already stored get their learner's id: a platform account (home page =
    LMS_PLATFORM_URL) whose name is a
    username; anything else stays NULL. Downgrade drops the column."""
    _flask_db(full_app, "upgrade", "heads")
    _flask_db(full_app, "downgrade", "0002lrs")
    home = full_app.config["LMS_PLATFORM_URL"].rstrip("/")
    data_type = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    columns = ("statement_id", "stored", "voided", "client_id", "has_attachments")
    statements = sa.table("lrs_statements", *(sa.column(c) for c in columns), sa.column("data", data_type))
    actors = {
        "a1": (home, "u1"),
        "a2": (home, "u2"),
        "a3": (home, "u1"),
        "b1": ("https://elsewhere.example", "u1"),  # not a platform account
        "b2": (home, "nobody"),  # no such user
    }
    engine = create_engine(empty_db)
    try:
        with engine.begin() as conn:
            _city(conn)
            user = {"org_unit_id": 1, "rank_band": "general", "party_member": True, "status": "active"}
            user |= {"failed_logins": 0, "session_version": 1, "must_change_password": False, "created_at": NOW}
            _insert(conn, "users", [{"id": i, "username": f"u{i}", "full_name": f"学员{i}", **user} for i in (1, 2)])
            row = {"stored": NOW, "voided": False, "client_id": None, "has_attachments": False}
            conn.execute(
                statements.insert(),
                [
                    row
                    | {
                        "statement_id": sid,
                        "data": {"id": sid, "actor": {"account": {"homePage": h, "name": n}}, "verb": {"id": "v"}},
                    }
                    for sid, (h, n) in actors.items()
                ],
            )
        _flask_db(full_app, "upgrade", "heads")
        with engine.connect() as conn:
            found = dict(conn.execute(text("SELECT statement_id, actor_user_id FROM lrs_statements")).all())
        assert found == {"a1": 1, "a2": 2, "a3": 1, "b1": None, "b2": None}
        assert _drift(full_app) == []
        _flask_db(full_app, "downgrade", "0002lrs")
        with engine.connect() as conn:
            assert "actor_user_id" not in {c["name"] for c in inspect(conn).get_columns("lrs_statements")}
    finally:
        engine.dispose()


@pytest.mark.backends("postgresql")
def test_0010anti_idle_keeps_each_state_row_as_json_and_downgrade_gives_jsonb_back(full_app, empty_db):
    """The person state rows written before the upgrade read back the same as ``json``; downgrade
    makes the three columns ``jsonb`` again with the same values."""
    _flask_db(full_app, "upgrade", "heads")
    _flask_db(full_app, "downgrade", "0009anti_idle_state_storage")
    tally = {
        "dirty": True,
        "tally": {"beats": 3, "sessions": ["s1"], "cuts": {}},
        "lessons": {"7": [30000, 29000, 1000]},
    }
    state = {"user_id": 1, "day": dt.date(2026, 12, 1), "day_credited_ms": 29000, "focus_session": None}
    state |= {"focus_until": None, "tally_day": dt.date(2026, 12, 1)}
    json_columns = {"sessions": [["s1", None, "heartbeat", 3, 30000, 30000, [[0, 30000]]]], "lessons": [[7, 29000]]}
    engine = create_engine(empty_db)
    read = (
        "SELECT sessions, lessons, day_tally, pg_typeof(sessions)::text, pg_typeof(day_tally)::text "
        "FROM anti_idle_person_states ORDER BY user_id"
    )
    try:
        with engine.begin() as conn:
            _city(conn)
            user = {"org_unit_id": 1, "rank_band": "general", "party_member": True, "status": "active"}
            user |= {"failed_logins": 0, "session_version": 1, "must_change_password": False, "created_at": NOW}
            _insert(conn, "users", [{"id": i, "username": f"u{i}", "full_name": f"学员{i}", **user} for i in (1, 2)])
            conn.execute(
                text(
                    "INSERT INTO anti_idle_person_states (user_id, day, day_credited_ms, focus_session, "
                    "focus_until, sessions, lessons, tally_day, day_tally) VALUES (:user_id, :day, :day_credited_ms, "
                    ":focus_session, :focus_until, CAST(:sessions AS jsonb), CAST(:lessons AS jsonb), :tally_day, "
                    "CAST(:day_tally AS jsonb))"
                ),
                [
                    {**state, **{k: json.dumps(v) for k, v in json_columns.items()}, "day_tally": json.dumps(tally)},
                    {**state, "user_id": 2, "sessions": "[]", "lessons": "[]", "day_tally": None},
                ],
            )
        _flask_db(full_app, "upgrade", "heads")
        with engine.connect() as conn:
            rows = conn.execute(text(read)).all()
        assert [tuple(r) for r in rows] == [
            (json_columns["sessions"], json_columns["lessons"], tally, "json", "json"),
            ([], [], None, "json", "json"),
        ]
        _flask_db(full_app, "downgrade", "0009anti_idle_state_storage")
        with engine.connect() as conn:
            rows = conn.execute(text(read)).all()
        assert [tuple(r) for r in rows] == [
            (json_columns["sessions"], json_columns["lessons"], tally, "jsonb", "jsonb"),
            ([], [], None, "jsonb", "jsonb"),
        ]
    finally:
        engine.dispose()


@pytest.mark.backends("postgresql")
def test_0030_leaves_room_for_hot_updates_on_the_beats_rows_and_downgrade_resets_it(full_app, empty_db):
    """The four tables a beat updates get a fillfactor (room for the next version of a row on
    its page); downgrade gives PostgreSQL's default back."""
    tables = ("learning_sessions", "lesson_progress", "learning_person_clocks", "learning_daily_totals")
    read = text("SELECT relname, reloptions FROM pg_class WHERE relname = ANY(:t)").bindparams(
        sa.bindparam("t", list(tables), type_=postgresql.ARRAY(sa.Text))
    )
    _flask_db(full_app, "upgrade", "heads")
    engine = create_engine(empty_db)
    try:
        with engine.connect() as conn:
            options = dict(conn.execute(read).all())
        assert options == {
            "learning_sessions": ["fillfactor=70"],
            "lesson_progress": ["fillfactor=70"],
            "learning_person_clocks": ["fillfactor=80"],
            "learning_daily_totals": ["fillfactor=80"],
        }
        _flask_db(full_app, "downgrade", "0029unityears")
        with engine.connect() as conn:
            options = dict(conn.execute(read).all())
        assert options == dict.fromkeys(tables)
    finally:
        engine.dispose()


def _ledger_keys(url: str) -> dict[str, Any]:
    """Each ledger table's foreign keys (constrained columns → referred table and columns) and
    whether its append-only triggers are there."""
    engine = create_engine(url)
    try:
        found: dict[str, Any] = {}
        with engine.connect() as conn:
            inspector = inspect(conn)
            for table in ("learning_intervals", "anti_idle_beats"):
                keys = {
                    tuple(fk["constrained_columns"]): (fk["referred_table"], tuple(fk["referred_columns"]))
                    for fk in inspector.get_foreign_keys(table)
                }
                if conn.dialect.name == "postgresql":
                    triggers = (
                        "SELECT count(*) FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass) AND NOT tgisinternal"
                    )
                else:
                    triggers = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"
                count = conn.execute(text(triggers), {"t": table}).scalar_one()
                indexes = {ix["name"] for ix in inspector.get_indexes(table)}
                found[table] = (keys, count, "ix_learning_intervals_lesson_id" in indexes)
        return found
    finally:
        engine.dispose()


def test_0031_one_key_per_ledger_row_keeps_the_append_only_triggers_and_downgrades(full_app, empty_db):
    """The ledger's and the raw beats' three keys become one to the session row (the SQLite rebuild
    keeps the append-only triggers); downgrade gives the three keys and the lesson index back."""
    session_key = ("learning_sessions", ("id", "user_id", "lesson_id"))
    triggers = 1 if "postgresql" in empty_db else 2
    _flask_db(full_app, "upgrade", "heads")
    # before the keys became statement triggers on PostgreSQL (0032sessionkey, 0014anti_idle_stmt_key)
    _flask_db(full_app, "downgrade", "0014anti_idle_stmt_key-1")
    _flask_db(full_app, "downgrade", "0032sessionkey-1")
    found = _ledger_keys(empty_db)
    assert found["learning_intervals"] == ({("session_id", "user_id", "lesson_id"): session_key}, triggers, False)
    assert found["anti_idle_beats"] == ({("session_id", "user_id", "lesson_id"): session_key}, triggers, False)
    _flask_db(full_app, "downgrade", "0030hotroom")  # the plugin's 0011 goes first: it depends on 0031
    single = {
        ("session_id",): ("learning_sessions", ("id",)),
        ("user_id",): ("users", ("id",)),
        ("lesson_id",): ("lessons", ("id",)),
    }
    found = _ledger_keys(empty_db)
    assert found["learning_intervals"] == (single, triggers, True)
    assert found["anti_idle_beats"] == ({**single, ("course_id",): ("courses", ("id",))}, triggers, False)


def _session_key_triggers(url: str) -> dict[str, set[str]]:
    """The session-key triggers (``lms_core.db.session_key_ddl``) on each table, PostgreSQL."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT tgrelid::regclass::text, tgname FROM pg_trigger "
                    "WHERE NOT tgisinternal AND (tgname LIKE '%session_key' OR tgname LIKE '%session_gone' "
                    "OR tgname LIKE '%session_rekeyed')"
                )
            ).all()
        found: dict[str, set[str]] = {}
        for table, name in rows:
            found.setdefault(table, set()).add(name)
        return found
    finally:
        engine.dispose()


def test_0032_and_0014anti_idle_the_session_keys_are_statement_triggers_on_postgresql_only(full_app, empty_db):
    """On PostgreSQL the ledgers' session keys become triggers (one check a statement) and come
    back as keys on downgrade; SQLite keeps the keys (and the drift test does not ask PostgreSQL
    for them: ``include_object``)."""
    session_key = {("session_id", "user_id", "lesson_id"): ("learning_sessions", ("id", "user_id", "lesson_id"))}
    postgresql = "postgresql" in empty_db
    _flask_db(full_app, "upgrade", "heads")
    found = _ledger_keys(empty_db)
    for table in ("learning_intervals", "anti_idle_beats"):
        assert found[table] == ({} if postgresql else session_key, 2, False)
    if postgresql:
        assert _session_key_triggers(empty_db) == {
            "learning_intervals": {"learning_intervals_session_key"},
            "anti_idle_beats": {"anti_idle_beats_session_key"},
            "learning_sessions": {
                f"{t}_session_{what}" for t in ("learning_intervals", "anti_idle_beats") for what in ("gone", "rekeyed")
            },
        }
    assert _drift(full_app) == []
    _flask_db(full_app, "downgrade", "0014anti_idle_stmt_key-1")
    _flask_db(full_app, "downgrade", "0032sessionkey-1")
    found = _ledger_keys(empty_db)
    triggers = 1 if postgresql else 2
    for table in ("learning_intervals", "anti_idle_beats"):
        assert found[table] == (session_key, triggers, False)
    if postgresql:
        assert _session_key_triggers(empty_db) == {}
    _flask_db(full_app, "upgrade", "heads")
    assert _ledger_keys(empty_db)["learning_intervals"] == ({} if postgresql else session_key, 2, False)


def _beat_columns(url: str) -> tuple[set[str], set[tuple[str, ...]]]:
    """The raw beats' columns and the column sets of their foreign keys."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            inspector = inspect(conn)
            columns = {c["name"] for c in inspector.get_columns("anti_idle_beats")}
            keys = {tuple(fk["constrained_columns"]) for fk in inspector.get_foreign_keys("anti_idle_beats")}
        return columns, keys
    finally:
        engine.dispose()


def _studied(conn: Any) -> None:
    """User 1 in course 1 (lessons 1 and 2), course 2 (lesson 3): a session and two raw beats on
    lesson 1 and one on lesson 3."""
    _city(conn)
    user = {"org_unit_id": 1, "rank_band": "general", "party_member": True, "status": "active"}
    user |= {"failed_logins": 0, "session_version": 1, "must_change_password": False, "created_at": NOW}
    _insert(conn, "users", [{"id": 1, "username": "u1", "full_name": "学员1", **user}])
    _insert(conn, "courses", [_course(1), _course(2)])
    _insert(conn, "course_sections", [{"id": c, "course_id": c, "title": "章", "position": 1} for c in (1, 2)])
    lesson = {"title": "课", "kind": "document", "required": True, "completion_threshold_pct": 95}
    lesson |= {"min_read_seconds": 60, "passing_score_pct": 60, "max_attempts": 3, "shuffle_questions": False}
    lesson |= {"show_correct_answers": False, "created_at": NOW}
    _insert(
        conn,
        "lessons",
        [
            {"id": lid, "section_id": cid, "course_id": cid, "position": lid, **lesson}
            for lid, cid in ((1, 1), (2, 1), (3, 2))
        ],
    )
    _insert(
        conn,
        "enrolments",
        [
            {"id": c, "user_id": 1, "course_id": c, "registration": str(uuid.UUID(int=c)), "source": "self"}
            | {"enrolled_at": NOW}
            for c in (1, 2)
        ],
    )
    session = {"user_id": 1, "started_at": NOW, "last_beat_at": NOW, "last_seq": 2}
    session |= {"claimed_ms": 0, "credited_ms": 0, "unreported_ms": 0}
    _insert(
        conn,
        "learning_sessions",
        [
            {"id": "a" * 32, "lesson_id": 1, "enrolment_id": 1, **session},
            {"id": "b" * 32, "lesson_id": 3, "enrolment_id": 2, **session},
        ],
    )


def _raw_beat(sid: str, lesson_id: int, seq: int) -> dict[str, Any]:
    beat: dict[str, Any] = {"user_id": 1, "session_id": sid, "lesson_id": lesson_id, "seq": seq}
    beat |= {"lesson_kind": "document", "event": "heartbeat", "received_at": NOW, "wall_start": NOW}
    beat |= {"launched_at": NOW, "claimed": "[]", "position_ms": 0, "visible_ms": 0, "client": "{}"}
    beat |= {"credited": "[]", "credited_ms": 0, "cuts": "{}", "flags": "[]", "policy_version": 0}
    beat |= {"session_claimed_ms": 0, "session_covered": "[]", "lesson_credited_ms": 0, "day_credited_ms": 0}
    return beat


def _append_only(url: str) -> bool:
    """Whether the raw beats refuse both an UPDATE and a DELETE."""
    engine = create_engine(url)
    try:
        for statement in ("UPDATE anti_idle_beats SET seq = seq + 10", "DELETE FROM anti_idle_beats"):
            try:
                with engine.begin() as conn:
                    conn.execute(text(statement))
            except sa.exc.DatabaseError as error:
                if "append-only" not in str(error):
                    raise
            else:
                return False
        return True
    finally:
        engine.dispose()


def test_0012anti_idle_drops_the_beats_course_keeps_them_append_only_and_downgrade_refills_it(full_app, empty_db):
    """The raw beats lose their course column and its key (the lesson's course is theirs); the
    SQLite rebuild keeps the append-only triggers; downgrade gives the column back filled from the
    lessons, with its key, still append-only."""
    _flask_db(full_app, "upgrade", "heads")
    _flask_db(full_app, "downgrade", "0011anti_idle_beat_session_key")
    engine = create_engine(empty_db)
    read = "SELECT seq, course_id FROM anti_idle_beats ORDER BY seq"
    try:
        with engine.begin() as conn:
            _studied(conn)
            beats = [_raw_beat("a" * 32, 1, 1), _raw_beat("a" * 32, 1, 2), _raw_beat("b" * 32, 3, 3)]
            _insert(conn, "anti_idle_beats", [b | {"course_id": c} for b, c in zip(beats, (1, 1, 2), strict=True)])
        _flask_db(full_app, "upgrade", "heads")
        columns, keys = _beat_columns(empty_db)
        # the session key: a statement trigger on PostgreSQL since 0014anti_idle_stmt_key
        session_key = set() if "postgresql" in empty_db else {("session_id", "user_id", "lesson_id")}
        assert "course_id" not in columns and keys == session_key
        assert _append_only(empty_db)
        assert _drift(full_app) == []
        with engine.begin() as conn:
            _insert(conn, "anti_idle_beats", [_raw_beat("b" * 32, 3, 4)])  # stored without a course
        _flask_db(full_app, "downgrade", "0011anti_idle_beat_session_key")
        columns, keys = _beat_columns(empty_db)
        assert "course_id" in columns and ("course_id",) in keys
        with engine.connect() as conn:
            assert [tuple(r) for r in conn.execute(text(read))] == [(1, 1), (2, 1), (3, 2), (4, 2)]
            nullable = {c["name"]: c["nullable"] for c in inspect(conn).get_columns("anti_idle_beats")}
        assert nullable["course_id"] is False
        assert _append_only(empty_db)
        with engine.connect() as conn:
            assert [tuple(r) for r in conn.execute(text(read))] == [(1, 1), (2, 1), (3, 2), (4, 2)]
    finally:
        engine.dispose()


def test_0012anti_idle_refuses_to_drop_a_course_that_is_not_the_beats_lessons(full_app, empty_db):
    """A stored beat naming another course than its lesson's keeps the column (nothing is lost)."""
    _flask_db(full_app, "upgrade", "heads")
    _flask_db(full_app, "downgrade", "0011anti_idle_beat_session_key")
    engine = create_engine(empty_db)
    try:
        with engine.begin() as conn:
            _studied(conn)
            _insert(conn, "anti_idle_beats", [_raw_beat("a" * 32, 1, 1) | {"course_id": 2}])
        result = full_app.test_cli_runner().invoke(args=["db", "upgrade", "heads"])
        assert result.exit_code != 0 and "1 raw beats name a course that is not their lesson's" in result.output
        columns, _keys = _beat_columns(empty_db)
        assert "course_id" in columns
    finally:
        engine.dispose()


@pytest.mark.backends("postgresql")
def test_0013anti_idle_keeps_each_raw_beats_json_and_downgrade_gives_jsonb_back(full_app, empty_db):
    """The raw beats stored before the upgrade read back the same as ``json``; downgrade makes the
    six columns ``jsonb`` again with the same values."""
    _flask_db(full_app, "upgrade", "heads")
    _flask_db(full_app, "downgrade", "0012anti_idle_beat_no_course")
    values = {
        "claimed": [[0, 10_000], [12_000, 20_000]],
        "client": {"visibility": "visible", "presence": {"device": "1920x1080"}, "rate": 1.5},
        "credited": [[0, 10_000]],
        "cuts": {"R05": 2_000},
        "flags": ["R11"],
        "session_covered": [[0, 20_000]],
    }
    columns = ", ".join(values)
    read = text(f"SELECT {columns}, pg_typeof(client)::text, pg_typeof(flags)::text FROM anti_idle_beats")  # noqa: S608
    engine = create_engine(empty_db)
    try:
        with engine.begin() as conn:
            _studied(conn)
            _insert(
                conn, "anti_idle_beats", [_raw_beat("a" * 32, 1, 1) | {k: json.dumps(v) for k, v in values.items()}]
            )
        _flask_db(full_app, "upgrade", "heads")
        assert _drift(full_app) == []
        with engine.connect() as conn:
            assert tuple(conn.execute(read).one()) == (*values.values(), "json", "json")
        assert _append_only(empty_db)
        _flask_db(full_app, "downgrade", "0012anti_idle_beat_no_course")
        with engine.connect() as conn:
            assert tuple(conn.execute(read).one()) == (*values.values(), "jsonb", "jsonb")
    finally:
        engine.dispose()
