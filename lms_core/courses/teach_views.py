"""Instructors' authoring pages: courses, sections, lessons with uploads, questions, feedback."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select

from lms_core.authz import AccessDenied, can
from lms_core.courses import services, structure
from lms_core.courses.forms import (
    CourseForm,
    LessonEditForm,
    LessonForm,
    QuestionForm,
    QuizSettingsForm,
    SectionForm,
    SurveyQuestionForm,
)
from lms_core.courses.models import Course, CourseInstructor, Lesson, LessonKind, Section
from lms_core.extensions import csrf, db
from lms_core.learning import survey
from lms_core.learning.models import SurveyQuestion, SurveyQuestionKind
from lms_core.quizzes import services as quizzes
from lms_core.quizzes.models import QuestionKind
from lms_core.unit_of_work import service_call

#: The flash for a refused change of the outline or of a question's place.
NOT_CHANGED = _l("Not changed: %(reason)s")

bp = Blueprint("courses_teach", __name__, url_prefix="/teach")


@bp.before_request
@login_required
def _authors_only() -> None:
    if not can(current_user, "course.author"):
        abort(403)


def _course_or_404(course_id: int) -> Course:
    course = db.session.get(Course, course_id)
    if course is None:
        abort(404)
    if not services.can_edit(current_user, course):
        abort(403)
    return course


@bp.route("/")
def index() -> Any:
    mine = (
        db.session.execute(
            select(Course)
            .join(CourseInstructor)
            .where(CourseInstructor.user_id == current_user.id)
            .order_by(Course.id.desc())
        )
        .scalars()
        .all()
    )
    return render_template("teach/index.html", courses=mine, form=CourseForm())


@bp.route("/courses", methods=["POST"])
def create_course() -> Any:
    form = CourseForm()

    def page() -> Any:
        mine = (
            db.session.execute(select(Course).join(CourseInstructor).where(CourseInstructor.user_id == current_user.id))
            .scalars()
            .all()
        )
        return render_template("teach/index.html", courses=mine, form=form)

    if not form.validate_on_submit():
        flash(_("Not saved: please check the form."), "error")
        return page(), 400
    with service_call(page, errors=(AccessDenied,)):
        course = services.create_course(
            current_user,
            code=form.code.data or "",
            title=form.title.data or "",
            description=form.description.data or "",
            topic=form.topic.data or "",
            nominal_hours_centi=int((form.hours.data or 0) * 100),
            required=bool(form.required.data),
        )
    return redirect(url_for("courses_teach.course", course_id=course.id))


@bp.route("/courses/<int:course_id>", methods=["GET", "POST"])
def course(course_id: int) -> Any:
    course = _course_or_404(course_id)
    # Every field given by value: with obj=course WTForms would take course.topic (the
    # Topic object, shown as its repr) over the topic= name, and 保存 would re-file the
    # course under a topic literally named "<Topic id=N>".
    form = CourseForm(
        code=course.code,
        title=course.title,
        description=course.description,
        topic=course.topic.name if course.topic else "",
        hours=course.nominal_hours,
        required=course.required,
    )
    if request.method == "POST":
        if not form.validate_on_submit():
            return _course_page(course, form), 400
        with service_call(lambda: _course_page(db.session.get(Course, course_id) or abort(404), form)):
            services.update_course(
                current_user,
                course,
                title=form.title.data,
                description=form.description.data,
                topic=form.topic.data,
                required=bool(form.required.data),
                nominal_hours_centi=int((form.hours.data or 0) * 100),
            )
        flash(_("Saved."), "success")
        return redirect(url_for("courses_teach.course", course_id=course.id))
    return _course_page(course, form)


def _course_page(course: Course, form: CourseForm) -> str:
    from lms_core.media.models import MediaKind
    from lms_core.media.services import library

    # The 资源库 files this author may use (own uploads, files of courses they may edit).
    usable = [m for m in library(current_user) if m.kind in (MediaKind.VIDEO, MediaKind.DOCUMENT)]
    return render_template(
        "teach/course.html",
        course=course,
        form=form,
        section_form=SectionForm(),
        lesson_form=LessonForm(),
        problems=services.publish_problems(course),
        library=usable,
        records=structure.records_by_lesson(course.id),
    )


@bp.route("/courses/<int:course_id>/publish", methods=["POST"])
def publish(course_id: int) -> Any:
    course = _course_or_404(course_id)
    publish = request.form.get("published") == "1"
    back = url_for("courses_teach.course", course_id=course.id)
    with service_call(lambda: redirect(back), message=_l("Cannot publish: %(reason)s")):
        services.set_published(current_user, course, publish)
    # Say what happened: "saved" after 发布 left authors unsure whether learners see the course.
    if publish:
        flash(_("Published: learners now find %(title)s in the catalogue.", title=course.title), "success")
    else:
        flash(
            _(
                "Unpublished: %(title)s is hidden from the catalogue again; enrolled learners keep their records.",
                title=course.title,
            ),
            "success",
        )
    return redirect(back)


@bp.route("/courses/<int:course_id>/sections", methods=["POST"])
def add_section(course_id: int) -> Any:
    course = _course_or_404(course_id)
    form = SectionForm()
    back = url_for("courses_teach.course", course_id=course.id)
    if form.validate_on_submit():
        with service_call(lambda: redirect(back, 303)):
            services.add_section(current_user, course, form.title.data or "")
    else:
        flash(_("Not saved: please check the form."), "error")
    return redirect(back)


def _upload_refusals() -> dict[str, Any]:
    """``service_call`` arguments for a change that may carry an upload: a rejected file is told as such."""
    from lms_core.media.validation import UploadRejected

    return {"errors": (UploadRejected,), "reason": _refusal_reason}


def _refusal_reason(exc: Exception) -> str:
    from lms_core.media.validation import UploadRejected

    if isinstance(exc, UploadRejected):
        return _("Upload rejected: %(reason)s", reason=exc.message)
    return _("Not saved: %(reason)s", reason=str(exc))


def _change_refusal(exc: Exception) -> str:
    """An edit's refusal: a rejected upload, or "Not changed: …"."""
    from lms_core.media.validation import UploadRejected

    if isinstance(exc, UploadRejected):
        return _refusal_reason(exc)
    return str(NOT_CHANGED) % {"reason": str(exc)}


def _media_from_request(kind: LessonKind, upload: Any, *, required: bool) -> tuple[Any, bool]:
    """The file for a video or document lesson: a fresh upload, or one from the 资源库.

    Returns ``(media, refused)``; a refusal has been flashed already. The caller runs
    this inside its ``service_call``, which rolls a rejected upload back. With
    ``required`` False (an edit), no file means keep the old one.
    """
    if kind not in services.MEDIA_FOR_KIND:
        return None, False
    chosen = request.form.get("library_media", "")
    if (not upload or not upload.filename) and chosen:
        # A file from the 资源库 instead of a fresh upload: only one this author may use.
        from lms_core.media.services import visible_to

        media = visible_to(current_user, int(chosen)) if chosen.isdigit() and len(chosen) < 12 else None
        if media is None:
            flash(_("Not saved: that file is not in your library."), "error")
            return None, True
        if media.kind != services.MEDIA_FOR_KIND[kind]:
            flash(_("Not saved: a video lesson needs a video and a document lesson a PDF."), "error")
            return None, True
        return media, False
    if not upload or not upload.filename:
        if required:
            flash(_("Not saved: a video or document lesson needs a file."), "error")
            return None, True
        return None, False
    from lms_core.media.services import store_upload

    # UploadRejected propagates to the caller's service_call (UPLOAD_REJECTED).
    return store_upload(upload.stream, upload.filename, current_user), False


@bp.route("/sections/<int:section_id>/lessons", methods=["POST"])
@csrf.exempt  # the global hook would parse a 2 GB body under the 64 MiB limit; LessonForm checks CSRF itself
def add_lesson(section_id: int) -> Any:
    from lms_core.media.views import allow_large_upload

    allow_large_upload()
    section = db.session.get(Section, section_id)
    if section is None:
        abort(404)
    course = _course_or_404(section.course_id)
    form = LessonForm()
    if not form.validate_on_submit():
        flash(_("Not saved: please check the form."), "error")
        return redirect(url_for("courses_teach.course", course_id=course.id)), 303
    kind = LessonKind(form.kind.data)
    back = url_for("courses_teach.course", course_id=course.id)
    with service_call(lambda: redirect(back, 303), message="%(reason)s", **_upload_refusals()):
        media, refused = _media_from_request(kind, form.file.data, required=True)
        if refused:
            return redirect(back, 303)
        services.add_lesson(
            current_user,
            section,
            title=form.title.data or "",
            kind=kind,
            media=media,
            required=bool(form.required.data),
            completion_threshold_pct=form.completion_threshold_pct.data,
            min_read_seconds=form.min_read_seconds.data,
            passing_score_pct=form.passing_score_pct.data,
            max_attempts=form.max_attempts.data,
            show_correct_answers=bool(form.show_correct_answers.data),
        )
    flash(_("Lesson added."), "success")
    return redirect(back)


@bp.route("/lessons/<int:lesson_id>/questions", methods=["GET", "POST"])
def questions(lesson_id: int) -> Any:
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None or lesson.kind != LessonKind.QUIZ:
        abort(404)
    _course_or_404(lesson.course_id)
    form = QuestionForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            return _questions_page(lesson, form), 400
        with service_call(lambda: _questions_page(_reloaded(lesson), form)):
            quizzes.add_question(current_user, lesson, **_quiz_fields(form))
        flash(_("Question added."), "success")
        return redirect(url_for("courses_teach.questions", lesson_id=lesson.id))
    return _questions_page(lesson, form)


def _reloaded(lesson: Lesson) -> Lesson:
    """The lesson again after a rollback expired it (a deleted one: 404)."""
    return db.session.get(Lesson, lesson.id) or abort(404)


def _quiz_fields(form: QuestionForm) -> dict[str, Any]:
    """The question as typed; an answer number that is not a number is refused in Chinese."""
    correct: list[int] = []
    for part in (form.correct.data or "").replace("，", ",").split(","):
        if part.strip():
            if not part.strip().isdigit() or len(part.strip()) > 3:
                raise services.CourseError(_("the correct answers must be option numbers, e.g. 1,3"))
            correct.append(int(part) - 1)
    return {
        "kind": QuestionKind(form.kind.data),
        "text": form.text.data or "",
        "options": (form.options.data or "").splitlines(),
        "correct": correct,
        "points": form.points.data or 1,
    }


def _questions_page(lesson: Lesson, form: QuestionForm) -> str:
    return render_template(
        "teach/questions.html",
        lesson=lesson,
        questions=quizzes.questions(lesson),
        archived=[q for q in quizzes.questions(lesson, archived=True) if q.archived_at is not None],
        edit_forms={q.id: _quiz_edit_form(q) for q in quizzes.questions(lesson)},
        form=form,
        settings_form=QuizSettingsForm(formdata=None, obj=lesson),
    )


def _quiz_question_or_404(question_id: int) -> tuple[Any, Lesson]:
    from lms_core.quizzes.models import Question

    question = db.session.get(Question, question_id)
    if question is None:
        abort(404)
    lesson = db.session.get(Lesson, question.lesson_id)
    if lesson is None:
        abort(404)
    _course_or_404(lesson.course_id)
    return question, lesson


@bp.route("/quiz-questions/<int:question_id>/edit", methods=["POST"])
def edit_quiz_question(question_id: int) -> Any:
    question, lesson = _quiz_question_or_404(question_id)
    # The app-wide CSRFProtect checks ``csrf_token``; the prefixed form would look for ``qN-csrf_token``.
    form = QuestionForm(prefix=f"q{question.id}", meta={"csrf": False})
    back = redirect(url_for("courses_teach.questions", lesson_id=lesson.id, _anchor=f"question-{question.id}"), 303)
    if not form.validate_on_submit():
        flash(_("Not saved: please check the form."), "error")
        return back
    with service_call(lambda: back):
        quizzes.update_question(current_user, question, **_quiz_fields(form))
    flash(_("Saved."), "success")
    return back


@bp.route("/quiz-questions/<int:question_id>/move", methods=["POST"])
def move_quiz_question(question_id: int) -> Any:
    question, lesson = _quiz_question_or_404(question_id)
    return _move_question(quizzes.move_question, question, url_for("courses_teach.questions", lesson_id=lesson.id))


@bp.route("/quiz-questions/<int:question_id>/delete", methods=["POST"])
def delete_quiz_question(question_id: int) -> Any:
    question, lesson = _quiz_question_or_404(question_id)
    return _delete_question(
        quizzes.delete_question,
        question,
        url_for("courses_teach.questions", lesson_id=lesson.id),
        _l("Archived, not deleted: %(text)s was in learners' attempts, which keep it."),
    )


# One place for what quiz and survey questions share: moving one place and deleting.


def _move_question(move: Any, question: Any, back: str) -> Any:
    step = _step()
    with service_call(lambda: redirect(back, 303), message=NOT_CHANGED):
        move(current_user, question, step)
    return redirect(back, 303)


def _delete_question(delete: Any, question: Any, back: str, archived_note: Any) -> Any:
    """Delete, or archive when learners' records name the question; say which happened."""
    text = question.text
    with service_call(lambda: redirect(back, 303), message=NOT_CHANGED):
        archived = delete(current_user, question)
    flash(str(archived_note) % {"text": text} if archived else _("Question deleted."), "success")
    return redirect(back, 303)


def _quiz_edit_form(question: Any) -> QuestionForm:
    return QuestionForm(
        formdata=None,
        prefix=f"q{question.id}",
        meta={"csrf": False},
        kind=question.kind.value,
        text=question.text,
        options="\n".join(question.options) if question.kind != QuestionKind.TRUE_FALSE else "",
        correct=",".join(str(i + 1) for i in question.correct),
        points=question.points,
    )


@bp.route("/lessons/<int:lesson_id>/quiz-settings", methods=["POST"])
def quiz_settings(lesson_id: int) -> Any:
    """Whether learners see the right answers after an attempt (which of theirs were wrong, they always see)."""
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None or lesson.kind != LessonKind.QUIZ:
        abort(404)
    _course_or_404(lesson.course_id)
    form = QuizSettingsForm()
    if not form.validate_on_submit():
        abort(400)
    back = url_for("courses_teach.questions", lesson_id=lesson.id)
    with service_call(lambda: redirect(back, 303)):
        services.set_quiz_settings(current_user, lesson, show_correct_answers=bool(form.show_correct_answers.data))
    flash(_("Saved."), "success")
    return redirect(back)


@bp.route("/courses/<int:course_id>/feedback")
def course_feedback(course_id: int) -> Any:
    """The report moved to ``/feedback/``, where org admins read it too."""
    _course_or_404(course_id)
    return redirect(url_for("learning_feedback.course", course_id=course_id, fmt="html"))


# Survey questions ----------------------------------------------------------------------


def _survey_or_404(lesson_id: int) -> Lesson:
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None or lesson.kind != LessonKind.SURVEY:
        abort(404)
    _course_or_404(lesson.course_id)
    return lesson


def _question_or_404(question_id: int) -> tuple[SurveyQuestion, Lesson]:
    question = db.session.get(SurveyQuestion, question_id)
    if question is None:
        abort(404)
    return question, _survey_or_404(question.lesson_id)


def _question_fields(form: SurveyQuestionForm) -> dict[str, Any]:
    return {
        "kind": SurveyQuestionKind(form.kind.data),
        "text": form.text.data or "",
        "options": survey.lines(form.options.data or ""),
        "scale": form.scale.data or 5,
        "required": bool(form.required.data),
    }


def _edit_form(question: SurveyQuestion) -> SurveyQuestionForm:
    return SurveyQuestionForm(
        formdata=None,
        prefix=f"q{question.id}",
        meta={"csrf": False},
        kind=question.kind.value,
        text=question.text,
        scale=question.scale,
        options="\n".join(question.options),
        required=question.required,
    )


@bp.route("/lessons/<int:lesson_id>/survey", methods=["GET", "POST"])
def survey_questions(lesson_id: int) -> Any:
    """The survey's questions: add, edit, reorder, delete (archive once answered)."""
    lesson = _survey_or_404(lesson_id)
    # The app-wide CSRFProtect checks these posts' ``csrf_token``; a prefixed form would look for ``new-csrf_token``.
    form = SurveyQuestionForm(prefix="new", meta={"csrf": False})
    if request.method == "POST":
        if not form.validate_on_submit():
            flash(_("Not saved: please check the form."), "error")
            return _survey_page(lesson, form), 400
        with service_call(lambda: _survey_page(_reloaded(lesson), form)):
            survey.save_question(current_user, lesson, None, **_question_fields(form))
        flash(_("Survey question added."), "success")
        return redirect(url_for("courses_teach.survey_questions", lesson_id=lesson.id))
    return _survey_page(lesson, form)


def _survey_page(lesson: Lesson, form: SurveyQuestionForm) -> str:
    items = survey.questions(lesson, archived=True)
    return render_template(
        "teach/survey.html",
        lesson=lesson,
        questions=items,
        answered={q.id for q in items if survey.has_answers(q)},
        edit_forms={q.id: _edit_form(q) for q in items if q.archived_at is None},
        form=form,
    )


@bp.route("/survey-questions/<int:question_id>/edit", methods=["POST"])
def edit_survey_question(question_id: int) -> Any:
    question, lesson = _question_or_404(question_id)
    form = SurveyQuestionForm(prefix=f"q{question.id}", meta={"csrf": False})
    back = redirect(
        url_for("courses_teach.survey_questions", lesson_id=lesson.id, _anchor=f"question-{question.id}"), 303
    )
    if not form.validate_on_submit():
        flash(_("Not saved: please check the form."), "error")
        return back
    with service_call(lambda: back):
        survey.save_question(current_user, lesson, question, **_question_fields(form))
    flash(_("Saved."), "success")
    return back


@bp.route("/survey-questions/<int:question_id>/move", methods=["POST"])
def move_survey_question(question_id: int) -> Any:
    question, lesson = _question_or_404(question_id)
    return _move_question(
        survey.move_question, question, url_for("courses_teach.survey_questions", lesson_id=lesson.id)
    )


@bp.route("/survey-questions/<int:question_id>/delete", methods=["POST"])
def delete_survey_question(question_id: int) -> Any:
    question, lesson = _question_or_404(question_id)
    return _delete_question(
        survey.delete_question,
        question,
        url_for("courses_teach.survey_questions", lesson_id=lesson.id),
        _l("Archived, not deleted: %(text)s has answers, which stay in the report."),
    )


# Editing the outline: plain POST forms (no script), each redirecting back to the course page.


def _section_or_404(section_id: int) -> Section:
    section = db.session.get(Section, section_id)
    if section is None:
        abort(404)
    _course_or_404(section.course_id)
    return section


def _lesson_or_404(lesson_id: int) -> Lesson:
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None:
        abort(404)
    _course_or_404(lesson.course_id)
    return lesson


def _step() -> int:
    direction = request.form.get("direction")
    if direction not in ("up", "down"):
        abort(400, _("Choose up or down."))
    return -1 if direction == "up" else 1


def _outline_change(course_id: int, change: Any, done: str) -> Any:
    """Run ``change``; flash its refusal in Chinese or ``done``; back to the course page."""
    with service_call(lambda: redirect(url_for("courses_teach.course", course_id=course_id), 303), message=NOT_CHANGED):
        change()
    if done:
        flash(done, "success")
    return redirect(url_for("courses_teach.course", course_id=course_id), 303)


@bp.route("/sections/<int:section_id>/edit", methods=["POST"])
def edit_section(section_id: int) -> Any:
    section = _section_or_404(section_id)
    return _outline_change(
        section.course_id,
        lambda: structure.rename_section(current_user, section, request.form.get("title") or ""),
        _("Saved."),
    )


@bp.route("/sections/<int:section_id>/move", methods=["POST"])
def move_section(section_id: int) -> Any:
    section = _section_or_404(section_id)
    step = _step()
    return _outline_change(section.course_id, lambda: structure.move_section(current_user, section, step), "")


@bp.route("/sections/<int:section_id>/delete", methods=["POST"])
def delete_section(section_id: int) -> Any:
    section = _section_or_404(section_id)
    return _outline_change(
        section.course_id, lambda: structure.delete_section(current_user, section), _("Section deleted.")
    )


def _usable_library(kind: LessonKind) -> list[Any]:
    """The 资源库 files this author may use for a lesson of ``kind`` (own uploads, files of editable courses)."""
    from lms_core.media.services import library

    wanted = services.MEDIA_FOR_KIND.get(kind)
    return [m for m in library(current_user) if m.kind == wanted] if wanted else []


@bp.route("/lessons/<int:lesson_id>/edit", methods=["GET", "POST"])
@csrf.exempt  # a replacement video may be large: LessonEditForm checks CSRF itself, as LessonForm does
def edit_lesson(lesson_id: int) -> Any:
    """Everything about a lesson: title, optional flag, section, its file and its kind's rules.

    The course page's short form posts only the title and the optional flag; the
    full page (``full=1``) posts the rest. Fields not posted keep their values.
    """
    from lms_core.media.views import allow_large_upload

    allow_large_upload()
    lesson = _lesson_or_404(lesson_id)
    course = lesson.course
    form = LessonEditForm(
        title=lesson.title,
        required=lesson.required,
        section=lesson.section_id,
        completion_threshold_pct=lesson.completion_threshold_pct,
        min_read_seconds=lesson.min_read_seconds,
        passing_score_pct=lesson.passing_score_pct,
        max_attempts=lesson.max_attempts,
        show_correct_answers=lesson.show_correct_answers,
    )
    form.section.choices = [(s.id, s.title) for s in course.sections]
    status = 200
    if request.method == "POST":
        full = request.form.get("full") == "1"
        if not form.validate_on_submit():
            if not full:  # the course page's short form: only the title can be wrong
                flash(_("Not changed: %(reason)s", reason=_("lesson title is required")), "error")
                return redirect(url_for("courses_teach.course", course_id=course.id), 303)
            flash(_("Not saved: please check the form."), "error")
            status = 400
        else:
            back = (
                url_for("courses_teach.edit_lesson", lesson_id=lesson.id)
                if full
                else url_for("courses_teach.course", course_id=course.id)
            )
            rules: dict[str, Any] = {}
            if full:
                rules = {name: getattr(form, name).data for name in structure.KIND_RULES[lesson.kind]}
            section = next((s for s in course.sections if s.id == form.section.data), None) if full else None
            refusals = _upload_refusals()
            refusals["reason"] = _change_refusal
            with service_call(lambda: redirect(back, 303), message="%(reason)s", **refusals):
                media, refused = _media_from_request(lesson.kind, form.file.data, required=False)
                if refused:
                    return redirect(url_for("courses_teach.edit_lesson", lesson_id=lesson.id), 303)
                edit = structure.update_lesson(
                    current_user,
                    lesson,
                    title=form.title.data or "",
                    required=bool(form.required.data),
                    section=section,
                    media=media,
                    **rules,
                )
            if edit.content_changed and edit.learners:
                flash(
                    _(
                        "Saved. The records of the %(n)d learners on this lesson are kept: "
                        "who completed it stays completed; the others are judged by the new requirements from their "
                        "next step, and the viewing and reading already credited still count.",
                        n=edit.learners,
                    ),
                    "success",
                )
            else:
                flash(_("Saved."), "success")
            return redirect(url_for("courses_teach.course", course_id=course.id, _anchor=f"lesson-{lesson.id}"), 303)
    return render_template(
        "teach/lesson_edit.html",
        lesson=lesson,
        form=form,
        library=_usable_library(lesson.kind),
        learners=structure.learners_with_records(lesson),
        rules=structure.KIND_RULES[lesson.kind],
    ), status


@bp.route("/lessons/<int:lesson_id>/move", methods=["POST"])
def move_lesson(lesson_id: int) -> Any:
    lesson = _lesson_or_404(lesson_id)
    step = _step()
    return _outline_change(lesson.course_id, lambda: structure.move_lesson(current_user, lesson, step), "")


@bp.route("/lessons/<int:lesson_id>/delete", methods=["POST"])
def delete_lesson(lesson_id: int) -> Any:
    lesson = _lesson_or_404(lesson_id)
    course_id, title = lesson.course_id, lesson.title
    if request.form.get("confirmed") != "1":
        return render_template(
            "teach/confirm_delete.html", lesson=lesson, archive=structure.has_learner_records(lesson)
        )
    archived = []
    response = _outline_change(course_id, lambda: archived.append(structure.delete_lesson(current_user, lesson)), "")
    if archived:
        flash(
            _("%(title)s was archived, not deleted: learners have records on it, which stay.", title=title)
            if archived[0]
            else _("%(title)s was deleted.", title=title),
            "success",
        )
    return response
