"""Map committed domain events (docs/events.md) to xAPI 1.0.3 statements.

Statements are built with ``tincan`` objects and stored as the JSON they will be
sent as. Rules that hold for every statement:

* **id**: ``uuid5`` of the platform URL and the event id, so a redelivered
  event yields the same statement (the LRS ignores same id + same content), and
  two platforms sharing one LRS never collide. The Video Profile's
  ``initialized`` statement is the exception: its id *is* the session id (the
  profile requires ``session-id`` to equal the ``initialized`` statement's id),
  derived the same way from the learning session; one session has one
  ``initialized`` event, so it is just as stable.
* **actor**: the cadre as an account-based Agent: ``account.homePage`` is
  ``LMS_PLATFORM_URL``, ``account.name`` the username, ``name`` the full name.
* **activities**: IRIs under the platform URL (``/courses/{id}``,
  ``/lessons/{id}``, ``/quiz-questions/{id}``), names in ``zh-CN``. A lesson's
  activity type follows its kind (video lessons use the Video Profile's type),
  so one activity id never gets two types.
* **context**: registration (the enrolment UUID), the course as parent or
  grouping, the Video Profile category and extensions on video statements.

Look-ups of names, lesson kinds, media lengths and registrations are optional:
a missing row leaves the field out rather than failing the event, and the
payload's own fields always win.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from tincan import (
    Activity,
    ActivityDefinition,
    ActivityList,
    Agent,
    AgentAccount,
    Context,
    ContextActivities,
    Extensions,
    LanguageMap,
    Result,
    Score,
    Statement,
    Verb,
)

from lms_core.accounts.models import User
from lms_core.courses.models import Course, Lesson
from lms_core.enrolments.models import Enrolment
from lms_core.events.models import Event
from lms_core.extensions import db
from lms_core.learning.models import LessonProgress
from lms_core.learning.segments import to_xapi
from lms_core.quizzes.models import Question, QuestionKind
from lms_core.xapi import vocab
from lms_core.xapi.tincan_adapter import XAPI_VERSION

#: A UUID as xAPI (and tincan) accept it: RFC 4122 variant, versions 1 to 5, with dashes.
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
#: Namespace of the platform's deterministic statement ids.
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://w3id.org/xapi/lms-core/statement-ids")


def statement_id_for(event_id: int, platform_url: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"{platform_url.rstrip('/')}/events/{event_id}"))


def _canonical_uuid(value: Any) -> str | None:
    """``value`` if it is a canonical RFC 4122 UUID string (what xAPI requires), else None."""
    text = str(value).strip().lower() if value else ""
    return text if _UUID_RE.match(text) else None


def session_uuid(session_id: str, platform_url: str) -> str:
    """The Video Profile session id: the session's own id if it is a UUID, else derived from it."""
    return _canonical_uuid(session_id) or str(
        uuid.uuid5(ID_NAMESPACE, f"{platform_url.rstrip('/')}/sessions/{session_id}")
    )


def _lang(text: str | None) -> LanguageMap | None:
    return LanguageMap({"zh-CN": text}) if text else None


def _seconds(value: Any) -> float | None:
    """A Video Profile time value: float, at most 3 decimals."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return round(float(value), 3)
    except (TypeError, ValueError):
        return None


def segments_seconds(played_segments: str) -> float:
    """Total length of ``0[.]5.2[,]10[.]20`` segments, in seconds."""
    total = 0.0
    for part in played_segments.split("[,]"):
        bounds = part.split("[.]")
        if len(bounds) == 2:
            try:
                start, end = float(bounds[0]), float(bounds[1])
            except ValueError:
                continue
            total += max(end - start, 0.0)
    return total


@dataclass
class _Builder:
    """State for mapping one event."""

    event: Event
    base: str
    user: User

    @property
    def payload(self) -> dict[str, Any]:
        return self.event.payload or {}

    # look-ups ------------------------------------------------------------------

    def lesson(self) -> Lesson | None:
        lesson_id = self.payload.get("lesson_id")
        if lesson_id is None and self.event.object_type == "lessons":
            lesson_id = self.event.object_id
        try:
            return db.session.get(Lesson, int(lesson_id)) if lesson_id is not None else None
        except (TypeError, ValueError):
            return None

    def course(self) -> Course | None:
        return db.session.get(Course, self.event.course_id) if self.event.course_id else None

    def registration(self) -> str | None:
        found = _canonical_uuid(self.payload.get("registration"))
        if found or not self.event.course_id:
            return found
        value = db.session.execute(
            select(Enrolment.registration).filter_by(user_id=self.user.id, course_id=self.event.course_id)
        ).scalar_one_or_none()
        return _canonical_uuid(value)

    # pieces --------------------------------------------------------------------

    def actor(self) -> Agent:
        return Agent(
            name=self.user.full_name or None,
            account=AgentAccount(home_page=self.base, name=self.user.username),
        )

    @staticmethod
    def verb(key: str) -> Verb:
        iri, en, zh = vocab.VERBS[key]
        return Verb(id=iri, display=LanguageMap({"en-US": en, "zh-CN": zh}))

    def course_activity(self) -> Activity | None:
        if not self.event.course_id:
            return None
        course = self.course()
        definition = ActivityDefinition(type=vocab.TYPE_COURSE)
        if course is not None:
            definition.name = _lang(course.title)
            definition.description = _lang(course.description)
        return Activity(id=f"{self.base}/courses/{self.event.course_id}", definition=definition)

    def lesson_activity(self, lesson_id: Any = None) -> Activity:
        lesson = self.lesson()
        lesson_id = (
            lesson_id
            if lesson_id is not None
            else (lesson.id if lesson else self.payload.get("lesson_id", self.event.object_id))
        )
        definition = None
        if lesson is not None:
            definition = ActivityDefinition(name=_lang(lesson.title), type=vocab.LESSON_TYPES.get(lesson.kind.value))
        elif self.payload.get("kind") in vocab.LESSON_TYPES:
            definition = ActivityDefinition(type=vocab.LESSON_TYPES[self.payload["kind"]])
        elif self.event.name.startswith("video."):
            definition = ActivityDefinition(type=vocab.TYPE_VIDEO)
        return Activity(id=f"{self.base}/lessons/{lesson_id}", definition=definition)

    def lesson_kind(self) -> str | None:
        lesson = self.lesson()
        if lesson is not None:
            return str(lesson.kind.value)
        kind = self.payload.get("kind")
        return str(kind) if kind else None

    def context(
        self,
        *,
        parent: list[Activity] | None = None,
        grouping: list[Activity] | None = None,
        video: bool = False,
        extensions: dict[str, Any] | None = None,
    ) -> Context:
        activities = ContextActivities()
        if parent:
            activities.parent = ActivityList(parent)
        if grouping:
            activities.grouping = ActivityList(grouping)
        if video:
            activities.category = ActivityList([Activity(id=vocab.VIDEO)])
        context = Context(registration=self.registration(), language="zh-CN")
        if parent or grouping or video:
            context.context_activities = activities
        clean = {k: v for k, v in (extensions or {}).items() if v is not None}
        if clean:
            context.extensions = Extensions(clean)
        return context

    def in_course(self) -> list[Activity]:
        course = self.course_activity()
        return [course] if course is not None else []

    def statement(
        self,
        verb: str,
        obj: Activity,
        *,
        context: Context,
        result: Result | None = None,
        statement_id: str | None = None,
    ) -> Statement:
        return Statement(
            id=statement_id or statement_id_for(self.event.id, self.base),
            actor=self.actor(),
            verb=self.verb(verb),
            object=obj,
            context=context,
            result=result,
            timestamp=self.event.created_at,
        )

    def ext(self, name: str) -> str:
        """A platform extension IRI (for facts the public vocabularies have no term for)."""
        return f"{self.base}/xapi-vocab/extensions/{name}"

    # video ---------------------------------------------------------------------

    def video_context(self, *, required_length: bool) -> Context:
        """Context of a Video Profile statement: session id, length, completion threshold."""
        lesson = self.lesson()
        payload = self.payload
        length = _seconds(payload.get("length"))
        if length is None and lesson is not None and lesson.media is not None and lesson.media.duration_ms:
            length = round(lesson.media.duration_ms / 1000, 3)
        threshold = _seconds(payload.get("completion_threshold"))
        if threshold is None and lesson is not None:
            threshold = round(lesson.completion_threshold_pct / 100, 3)
        extensions: dict[str, Any] = {}
        if payload.get("session_id"):
            extensions[vocab.EXT_SESSION_ID] = session_uuid(payload["session_id"], self.base)
        if length is not None and (required_length or "length" in payload):
            extensions[vocab.EXT_LENGTH] = length
        if required_length and threshold is not None:
            # Required when below 1, allowed when equal: always sent on these verbs.
            extensions[vocab.EXT_COMPLETION_THRESHOLD] = threshold
        return self.context(parent=self.in_course(), video=True, extensions=extensions)

    def video_progress(self) -> dict[str, Any]:
        """``progress`` and ``played-segments``: from the payload, else the learner's progress row."""
        payload = self.payload
        progress = _seconds(payload.get("progress"))
        segments = payload.get("played_segments")
        lesson = self.lesson() if progress is None or segments is None else None
        if lesson is not None:
            row = db.session.execute(
                select(LessonProgress).filter_by(user_id=self.user.id, lesson_id=lesson.id)
            ).scalar_one_or_none()
            # No progress row: no credited viewing yet, so 0 and no segments (not "unknown").
            coverage = row.coverage_bp if row is not None else 0
            ranges = [(int(s), int(e)) for s, e in row.credited_segments] if row is not None else []
            progress = progress if progress is not None else round(coverage / 10000, 3)
            segments = segments if segments is not None else to_xapi(ranges)
        return {vocab.EXT_PROGRESS: progress, vocab.EXT_PLAYED_SEGMENTS: segments}


def _result_ext(values: dict[str, Any]) -> Extensions | None:
    clean = {k: v for k, v in values.items() if v is not None}
    return Extensions(clean) if clean else None


def _duration(seconds: Any) -> dt.timedelta | None:
    value = _seconds(seconds)
    if value is None or value < 0:
        return None
    return dt.timedelta(seconds=round(value, 2))  # xAPI keeps durations to 0.01 s


# one function per event ----------------------------------------------------------


def _course_enrolled(b: _Builder) -> Statement | None:
    course = b.course_activity()
    if course is None:
        return None
    extensions: dict[str, Any] = {b.ext("assigned"): bool(b.payload.get("assigned"))}
    if b.payload.get("deadline"):
        extensions[b.ext("deadline")] = str(b.payload["deadline"])
    return b.statement("registered", course, context=b.context(extensions=extensions))


def _session_extension(b: _Builder) -> dict[str, Any]:
    """The session id outside Video Profile statements.

    A video lesson's launch opens the session its ``initialized`` statement names,
    so it carries the profile's ``session-id``; other kinds have no such session
    and use the platform's own extension.
    """
    if not b.payload.get("session_id"):
        return {}
    key = vocab.EXT_SESSION_ID if b.lesson_kind() == "video" else b.ext("session-id")
    return {key: session_uuid(b.payload["session_id"], b.base)}


def _lesson_launched(b: _Builder) -> Statement:
    context = b.context(parent=b.in_course(), extensions=_session_extension(b))
    return b.statement("launched", b.lesson_activity(), context=context)


def _video_initialized(b: _Builder) -> Statement | None:
    if not b.payload.get("session_id"):
        return None
    return b.statement(
        "initialized",
        b.lesson_activity(),
        context=b.video_context(required_length=True),
        statement_id=session_uuid(b.payload["session_id"], b.base),
    )


def _video_played(b: _Builder) -> Statement:
    result = Result(extensions=_result_ext({vocab.EXT_TIME: _seconds(b.payload.get("time"))}))
    return b.statement("played", b.lesson_activity(), context=b.video_context(required_length=False), result=result)


def _video_paused(b: _Builder) -> Statement:
    result = Result(extensions=_result_ext({vocab.EXT_TIME: _seconds(b.payload.get("time")), **b.video_progress()}))
    return b.statement("paused", b.lesson_activity(), context=b.video_context(required_length=True), result=result)


def _video_seeked(b: _Builder) -> Statement:
    result = Result(
        extensions=_result_ext(
            {
                vocab.EXT_TIME_FROM: _seconds(b.payload.get("time_from")),
                vocab.EXT_TIME_TO: _seconds(b.payload.get("time_to")),
            }
        )
    )
    return b.statement("seeked", b.lesson_activity(), context=b.video_context(required_length=False), result=result)


def _video_completed(b: _Builder) -> Statement:
    progress = b.video_progress()
    seconds = b.payload.get("duration_s")
    if seconds is None and progress[vocab.EXT_PLAYED_SEGMENTS]:
        # The profile wants the time spent consuming the video; without a measured
        # figure, the length of the media actually played is the honest lower bound.
        seconds = segments_seconds(progress[vocab.EXT_PLAYED_SEGMENTS])
    result = Result(
        completion=True,
        duration=_duration(seconds or 0),
        extensions=_result_ext({vocab.EXT_TIME: _seconds(b.payload.get("time")), **progress}),
    )
    return b.statement("completed", b.lesson_activity(), context=b.video_context(required_length=True), result=result)


def _lesson_terminated(b: _Builder) -> Statement:
    duration = _duration(b.payload.get("duration_s"))
    if b.lesson_kind() == "video" and b.payload.get("session_id"):
        extensions = {vocab.EXT_TIME: _seconds(b.payload.get("time")), **b.video_progress()}
        result = Result(duration=duration, extensions=_result_ext(extensions))
        return b.statement(
            "terminated", b.lesson_activity(), context=b.video_context(required_length=True), result=result
        )
    return b.statement(
        "terminated",
        b.lesson_activity(),
        result=Result(duration=duration) if duration else None,
        context=b.context(parent=b.in_course(), extensions=_session_extension(b)),
    )


def _response_text(question: Question | None, response: Any) -> str | None:
    """The xAPI response string: ``choice`` ids joined by ``[,]``, or ``true``/``false``."""
    if response is None:
        return None
    if isinstance(response, bool):
        return "true" if response else "false"
    if (
        question is not None
        and question.kind == QuestionKind.TRUE_FALSE
        and isinstance(response, list)
        and len(response) == 1
    ):
        return "true" if response[0] == 0 else "false"
    if isinstance(response, list):
        return "[,]".join(str(item) for item in response)
    return str(response)


def _quiz_answered(b: _Builder) -> Statement:
    object_id = b.event.object_id or ""
    question = db.session.get(Question, int(object_id)) if object_id.isdigit() else None
    definition = None
    if question is not None:
        definition = ActivityDefinition(
            type="http://adlnet.gov/expapi/activities/cmi.interaction",
            name=_lang(question.text[:200]),
            description=_lang(question.text),
            interaction_type="true-false" if question.kind == QuestionKind.TRUE_FALSE else "choice",
        )
        if question.kind != QuestionKind.TRUE_FALSE:
            # Choices but no correctResponsesPattern: the answer key must not leak to LRS readers.
            definition.choices = [
                {"id": str(i), "description": {"zh-CN": text}} for i, text in enumerate(question.options)
            ]
    obj = Activity(id=f"{b.base}/quiz-questions/{object_id}", definition=definition)
    success = b.payload.get("success")
    result = Result(
        response=_response_text(question, b.payload.get("response")),
        success=success if isinstance(success, bool) else None,
    )
    extensions = {b.ext("attempt-id"): b.payload.get("attempt_id")}
    return b.statement(
        "answered",
        obj,
        result=result,
        context=b.context(parent=[b.lesson_activity()], grouping=b.in_course(), extensions=extensions),
    )


def _quiz_graded(b: _Builder) -> Statement:
    raw, maximum = b.payload.get("score_raw"), b.payload.get("score_max")
    score = None
    if isinstance(raw, int | float) and isinstance(maximum, int | float) and maximum > 0:
        scaled = b.payload.get("scaled")
        if not isinstance(scaled, int | float):
            scaled = raw / maximum
        score = Score(raw=raw, min=0, max=maximum, scaled=round(max(min(float(scaled), 1.0), 0.0), 4))
    passed = b.event.name == "quiz.passed"
    attempt_id = b.event.object_id or ""
    extensions = {b.ext("attempt-id"): int(attempt_id)} if attempt_id.isdigit() else {}
    return b.statement(
        "passed" if passed else "failed",
        b.lesson_activity(),
        result=Result(score=score, success=passed, completion=True),
        context=b.context(parent=b.in_course(), extensions=extensions),
    )


def _lesson_completed(b: _Builder) -> Statement:
    return b.statement(
        "completed",
        b.lesson_activity(),
        result=Result(completion=True),
        context=b.context(parent=b.in_course()),
    )


def _course_completed(b: _Builder) -> Statement | None:
    course = b.course_activity()
    if course is None:
        return None
    return b.statement("completed", course, result=Result(completion=True), context=b.context())


def _survey_submitted(b: _Builder) -> Statement:
    rating, top = b.payload.get("rating"), b.payload.get("rating_max", 5)
    score = None
    if isinstance(top, int) and isinstance(rating, int) and not isinstance(rating, bool) and 1 <= rating <= top:
        score = Score(raw=rating, min=1, max=top, scaled=round(rating / top, 4))
    result = Result(score=score, response=str(b.payload.get("comment") or "") or None)
    return b.statement("responded", b.lesson_activity(), result=result, context=b.context(parent=b.in_course()))


_MAPPERS = {
    "course.enrolled": _course_enrolled,
    "lesson.launched": _lesson_launched,
    "video.initialized": _video_initialized,
    "video.played": _video_played,
    "video.paused": _video_paused,
    "video.seeked": _video_seeked,
    "video.completed": _video_completed,
    "lesson.terminated": _lesson_terminated,
    "quiz.answered": _quiz_answered,
    "quiz.passed": _quiz_graded,
    "quiz.failed": _quiz_graded,
    "lesson.completed": _lesson_completed,
    "course.completed": _course_completed,
    "survey.submitted": _survey_submitted,
}
#: Events that become statements (the rest of the log is ignored here).
MAPPED_EVENTS = frozenset(_MAPPERS)


def build_statement(event: Event, platform_url: str) -> Statement | None:
    """The statement for ``event``, or None when the event has no xAPI meaning.

    Events without an actor (system events) or whose actor no longer exists are
    not mapped either: a statement needs an actor.
    """
    mapper = _MAPPERS.get(event.name)
    if mapper is None or event.actor_id is None:
        return None
    user = db.session.get(User, event.actor_id)
    if user is None:
        return None
    return mapper(_Builder(event=event, base=platform_url.rstrip("/"), user=user))


def statement_json(statement: Statement) -> dict[str, Any]:
    """The statement as the JSON object stored in the outbox and sent to the LRS."""
    data: dict[str, Any] = statement.as_version(XAPI_VERSION)
    return data
