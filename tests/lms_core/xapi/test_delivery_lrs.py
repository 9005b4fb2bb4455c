"""Statements reach the project's real LRS (``lrs`` app) over HTTP, and survive it being down.

The LRS runs as its own application (``lrs.create_app``, the standalone
deployment) on the test database, served by werkzeug on 127.0.0.1 in a thread;
the platform reaches it only through HTTP with an LRS client credential.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select
from tincan import Activity, ActivityProfileDocument, Agent, AgentAccount, StateDocument

from lms_core.enrolments import services as enrolments
from lms_core.extensions import db
from lms_core.jobs.services import commit
from lms_core.learning import feedback
from lms_core.learning import services as learning
from lms_core.quizzes import services as quizzes
from lms_core.xapi import services
from lms_core.xapi.models import OutboxStatus, XapiOutbox
from lms_core.xapi.tincan_adapter import PlatformLRS
from tests.conftest import make_test_config
from tests.factories import UserFactory
from tests.lms_core.learning.fixtures import build_course
from tests.lms_core.xapi.conftest import PLATFORM, xapi_config
from tests.lms_core.xapi.servers import ServerThread
from tests.lms_core.xapi.xapi_rules import VIDEO, check_statement, check_video_statement

T0 = dt.datetime(2026, 5, 10, 1, 0, tzinfo=dt.UTC)
RIGHT = {"single": ["1"], "multiple": ["0", "2"], "true_false": ["0"]}


class RealLRS:
    def __init__(self, app: Flask, key: str, secret: str) -> None:
        self.app = app
        self.key = key
        self.secret = secret
        self.server = ServerThread(app)

    @property
    def endpoint(self) -> str:
        return f"{self.server.url}/xapi/"

    def client(self) -> PlatformLRS:
        return PlatformLRS(self.endpoint, key=self.key, secret=self.secret, timeout=10)


@pytest.fixture
def real_lrs(database_url: str, tmp_path: Path) -> Iterator[RealLRS]:
    """The ``lrs`` app on the test database with a client for the platform; not started."""
    from lrs import clients
    from lrs import create_app as create_lrs_app

    # The platform's URL: the LRS ties a statement about one of its accounts to the learner.
    lrs_app = create_lrs_app(make_test_config(database_url, tmp_path, LMS_PLUGINS=["lrs"], LMS_PLATFORM_URL=PLATFORM))
    with lrs_app.app_context():
        row, secret = clients.create_client(
            "干部网络学院 LMS", ["statements/write", "statements/read", "state", "profile"]
        )
        key = row.key
        db.session.remove()
    lrs = RealLRS(lrs_app, key, secret)
    yield lrs
    lrs.server.stop()
    with lrs_app.app_context():
        db.engine.dispose()


@pytest.fixture
def app_settings(real_lrs: RealLRS) -> dict[str, Any]:
    return xapi_config(real_lrs.endpoint, real_lrs.key, real_lrs.secret)


@pytest.fixture
def kit(app, tree):
    kit = build_course(tree)
    learner = UserFactory(username="zhaolei", full_name="赵磊", org_unit=tree.village_a)
    db.session.commit()
    db.session.info.pop("lms_new_jobs", None)  # course authoring events are not learning statements
    return kit, learner


def learn(kit) -> str:
    """A learner's real path through the services: enrol, watch, quiz, feedback. Returns the registration."""
    k, learner = kit
    enrolment = enrolments.enrol(learner, k.course)
    db.session.commit()
    with time_machine.travel(T0, tick=False):
        session = learning.start_session(learner, k.video, enrolment)
        db.session.commit()
    steps = [
        (10, {"seq": 1, "event": "play", "segments": [[0, 10]], "position": 10}),
        (20, {"seq": 2, "event": "pause", "segments": [[10, 20]], "position": 20}),
        (21, {"seq": 3, "event": "seeked", "segments": [], "position": 50, "time_from": 20, "time_to": 50}),
        (30, {"seq": 4, "event": "terminate", "segments": [[50, 59]], "position": 59}),
    ]
    for seconds, beat in steps:
        with time_machine.travel(T0 + dt.timedelta(seconds=seconds), tick=False):
            learning.record_beat(session.id, learner, beat)
            db.session.commit()
    attempt = quizzes.open_attempt(learner, k.quiz, enrolment)
    answers = {str(qid): RIGHT[db.session.get(quizzes.Question, qid).kind.value] for qid in attempt.question_order}
    quizzes.submit(learner, attempt, answers)
    feedback.submit_feedback(learner, k.survey, enrolment, 5, "案例丰富，贴近基层工作")
    db.session.commit()
    return enrolment.registration


def outbox() -> list[XapiOutbox]:
    db.session.expire_all()
    return list(db.session.execute(select(XapiOutbox).order_by(XapiOutbox.id)).scalars())


def lrs_statements(lrs: PlatformLRS, learner) -> list[dict]:
    """Every statement the LRS holds for the learner, following ``more`` pages."""
    agent = Agent(account=AgentAccount(home_page=PLATFORM, name=learner.username))
    response = lrs.query_statements({"agent": agent, "limit": 5, "ascending": True})
    assert response.success, response.data
    found = []
    while True:
        found.extend(response.content.statements)
        if not response.content.more:
            return found
        response = lrs.more_statements(response.content)
        assert response.success, response.data


def test_learning_statements_arrive_at_the_real_lrs(kit, real_lrs):
    real_lrs.server.start()
    registration = learn(kit)
    commit()  # dispatch the learning events; delivery runs inline, over HTTP

    rows = outbox()
    names = sorted({r.statement["verb"]["id"].rsplit("/", 1)[1] for r in rows})
    assert names == [
        "answered",
        "completed",
        "initialized",
        "launched",
        "passed",
        "paused",
        "played",
        "registered",
        "responded",
        "seeked",
        "terminated",
    ]
    assert [r.status for r in rows] == [OutboxStatus.DELIVERED] * len(rows), [r.last_error for r in rows]
    for row in rows:
        assert check_statement(row.statement) == [], row.statement
    # The player's real payloads make complete Video Profile statements, all in the initialized session.
    (initialized,) = [r.statement for r in rows if r.statement["verb"]["id"].endswith("/initialized")]
    video = [
        r.statement
        for r in rows
        if VIDEO in [a["id"] for a in r.statement["context"].get("contextActivities", {}).get("category", [])]
    ]
    assert len(video) == 5  # initialized, played, paused, seeked, terminated
    for statement in video:
        assert check_video_statement(statement, session_id=initialized["id"]) == [], statement

    lrs = real_lrs.client()
    stored = lrs_statements(lrs, kit[1])
    assert sorted(str(s.id) for s in stored) == sorted(r.statement_id for r in rows)
    # Each is stored with its learner's id beside it (the log browser scopes by it).
    from lrs.statements import S

    learners = dict(db.session.execute(select(S.c.statement_id, S.c.actor_user_id)).all())
    assert {learners[r.statement_id] for r in rows} == {kit[1].id}
    one = lrs.retrieve_statement(rows[0].statement_id)
    assert one.success and one.content.actor.account.name == "zhaolei" and one.content.actor.name == "赵磊"
    by_registration = lrs.query_statements({"registration": registration, "limit": 100})
    assert len(by_registration.content.statements) == len(rows)
    since = lrs.query_statements({"since": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10), "limit": 100})
    assert since.success and len(since.content.statements) == len(rows)


def test_lrs_down_then_up_loses_nothing_and_duplicates_nothing(kit, real_lrs, app):
    learn(kit)  # the LRS is not running: connection refused
    commit()
    rows = outbox()
    assert rows and all(r.status == OutboxStatus.PENDING and r.attempts >= 1 for r in rows)
    assert all("ConnectionRefusedError" in r.last_error for r in rows)

    real_lrs.server.start()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["lms", "xapi", "replay"])
    assert result.exit_code == 0, result.output
    assert f"delivered {len(rows)}, rejected 0, still pending 0" in result.output
    assert all(r.status == OutboxStatus.DELIVERED for r in outbox())

    lrs = real_lrs.client()
    ids = sorted(r.statement_id for r in rows)
    assert sorted(str(s.id) for s in lrs_statements(lrs, kit[1])) == ids
    for statement_id in ids:
        assert lrs.retrieve_statement(statement_id).success

    # Sent again (a deliverer that died before recording success): the LRS keeps one copy of each.
    for row in outbox():
        row.status = OutboxStatus.PENDING
    db.session.commit()
    services.make_due()
    report = services.deliver_due()
    assert report.delivered == len(rows) and report.failed == 0
    assert sorted(str(s.id) for s in lrs_statements(lrs, kit[1])) == ids

    # The LRS goes away again: new statements wait, the old ones stay delivered.
    real_lrs.server.stop()
    k, learner = kit
    feedback.submit_feedback(learner, k.survey, learning.enrolment_for(learner, k.course.id), 4, "再补充一点")
    commit()
    pending = [r for r in outbox() if r.status == OutboxStatus.PENDING]
    assert len(pending) == 1 and pending[0].statement["verb"]["id"].endswith("/responded")
    real_lrs.server.start()
    assert runner.invoke(args=["lms", "xapi", "replay"]).exit_code == 0
    assert len(lrs_statements(lrs, kit[1])) == len(rows) + 1


def test_adapter_documents_against_the_real_lrs(real_lrs, app):
    """The defects fixed in the adapter, against the project's strict LRS."""
    real_lrs.server.start()
    lrs = real_lrs.client()
    about = lrs.about()
    assert about.success and "1.0.3" in about.content.version

    activity = Activity(id=f"{PLATFORM}/lessons/1")
    agent = Agent(name="李明", account=AgentAccount(home_page=PLATFORM, name="liming"))
    registration = "5b0e9f1e-63a4-4c1e-9d1d-1c2a3b4c5d6e"
    text = '{"位置": 61.5, "备注": "第三节"}'
    state = StateDocument(
        id="resume",
        activity=activity,
        agent=agent,
        registration=registration,
        content=text,
        content_type="application/json",
    )
    assert lrs.save_state(state).response.status == 204
    got = lrs.retrieve_state(activity, agent, "resume", registration=registration)
    assert got.success and bytes(got.content.content).decode("utf-8") == text and got.content.etag
    # Stored under its registration: without it there is no such document.
    assert lrs.retrieve_state(activity, agent, "resume").content is None

    profile = ActivityProfileDocument(
        id="meta", activity=activity, content='{"讲师": "王教授"}', content_type="application/json"
    )
    assert lrs.save_activity_profile(profile, if_none_match=True).response.status == 204
    again = ActivityProfileDocument(
        id="meta", activity=activity, content='{"讲师": "别人"}', content_type="application/json"
    )
    assert lrs.save_activity_profile(again, if_none_match=True).response.status == 412  # already exists
    current = lrs.retrieve_activity_profile(activity, "meta").content
    assert bytes(current.content).decode("utf-8") == '{"讲师": "王教授"}'
    current.content = '{"讲师": "王教授", "学时": 2}'
    assert lrs.save_activity_profile(current).response.status == 204  # If-Match with the real ETag
