"""A lesson takes its file from the 资源库 as well as by fresh upload, only a file the author may use."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from lms_core.courses.models import Lesson
from lms_core.extensions import db
from lms_core.media.models import MediaKind
from tests.conftest import login
from tests.lms_core.learning.fixtures import build_course, media_row


@pytest.fixture
def teacher(app, tree, client):
    kit = build_course(tree)
    kit.author.username = "teacher"
    stranger = media_row(MediaKind.VIDEO, 50_000, sha="f")  # nobody's upload, in no course of theirs
    db.session.commit()
    login(client, "teacher")
    return kit, client, stranger


def _lesson(title: str) -> Lesson | None:
    db.session.expire_all()
    return db.session.execute(select(Lesson).filter_by(title=title)).scalar_one_or_none()


def test_library_files_are_offered_and_used(teacher):
    kit, client, stranger = teacher
    html = client.get(f"/teach/courses/{kit.course.id}").get_data(as_text=True)
    assert f'<option value="{kit.media.id}">' in html and f'<option value="{stranger.id}">' not in html
    assert "或从资源库选择文件" in html
    section_id = kit.video.section_id
    r = client.post(
        f"/teach/sections/{section_id}/lessons",
        data={"title": "复用视频", "kind": "video", "library_media": str(kit.media.id)},
    )
    assert r.status_code == 302
    lesson = _lesson("复用视频")
    assert lesson is not None and lesson.media_id == kit.media.id


@pytest.mark.parametrize(
    ("kind", "pick", "message"),
    [
        ("video", "stranger", "不在您的资源库中"),
        ("video", "999999", "不在您的资源库中"),
        ("video", "9" * 30, "不在您的资源库中"),
        ("document", "own", "文档课时须选 PDF"),
    ],
)
def test_files_outside_the_library_or_of_the_wrong_kind_are_refused(teacher, kind, pick, message):
    kit, client, stranger = teacher
    value = {"stranger": str(stranger.id), "own": str(kit.media.id)}.get(pick, pick)
    r = client.post(
        f"/teach/sections/{kit.video.section_id}/lessons",
        data={"title": "不该有", "kind": kind, "library_media": value},
        follow_redirects=True,
    )
    assert message in r.get_data(as_text=True)
    assert _lesson("不该有") is None
