"""Full lesson editing: file, section and each kind's rules; learners' records are kept."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from lms_core.courses import services as courses
from lms_core.courses import structure
from lms_core.courses.models import Lesson
from lms_core.courses.services import CourseError
from lms_core.enrolments import services as enrolments
from lms_core.events.models import Event
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.learning import services as learning
from lms_core.learning.models import LessonProgress, ProgressStatus
from lms_core.media.models import MediaKind
from tests.conftest import login
from tests.factories import UserFactory
from tests.lms_core.learning.fixtures import build_course, media_row


@pytest.fixture
def teacher(app, tree, client):
    kit = build_course(tree)
    kit.author.username = "teacher"
    replacement = media_row(MediaKind.VIDEO, 240_000, sha="9")
    replacement.uploaded_by_id = kit.author.id
    replacement.original_name = "新版讲座.mp4"
    emit("media.uploaded", actor=kit.author, obj=replacement)  # the author's own upload, in their 资源库
    db.session.commit()
    login(client, "teacher")
    return kit, client, replacement


def _fresh(lesson_id: int) -> Lesson:
    db.session.expire_all()
    return db.session.get(Lesson, lesson_id)


def _progress_for(kit, tree, username: str, *, completed: bool) -> LessonProgress:
    user = UserFactory(username=username, org_unit=tree.village_a)
    enrolments.enrol(user, kit.course)
    progress = learning.progress_for(user.id, kit.video)
    progress.credited_segments, progress.coverage_bp, progress.position_ms = [[0, 40_000]], 4000, 40_000
    if completed:
        progress.status = ProgressStatus.COMPLETED
    else:
        progress.status = ProgressStatus.IN_PROGRESS
    db.session.commit()
    return progress


def test_replacing_a_videos_file_warns_and_keeps_the_records(teacher, tree):
    kit, client, replacement = teacher
    done = _progress_for(kit, tree, "done", completed=True)
    midway = _progress_for(kit, tree, "midway", completed=False)
    page = client.get(f"/teach/lessons/{kit.video.id}/edit").get_data(as_text=True)
    assert 'id="records-warning"' in page and "2 名学员" in page and "已完成的学员保持完成" in page
    assert "新版讲座.mp4" in page and "时长取自文件本身" in page
    r = client.post(
        f"/teach/lessons/{kit.video.id}/edit",
        data={
            "full": "1",
            "title": "视频课（新版）",
            "required": "y",
            "section": str(kit.video.section_id),
            "library_media": str(replacement.id),
            "completion_threshold_pct": "90",
        },
        follow_redirects=True,
    )
    html = r.get_data(as_text=True)
    assert "已保存。本课时 2 名学员的记录保持不变" in html
    lesson = _fresh(kit.video.id)
    assert (lesson.title, lesson.media_id, lesson.completion_threshold_pct) == ("视频课（新版）", replacement.id, 90)
    assert lesson.media.duration_ms == 240_000  # the duration is the file's own
    rows = {p.id: p for p in db.session.execute(select(LessonProgress)).scalars()}
    assert rows[done.id].status == ProgressStatus.COMPLETED
    assert (rows[midway.id].status, rows[midway.id].credited_segments) == (ProgressStatus.IN_PROGRESS, [[0, 40_000]])
    event = (
        db.session.execute(select(Event).where(Event.name == "lesson.updated").order_by(Event.id.desc()))
        .scalars()
        .first()
    )
    assert set(event.payload["changed"]) == {"title", "media", "completion_threshold_pct"}
    assert event.payload["learners_with_records"] == 2


def test_a_document_takes_a_new_pdf_and_reading_time(teacher, tmp_path):
    from lms_core.demo.media import DOCUMENTS, make_pdf

    kit, client, _replacement = teacher
    pdf = make_pdf(tmp_path / "新材料.pdf", DOCUMENTS[1])
    r = client.post(
        f"/teach/lessons/{kit.document.id}/edit",
        data={
            "full": "1",
            "title": "阅读材料",
            "required": "y",
            "section": str(kit.document.section_id),
            "min_read_seconds": "120",
            "file": (io.BytesIO(pdf.read_bytes()), "新材料.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 303
    lesson = _fresh(kit.document.id)
    assert lesson.min_read_seconds == 120 and lesson.media.original_name == "新材料.pdf" and lesson.media.page_count
    # A video file for a document lesson: refused, in the lesson's words, nothing changed.
    r = client.post(
        f"/teach/lessons/{kit.document.id}/edit",
        data={
            "full": "1",
            "title": "阅读材料",
            "section": str(kit.document.section_id),
            "library_media": str(kit.media.id),
        },
        follow_redirects=True,
    )
    assert "文档课时须选 PDF" in r.get_data(as_text=True)
    assert _fresh(kit.document.id).media.original_name == "新材料.pdf"


def test_quiz_settings_and_rules_of_other_kinds(teacher):
    kit, client, _replacement = teacher
    client.post(
        f"/teach/lessons/{kit.quiz.id}/edit",
        data={
            "full": "1",
            "title": "随堂测验",
            "required": "y",
            "section": str(kit.quiz.section_id),
            "passing_score_pct": "80",
            "max_attempts": "0",
            "show_correct_answers": "y",
        },
    )
    quiz = _fresh(kit.quiz.id)
    assert (quiz.passing_score_pct, quiz.max_attempts, quiz.show_correct_answers) == (80, 0, True)
    # The short form on the course page (title and flag only) leaves the rules alone.
    client.post(f"/teach/lessons/{kit.quiz.id}/edit", data={"title": "随堂小测", "required": "y"})
    quiz = _fresh(kit.quiz.id)
    assert (quiz.title, quiz.passing_score_pct, quiz.show_correct_answers) == ("随堂小测", 80, True)
    # Out of range: 400, in Chinese, nothing changed.
    r = client.post(
        f"/teach/lessons/{kit.quiz.id}/edit",
        data={"full": "1", "title": "随堂小测", "section": str(kit.quiz.section_id), "passing_score_pct": "101"},
    )
    assert r.status_code == 400 and "未保存" in r.get_data(as_text=True)
    assert _fresh(kit.quiz.id).passing_score_pct == 80
    with pytest.raises(CourseError):
        structure.update_lesson(kit.author, kit.video, title="视频课", required=True, passing_score_pct=10)
    with pytest.raises(CourseError):
        structure.update_lesson(kit.author, kit.video, title="视频课", required=True, media=kit.document.media)


def test_moving_a_lesson_to_another_section(teacher, tree):
    kit, client, _replacement = teacher
    second = courses.add_section(kit.author, kit.course, "第二讲")
    db.session.commit()
    client.post(
        f"/teach/lessons/{kit.document.id}/edit",
        data={"full": "1", "title": "阅读材料", "required": "y", "section": str(second.id)},
    )
    lesson = _fresh(kit.document.id)
    assert lesson.section_id == second.id and lesson.position == 1
    other = build_course(tree, code="C00F")
    with pytest.raises(CourseError):
        structure.update_lesson(kit.author, lesson, title="阅读材料", required=True, section=other.course.sections[0])


def test_learners_cannot_open_the_edit_page(app, teacher, tree):
    kit, _client, _replacement = teacher
    UserFactory(username="liming", org_unit=tree.village_a)
    db.session.commit()
    learner = app.test_client()
    login(learner, "liming")
    assert learner.get(f"/teach/lessons/{kit.video.id}/edit").status_code == 403
