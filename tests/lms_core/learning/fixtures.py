"""Builders for courses with lessons, shared by the learning tests."""

from __future__ import annotations

from dataclasses import dataclass

from lms_core.accounts.models import Role, User
from lms_core.courses import services as courses
from lms_core.courses.models import Course, Lesson, LessonKind
from lms_core.extensions import db
from lms_core.media.models import MediaFile, MediaKind
from lms_core.quizzes import services as quizzes
from lms_core.quizzes.models import QuestionKind
from tests.factories import UserFactory, grant


@dataclass
class CourseKit:
    author: User
    course: Course
    video: Lesson
    document: Lesson
    quiz: Lesson
    survey: Lesson
    media: MediaFile


def media_row(kind: MediaKind = MediaKind.VIDEO, duration_ms: int | None = 100_000, sha: str = "a") -> MediaFile:
    row = MediaFile(
        sha256=sha * 64,
        size_bytes=1000,
        mime_type="video/mp4" if kind == MediaKind.VIDEO else "application/pdf",
        kind=kind,
        duration_ms=duration_ms,
        original_name="x",
        storage_key=sha * 64,
    )
    db.session.add(row)
    db.session.flush()
    return row


def build_course(tree, *, code: str = "C001", publish: bool = True) -> CourseKit:
    author = UserFactory(org_unit=tree.city, full_name="党校讲师")
    grant(author, Role.INSTRUCTOR, tree.city)
    course = courses.create_course(
        author,
        code=code,
        title="习近平新时代中国特色社会主义思想专题",
        topic="理论学习",
        nominal_hours_centi=200,
        required=True,
    )
    section = courses.add_section(author, course, "第一讲")
    video_media = media_row(MediaKind.VIDEO, 100_000, sha=code[-1].lower() if code[-1].isalpha() else "b")
    doc_media = media_row(MediaKind.DOCUMENT, None, sha="d" if code == "C001" else "e")
    video = courses.add_lesson(author, section, title="视频课", kind=LessonKind.VIDEO, media=video_media)
    document = courses.add_lesson(
        author, section, title="阅读材料", kind=LessonKind.DOCUMENT, media=doc_media, min_read_seconds=30
    )
    quiz = courses.add_lesson(
        author, section, title="随堂测验", kind=LessonKind.QUIZ, passing_score_pct=60, max_attempts=2
    )
    quizzes.add_question(author, quiz, kind=QuestionKind.SINGLE, text="1+1=?", options=["1", "2", "3"], correct=[1])
    quizzes.add_question(
        author, quiz, kind=QuestionKind.MULTIPLE, text="选出偶数", options=["2", "3", "4"], correct=[0, 2]
    )
    quizzes.add_question(author, quiz, kind=QuestionKind.TRUE_FALSE, text="地球是圆的", options=[], correct=[0])
    survey = courses.add_lesson(author, section, title="学情评估", kind=LessonKind.SURVEY, required=False)
    if publish:
        courses.set_published(author, course, True)
    db.session.commit()
    return CourseKit(author, course, video, document, quiz, survey, video_media)
