"""What browser tests do again and again: sign in, build a course with a real video, play it.

Fixtures (``browser``, ``page``, ``live_server``) live in ``fixtures.py``; these are
plain functions the tests call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lms_core.accounts.models import Role, User
from lms_core.courses import services as courses
from lms_core.courses.models import Course, LessonKind, Section
from tests.factories import PASSWORD, UserFactory, grant

#: Start the lesson's video muted (autoplay rules allow that without a gesture).
PLAY_MUTED = "(() => { const v = document.getElementById('player'); v.muted = true; return v.play(); })()"


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as pw_expect

    return pw_expect(locator)


def sign_in(page: Any, username: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.locator("form button[type=submit].primary").click()


def horizontal_overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than the viewport (0 is right)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def wait_for_player(page: Any) -> None:
    """Until the lesson's video knows its duration and the page's scripts have started
    (``window.lmsTracker``): the scripts are deferred, and on a loaded machine the media's
    metadata can come first; a video played before them is reported only from then on."""
    page.wait_for_function("document.getElementById('player').readyState >= 1 && window.lmsTracker !== undefined")


def play_muted(page: Any) -> None:
    page.evaluate(PLAY_MUTED)


def video_time(page: Any) -> float:
    return float(page.evaluate("document.getElementById('player').currentTime"))


def video_course(
    app: Any, tree: Any, tmp_path: Path, *, code: str, title: str, topic: str, lesson: str
) -> tuple[User, Course, Section]:
    """A published course whose first section holds one video lesson with a real WebM file.

    Returns the instructor ("teacher", at the city) and the course and section, so a
    test can add lessons; the caller commits.
    """
    from lms_core.demo.media import VIDEOS, make_video
    from lms_core.media.services import store_upload

    app.config["LMS_MEDIA_DIR"] = str(tmp_path / "media")
    teacher = UserFactory(username="teacher", org_unit=tree.city, full_name="党校讲师")
    grant(teacher, Role.INSTRUCTOR, tree.city)
    webm = next(v for v in VIDEOS if v.filename.endswith(".webm"))  # VP8: every Chromium build plays it
    path = make_video(tmp_path / webm.filename, webm)
    with path.open("rb") as fh:
        media = store_upload(fh, path.name, teacher)
    course = courses.create_course(teacher, code=code, title=title, topic=topic, nominal_hours_centi=100, required=True)
    section = courses.add_section(teacher, course, "第一单元")
    courses.add_lesson(teacher, section, title=lesson, kind=LessonKind.VIDEO, media=media)
    return teacher, course, section
