"""Demo courses with real, locally generated media (nothing downloaded).

Idempotent: courses are keyed by code; media are content-addressed, so running
the demo twice stores each file once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import select

from lms_core.accounts.models import User
from lms_core.courses import services as courses
from lms_core.courses.models import Course, LessonKind
from lms_core.db import utcnow
from lms_core.enrolments import services as enrolments
from lms_core.extensions import db
from lms_core.media.models import MediaFile
from lms_core.orgs.models import OrgUnit
from lms_core.quizzes import services as quizzes
from lms_core.quizzes.models import QuestionKind

Q = QuestionKind
#: (code, title, topic, hours×100, required, description, lessons)
#: lesson: (kind, title, file or None, questions)
COURSES: list[tuple[str, str, str, int, bool, str, list[tuple[LessonKind, str, str | None, list[Any]]]]] = [
    (
        "JC-2026-01",
        "基层治理能力提升专题",
        "基层治理",
        200,
        True,
        "围绕网格化管理、矛盾纠纷化解和为民服务，提升基层干部治理能力。",
        [
            (LessonKind.VIDEO, "专题讲座：基层治理能力提升", "lecture-01-grassroots-governance.mp4", []),
            (LessonKind.DOCUMENT, "学习材料：基层治理工作手册", "handbook-grassroots-governance.pdf", []),
            (
                LessonKind.QUIZ,
                "随堂测验",
                None,
                [
                    (
                        Q.SINGLE,
                        "新时代“枫桥经验”强调的是？",
                        ["矛盾上交", "小事不出村、大事不出镇", "一律诉讼解决"],
                        [1],
                    ),
                    (
                        Q.MULTIPLE,
                        "网格员的职责包括哪些？",
                        ["情况清", "底数明", "服务到位", "代替村委会决策"],
                        [0, 1, 2],
                    ),
                    (Q.TRUE_FALSE, "基层治理是国家治理的基石。", [], [0]),
                ],
            ),
            (LessonKind.SURVEY, "训中学情快速评估", None, []),
        ],
    ),
    (
        "FZ-2026-02",
        "法治政府建设",
        "法治建设",
        150,
        True,
        "依法行政、规范执法和行政复议的基本要求。",
        [
            (LessonKind.VIDEO, "专题讲座：法治政府建设", "lecture-02-rule-of-law.mp4", []),
            (
                LessonKind.QUIZ,
                "课后测验",
                None,
                [
                    (Q.SINGLE, "行政机关实施行政管理应当遵循？", ["依法行政", "长官意志", "先办后批"], [0]),
                    (Q.TRUE_FALSE, "法无授权不可为是对行政机关的要求。", [], [0]),
                ],
            ),
        ],
    ),
    (
        "SZ-2026-03",
        "数字政府与政务服务",
        "数字政府",
        100,
        False,
        "一网通办、数据共享与政务服务效能提升。",
        [
            (LessonKind.VIDEO, "专题讲座：数字政府与政务服务", "lecture-03-digital-government.mp4", []),
            (LessonKind.DOCUMENT, "学习读本：廉洁从政", "reader-integrity-in-office.pdf", []),
        ],
    ),
    (
        "XC-2026-04",
        "乡村振兴实践案例",
        "乡村振兴",
        100,
        False,
        "产业、人才、文化、生态、组织振兴的典型案例。",
        [
            (LessonKind.VIDEO, "案例讲座：乡村振兴实践", "lecture-04-rural-revitalisation.webm", []),
            (
                LessonKind.QUIZ,
                "案例测验",
                None,
                [
                    (
                        Q.MULTIPLE,
                        "乡村振兴包括哪些方面？",
                        ["产业振兴", "人才振兴", "文化振兴", "生态振兴"],
                        [0, 1, 2, 3],
                    )
                ],
            ),
            (LessonKind.SURVEY, "训中学情快速评估", None, []),
        ],
    ),
]


def _media(path: Path, uploader: User) -> MediaFile:
    from lms_core.media.services import store_upload

    with path.open("rb") as fh:
        return store_upload(fh, path.name, uploader)


def load_demo_courses(echo: Callable[[str], object] = print) -> int:
    """Create the demo courses (publishing them) and one assignment; returns how many were new."""
    from lms_core.demo.media import generate_demo_media

    teacher = db.session.execute(select(User).filter_by(username="teacher")).scalar_one()
    admin = db.session.execute(select(User).filter_by(username="admin")).scalar_one()
    media_dir = Path(current_app.instance_path) / "demo-media"
    echo("generating demo media (first run only) ...")
    files = {p.name: p for p in generate_demo_media(media_dir)}
    created = 0
    for index, (code, title, topic, hours, required, description, lessons) in enumerate(COURSES, start=1):
        if db.session.execute(select(Course.id).filter_by(code=code)).first():
            continue
        echo(f"  course {index}/{len(COURSES)}: {title}")
        course = courses.create_course(
            teacher,
            code=code,
            title=title,
            description=description,
            topic=topic,
            nominal_hours_centi=hours,
            required=required,
        )
        section = courses.add_section(teacher, course, "第一单元")
        for kind, lesson_title, filename, questions in lessons:
            media = _media(files[filename], teacher) if filename else None
            lesson = courses.add_lesson(
                teacher,
                section,
                title=lesson_title,
                kind=kind,
                media=media,
                required=kind != LessonKind.SURVEY,
                min_read_seconds=30,
                max_attempts=3,
            )
            for qkind, text, options, correct in questions:
                quizzes.add_question(teacher, lesson, kind=qkind, text=text, options=options, correct=correct)
        courses.set_published(teacher, course, True)
        db.session.commit()
        created += 1
    nanling = db.session.execute(select(OrgUnit).filter_by(code="360121")).scalar_one()
    first = db.session.execute(select(Course).filter_by(code=COURSES[0][0])).scalar_one()
    from lms_core.enrolments.models import Assignment

    if not db.session.execute(select(Assignment.id).filter_by(course_id=first.id)).first():
        enrolments.assign(
            admin, first, nanling, deadline=utcnow() + dt.timedelta(days=30), note="南岭县2026年度基层干部调训"
        )
        from lms_core.jobs.services import commit

        commit()
    return created
