"""The lesson player and its JSON heartbeat endpoint."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from lms_core import jsonsafe
from lms_core.courses.models import Lesson, LessonKind
from lms_core.courses.services import can_edit, lessons_of
from lms_core.extensions import db
from lms_core.jobs.services import commit
from lms_core.learning import beat_front, feedback, services
from lms_core.learning.models import LessonFeedback
from lms_core.pluginhost.manager import get_plugin_manager
from lms_core.quizzes import services as quizzes
from lms_core.quizzes.models import Attempt
from lms_core.unit_of_work import json_call, service_call

bp = Blueprint("learning", __name__, url_prefix="/learn")


def _lesson_and_enrolment(lesson_id: int) -> tuple[Lesson, Any]:
    lesson = db.session.get(Lesson, lesson_id)
    if (
        lesson is None
        or (not lesson.course.published and not can_edit(current_user, lesson.course))
        or lesson.archived_at is not None
    ):  # archived: its records stay, the lesson is no longer taught
        abort(404)
    enrolment = services.enrolment_for(current_user, lesson.course_id)
    return lesson, enrolment


def _media_url(lesson: Lesson, session_key: str) -> str | None:
    if lesson.media is None:
        return None
    from lms_core.media.services import signed_url

    return str(signed_url(lesson.media, current_user, session_key))


@bp.route("/lessons/<int:lesson_id>")
@login_required
def lesson(lesson_id: int) -> Any:
    lesson, enrolment = _lesson_and_enrolment(lesson_id)
    if enrolment is None:
        flash(_("Please enrol in the course first."), "warning")
        return redirect(url_for("courses.detail", course_id=lesson.course_id))
    progress = services.progress_for(current_user.id, lesson)
    session = services.start_session(
        current_user, lesson, enrolment, ip=request.remote_addr, user_agent=request.headers.get("User-Agent")
    )
    context: dict[str, Any] = {
        "lesson": lesson,
        "course": lesson.course,
        "enrolment": enrolment,
        "progress": progress,
        "session": session,
    }
    if lesson.kind in (LessonKind.VIDEO, LessonKind.DOCUMENT):
        context["media_url"] = _media_url(lesson, session.id)
    elif lesson.kind == LessonKind.QUIZ:
        attempts = quizzes.attempts_of(current_user, lesson)
        context.update(attempts=attempts, attempts_left=quizzes.attempts_left(lesson, attempts))
        submitted = [a for a in attempts if a.submitted_at is not None]
        context["review"] = quizzes.review(lesson, submitted[-1]) if submitted else []
        passed = any(a.passed for a in attempts)
        if not passed and context["attempts_left"] != 0:
            attempt = quizzes.open_attempt(current_user, lesson, enrolment) if quizzes.questions(lesson) else None
            by_id = {q.id: q for q in quizzes.questions(lesson, archived=True)}  # the attempt's own questions
            context.update(
                attempt=attempt, questions=[by_id[i] for i in (attempt.question_order if attempt else []) if i in by_id]
            )
    elif lesson.kind == LessonKind.SURVEY:
        from lms_core.learning.survey import questions as survey_questions

        mine = db.session.query(LessonFeedback).filter_by(user_id=current_user.id, lesson_id=lesson.id).one_or_none()
        context.update(
            mine=mine,
            survey_questions=survey_questions(lesson),
            answers={a.question_id: a for a in mine.answers} if mine else {},
        )
    lessons = lessons_of(lesson.course)
    index = next(i for i, item in enumerate(lessons) if item.id == lesson.id)
    context.update(
        previous=lessons[index - 1] if index > 0 else None,
        next=lessons[index + 1] if index + 1 < len(lessons) else None,
    )
    commit()
    return render_template(f"learn/{lesson.kind.value}.html", **context)


@bp.route("/sessions/<session_id>/beat", methods=["POST"])
@login_required
def beat(session_id: str) -> Any:
    """Heartbeat from the player (JSON; CSRF token in the ``X-CSRFToken`` header).

    The reference path: ``beat_front`` answers the ordinary beats before Flask with the
    same bytes, and passes everything else (errors, refusals, first requests) here.
    """
    body = request.get_data()
    payload = None
    if request.is_json:
        try:
            payload = jsonsafe.loads(body)
        except jsonsafe.JSONRefused as exc:  # NaN, 1e400, deep nesting: 400, nothing stored
            return jsonify({"error": f"heartbeat: {exc}"}), 400
    get_plugin_manager().hook.lms_beat_received(session_id=session_id, body=body)
    with json_call(errors=(services.BeatError,)):
        result = services.record_beat(session_id, current_user, payload)
    if result.refused == "late":  # committed: the refused beat is kept as evidence
        message = _(
            "This progress report was made more than %(hours)s hours ago and can no longer be counted.",
            hours=current_app.config["LMS_BEAT_LATE_WINDOW_HOURS"],
        )
        return jsonify({"error": message, "status": 422, "refused": result.refused}), 422
    return jsonify(beat_front.answer(result))


@bp.route("/lessons/<int:lesson_id>/quiz/<int:attempt_id>", methods=["POST"])
@login_required
def submit_quiz(lesson_id: int, attempt_id: int) -> Any:
    lesson, enrolment = _lesson_and_enrolment(lesson_id)
    attempt = db.session.get(Attempt, attempt_id)
    if enrolment is None or attempt is None or attempt.lesson_id != lesson.id or attempt.user_id != current_user.id:
        abort(404)
    answers = {key[2:]: request.form.getlist(key) for key in request.form if key.startswith("q_")}
    back = url_for("learning.lesson", lesson_id=lesson.id)
    with service_call(lambda: redirect(back, 303), message="%(reason)s"):
        graded = quizzes.submit(current_user, attempt, answers)
    a = graded.attempt
    if a.passed:
        flash(_("Passed: %(raw)d of %(max)d points.", raw=a.score_raw, max=a.score_max), "success")
    else:
        flash(
            _(
                "Not passed: %(raw)d of %(max)d points (%(pct)d%% needed).",
                raw=a.score_raw,
                max=a.score_max,
                pct=lesson.passing_score_pct,
            ),
            "error",
        )
    return redirect(url_for("learning.lesson", lesson_id=lesson.id))


@bp.route("/lessons/<int:lesson_id>/feedback", methods=["POST"])
@login_required
def submit_feedback(lesson_id: int) -> Any:
    lesson, enrolment = _lesson_and_enrolment(lesson_id)
    if enrolment is None:
        abort(403)
    if lesson.kind != LessonKind.SURVEY:
        abort(404)
    form = {key: request.form.getlist(key) for key in request.form if key.startswith("q")}
    back = url_for("learning.lesson", lesson_id=lesson.id)
    with service_call(lambda: redirect(back, 303), message="%(reason)s"):
        done = feedback.submit_answers(current_user, lesson, enrolment, form)
    if done.created:
        flash(_("Thank you for your feedback."), "success")
    elif not done.changes:
        flash(_("Your answer is unchanged."), "info")
    else:
        changed = "；".join(
            _("%(question)s: %(old)s → %(new)s", question=q, old=old or _("(no answer)"), new=new or _("(no answer)"))
            for q, old, new in done.changes
        )
        flash(_("Your earlier answer was changed: %(changes)s", changes=changed), "success")
    return redirect(url_for("learning.lesson", lesson_id=lesson.id))
