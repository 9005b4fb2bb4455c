"""Every mapped event becomes a valid xAPI 1.0.3 statement (and Video Profile statement where it applies)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lms_core.enrolments import services as enrolments
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.learning.segments import to_xapi
from lms_core.quizzes.services import questions
from lms_core.xapi.statements import (
    MAPPED_EVENTS,
    build_statement,
    segments_seconds,
    session_uuid,
    statement_id_for,
    statement_json,
)
from tests.factories import UserFactory
from tests.lms_core.learning.fixtures import build_course
from tests.lms_core.xapi.conftest import PLATFORM
from tests.lms_core.xapi.xapi_rules import EXT, VIDEO, check_statement, check_video_statement

ADL = "http://adlnet.gov/expapi/verbs/"
SESSION = "0f3c6d2a9b8e0f17a2c5d8e1b4a7c0d3"  # the player's session id: 32 hex digits, not an RFC 4122 UUID


@pytest.fixture
def kit(app, tree):
    kit = build_course(tree)
    learner = UserFactory(username="liming", full_name="李明", org_unit=tree.village_a)
    enrolment = enrolments.enrol(learner, kit.course)
    db.session.commit()
    return kit, learner, enrolment


def make(
    name: str, user: Any, payload: dict[str, Any], *, object_type: str, object_id: Any, course_id: int | None
) -> dict[str, Any]:
    event = emit(name, actor=user, object_type=object_type, object_id=object_id, course_id=course_id, payload=payload)
    statement = build_statement(event, PLATFORM)
    assert statement is not None, name
    data = statement_json(statement)
    json.dumps(data)  # plain JSON, nothing tincan-specific left
    data["_event_id"] = event.id
    return data


def _strip(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "_event_id"}


def video_payload(kit, enrolment, **extra: Any) -> dict[str, Any]:
    return {"lesson_id": kit.video.id, "registration": enrolment.registration, "session_id": SESSION, **extra}


def test_actor_is_account_based_cadre(kit):
    k, learner, enrolment = kit
    data = make(
        "lesson.completed",
        learner,
        {"lesson_id": k.video.id, "registration": enrolment.registration, "kind": "video"},
        object_type="lessons",
        object_id=k.video.id,
        course_id=k.course.id,
    )
    assert data["actor"] == {"objectType": "Agent", "name": "李明", "account": {"homePage": PLATFORM, "name": "liming"}}
    assert data["id"] == statement_id_for(data["_event_id"], PLATFORM)
    assert check_statement(_strip(data)) == []


def test_course_enrolled_is_registered(kit):
    k, learner, enrolment = kit
    data = make(
        "course.enrolled",
        learner,
        {"registration": enrolment.registration, "assigned": True, "deadline": "2026-12-31T15:59:59+00:00"},
        object_type="enrolments",
        object_id=enrolment.id,
        course_id=k.course.id,
    )
    assert check_statement(_strip(data)) == []
    assert data["verb"]["id"] == ADL + "registered"
    assert data["verb"]["display"] == {"en-US": "registered", "zh-CN": "报名"}
    assert data["object"]["id"] == f"{PLATFORM}/courses/{k.course.id}"
    assert data["object"]["definition"]["name"] == {"zh-CN": "习近平新时代中国特色社会主义思想专题"}
    assert data["object"]["definition"]["type"] == "http://adlnet.gov/expapi/activities/course"
    assert data["context"]["registration"] == enrolment.registration
    extensions = data["context"]["extensions"]
    assert extensions[f"{PLATFORM}/xapi-vocab/extensions/assigned"] is True
    assert extensions[f"{PLATFORM}/xapi-vocab/extensions/deadline"] == "2026-12-31T15:59:59+00:00"


def test_lesson_launched(kit):
    k, learner, enrolment = kit
    data = make(
        "lesson.launched",
        learner,
        {**video_payload(k, enrolment), "kind": "video"},
        object_type="lessons",
        object_id=k.video.id,
        course_id=k.course.id,
    )
    assert check_statement(_strip(data)) == []
    assert data["verb"]["id"] == ADL + "launched"
    assert data["object"]["id"] == f"{PLATFORM}/lessons/{k.video.id}"
    assert data["object"]["definition"] == {"name": {"zh-CN": "视频课"}, "type": f"{VIDEO}/activity-type/video"}
    assert data["context"]["contextActivities"]["parent"][0]["id"] == f"{PLATFORM}/courses/{k.course.id}"
    assert data["context"]["registration"] == enrolment.registration
    assert data["context"]["language"] == "zh-CN"
    assert data["context"]["extensions"] == {EXT + "session-id": session_uuid(SESSION, PLATFORM)}

    doc = make(
        "lesson.launched",
        learner,
        {"lesson_id": k.document.id, "registration": enrolment.registration, "session_id": SESSION, "kind": "document"},
        object_type="lessons",
        object_id=k.document.id,
        course_id=k.course.id,
    )
    assert check_statement(_strip(doc)) == []
    assert doc["object"]["definition"]["type"] == "http://adlnet.gov/expapi/activities/lesson"
    assert doc["context"]["extensions"] == {
        f"{PLATFORM}/xapi-vocab/extensions/session-id": session_uuid(SESSION, PLATFORM)
    }


def test_video_session_follows_the_video_profile(kit):
    k, learner, enrolment = kit
    lesson = dict(object_type="lessons", object_id=k.video.id, course_id=k.course.id)
    init = make(
        "video.initialized",
        learner,
        video_payload(k, enrolment, length=100.0, time=0.0, completion_threshold=0.95),
        **lesson,
    )
    session_id = session_uuid(SESSION, PLATFORM)
    # The profile: session-id MUST be the initialized statement's id.
    assert init["id"] == session_id
    statements = [
        init,
        make("video.played", learner, video_payload(k, enrolment, time=12.5), **lesson),
        make(
            "video.paused",
            learner,
            video_payload(
                k, enrolment, time=30.25, played_segments="0[.]12.5[,]12.5[.]30.25", progress=0.3026, length=100.0
            ),
            **lesson,
        ),
        make("video.seeked", learner, video_payload(k, enrolment, time=50, time_from=30.25, time_to=50), **lesson),
        make(
            "video.completed",
            learner,
            video_payload(
                k, enrolment, time=100, played_segments="0[.]30.25[,]50[.]100", progress=0.8025, length=100.0
            ),
            **lesson,
        ),
        make("lesson.terminated", learner, video_payload(k, enrolment, time=100, duration_s=130.4), **lesson),
    ]
    for data in statements:
        assert check_video_statement(_strip(data), session_id=session_id) == [], data["verb"]["id"]
        assert data["context"]["registration"] == enrolment.registration
        assert data["object"]["id"] == f"{PLATFORM}/lessons/{k.video.id}"
    verbs = [s["verb"]["id"] for s in statements]
    assert verbs == [
        ADL + "initialized",
        f"{VIDEO}/verbs/played",
        f"{VIDEO}/verbs/paused",
        f"{VIDEO}/verbs/seeked",
        ADL + "completed",
        ADL + "terminated",
    ]
    assert init["context"]["extensions"][EXT + "length"] == 100.0
    assert init["context"]["extensions"][EXT + "completion-threshold"] == 0.95
    paused = statements[2]["result"]["extensions"]
    assert paused == {EXT + "time": 30.25, EXT + "progress": 0.303, EXT + "played-segments": "0[.]12.5[,]12.5[.]30.25"}
    seeked = statements[3]["result"]["extensions"]
    assert seeked == {EXT + "time-from": 30.25, EXT + "time-to": 50.0}
    completed = statements[4]["result"]
    assert completed["completion"] is True
    assert completed["duration"] == "PT01M20.25S"  # the media actually played: 30.25 s + 50 s
    terminated = statements[5]
    assert terminated["result"]["duration"] == "PT02M10.4S"
    # length, threshold and progress came from the lesson and the learner's progress row
    assert terminated["context"]["extensions"][EXT + "length"] == 100.0
    assert terminated["result"]["extensions"][EXT + "progress"] == 0.0
    assert terminated["result"]["extensions"][EXT + "played-segments"] == ""


def test_quiz_answered_and_graded(kit):
    k, learner, enrolment = kit
    single = next(q for q in questions(k.quiz) if q.kind.value == "single")
    answered = make(
        "quiz.answered",
        learner,
        {
            "lesson_id": k.quiz.id,
            "attempt_id": 7,
            "registration": enrolment.registration,
            "response": [1],
            "success": True,
        },
        object_type="quiz_questions",
        object_id=single.id,
        course_id=k.course.id,
    )
    assert check_statement(_strip(answered)) == []
    assert answered["verb"]["id"] == ADL + "answered"
    assert answered["object"]["id"] == f"{PLATFORM}/quiz-questions/{single.id}"
    definition = answered["object"]["definition"]
    assert definition["interactionType"] == "choice"
    assert definition["choices"][1] == {"id": "1", "description": {"zh-CN": "2"}}
    assert "correctResponsesPattern" not in definition  # the answer key stays in the LMS
    assert answered["result"] == {"response": "1", "success": True}
    ctx = answered["context"]["contextActivities"]
    assert ctx["parent"][0]["id"] == f"{PLATFORM}/lessons/{k.quiz.id}"
    assert ctx["parent"][0]["definition"]["type"] == "http://adlnet.gov/expapi/activities/assessment"
    assert ctx["grouping"][0]["id"] == f"{PLATFORM}/courses/{k.course.id}"

    true_false = next(q for q in questions(k.quiz) if q.kind.value == "true_false")
    tf = make(
        "quiz.answered",
        learner,
        {"lesson_id": k.quiz.id, "attempt_id": 7, "response": [1], "success": False},
        object_type="quiz_questions",
        object_id=true_false.id,
        course_id=k.course.id,
    )
    assert tf["result"] == {"response": "false", "success": False}
    assert tf["context"]["registration"] == enrolment.registration  # looked up from the enrolment

    for name, verb, success in (("quiz.passed", "passed", True), ("quiz.failed", "failed", False)):
        raw = 3 if success else 1
        data = make(
            name,
            learner,
            {
                "lesson_id": k.quiz.id,
                "registration": enrolment.registration,
                "score_raw": raw,
                "score_max": 3,
                "scaled": round(raw / 3, 4),
            },
            object_type="quiz_attempts",
            object_id=7,
            course_id=k.course.id,
        )
        assert check_statement(_strip(data)) == []
        assert data["verb"]["id"] == ADL + verb
        assert data["object"]["id"] == f"{PLATFORM}/lessons/{k.quiz.id}"
        assert data["result"]["success"] is success and data["result"]["completion"] is True
        assert data["result"]["score"] == {"raw": raw, "min": 0, "max": 3, "scaled": round(raw / 3, 4)}


def test_completions_and_survey(kit):
    k, learner, enrolment = kit
    lesson_done = make(
        "lesson.completed",
        learner,
        {"lesson_id": k.document.id, "registration": enrolment.registration, "kind": "document"},
        object_type="lessons",
        object_id=k.document.id,
        course_id=k.course.id,
    )
    course_done = make(
        "course.completed",
        learner,
        {"registration": enrolment.registration, "nominal_hours_centi": 200},
        object_type="courses",
        object_id=k.course.id,
        course_id=k.course.id,
    )
    survey = make(
        "survey.submitted",
        learner,
        {
            "lesson_id": k.survey.id,
            "registration": enrolment.registration,
            "rating": 4,
            "comment": "讲得很透彻，案例贴近基层",
        },
        object_type="lessons",
        object_id=k.survey.id,
        course_id=k.course.id,
    )
    doc_end = make(
        "lesson.terminated",
        learner,
        {
            "lesson_id": k.document.id,
            "registration": enrolment.registration,
            "session_id": SESSION,
            "time": 0,
            "duration_s": 95.5,
        },
        object_type="lessons",
        object_id=k.document.id,
        course_id=k.course.id,
    )
    assert doc_end["verb"]["id"] == ADL + "terminated"
    assert doc_end["result"] == {"duration": "PT01M35.5S"}
    assert "category" not in doc_end["context"]["contextActivities"]  # not a Video Profile statement
    assert doc_end["context"]["extensions"] == {
        f"{PLATFORM}/xapi-vocab/extensions/session-id": session_uuid(SESSION, PLATFORM)
    }
    for data in (lesson_done, course_done, survey, doc_end):
        assert check_statement(_strip(data)) == []
        assert data["context"]["registration"] == enrolment.registration
    assert lesson_done["verb"]["id"] == course_done["verb"]["id"] == ADL + "completed"
    assert lesson_done["result"] == {"completion": True} == course_done["result"]
    assert lesson_done["object"]["definition"]["name"] == {"zh-CN": "阅读材料"}
    assert course_done["object"]["id"] == f"{PLATFORM}/courses/{k.course.id}"
    assert survey["verb"]["id"] == ADL + "responded"
    assert survey["object"]["definition"]["type"] == "http://id.tincanapi.com/activitytype/survey"
    assert survey["result"] == {
        "score": {"raw": 4, "min": 1, "max": 5, "scaled": 0.8},
        "response": "讲得很透彻，案例贴近基层",
    }


def test_mapping_degrades_without_rows(kit):
    """A lesson that no longer exists: the payload alone still gives a valid statement."""
    k, learner, enrolment = kit
    payload = {
        "lesson_id": 987654,
        "registration": enrolment.registration,
        "session_id": SESSION,
        "time": 5,
        "played_segments": "0[.]5",
        "progress": 0.05,
        "length": 100,
        "completion_threshold": 0.95,
    }
    data = make("video.paused", learner, payload, object_type="lessons", object_id=987654, course_id=None)
    assert check_video_statement(_strip(data), session_id=session_uuid(SESSION, PLATFORM)) == []
    assert data["object"] == {
        "id": f"{PLATFORM}/lessons/987654",
        "objectType": "Activity",
        "definition": {"type": f"{VIDEO}/activity-type/video"},
    }
    assert "parent" not in data["context"]["contextActivities"]


def test_unmapped_and_actorless_events_are_ignored(kit):
    k, learner, _ = kit
    for name in ("user.logged_in", "study.interval_credited", "org.created"):
        assert build_statement(emit(name, actor=learner, payload={}), PLATFORM) is None
    assert build_statement(emit("course.completed", course_id=k.course.id, payload={}), PLATFORM) is None
    assert "study.interval_credited" not in MAPPED_EVENTS


def test_ids_are_deterministic_per_event_and_platform(kit):
    k, learner, enrolment = kit
    event = emit(
        "lesson.completed",
        actor=learner,
        object_type="lessons",
        object_id=k.video.id,
        course_id=k.course.id,
        payload={"lesson_id": k.video.id, "registration": enrolment.registration},
    )
    first = statement_json(build_statement(event, PLATFORM))
    again = statement_json(build_statement(event, PLATFORM + "/"))
    assert first == again
    other = statement_json(build_statement(event, "https://another-city.example.gov.cn"))
    assert other["id"] != first["id"]
    assert str(uuid.UUID(first["id"])) == first["id"]
    assert session_uuid("6f1c2b9e-1111-4aaa-8bbb-123456789abc", PLATFORM) == "6f1c2b9e-1111-4aaa-8bbb-123456789abc"
    derived = session_uuid(SESSION, PLATFORM)
    assert derived != str(uuid.UUID(SESSION)) and uuid.UUID(derived).version == 5


@given(st.lists(st.tuples(st.integers(0, 10_000_000), st.integers(1, 600_000)), max_size=30))
def test_played_segments_length_matches_the_ranges(ranges):
    """``segments_seconds`` reads back what ``to_xapi`` writes (ms ranges, seconds text)."""
    segments = [(start, start + length) for start, length in ranges]
    expected = sum(length for _, length in ranges) / 1000
    assert segments_seconds(to_xapi(segments)) == pytest.approx(expected, abs=1e-6)
