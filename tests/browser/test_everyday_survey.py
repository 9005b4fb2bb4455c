"""Survey questions edited and answered, and a video lesson's file replaced, in Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lms_core.extensions import db
from tests.browser.test_ui import expect, horizontal_overflow, sign_in
from tests.factories import UserFactory
from tests.lms_core.learning.fixtures import build_course

pytestmark = [pytest.mark.browser, pytest.mark.backends("postgresql"), pytest.mark.app_config(WTF_CSRF_ENABLED=True)]

#: Ids used twice on the page (a label's ``for`` or a script would find the wrong element).
DUPLICATE_IDS = """() => { const seen = {}; const twice = [];
  document.querySelectorAll('[id]').forEach(el => { if (seen[el.id]) twice.push(el.id); seen[el.id] = 1; });
  return twice; }"""


def _check_page(page: Any, shots: Path, name: str) -> None:
    assert horizontal_overflow(page) == 0, name
    assert page.evaluate(DUPLICATE_IDS) == [], name
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}, {"width": 1280, "height": 800}])
def test_author_edits_the_survey_learner_answers_and_edits_the_report_shows_it(
    page: Any, tree: Any, tmp_path: Path, viewport: dict[str, int]
) -> None:
    from lms_core.enrolments import services as enrolments

    kit = build_course(tree)
    kit.author.username = "author"
    learner = UserFactory(username="liming", org_unit=tree.village_a)
    enrolments.enrol(learner, kit.course)
    db.session.commit()
    page.set_viewport_size(viewport)
    width = viewport["width"]

    sign_in(page, "author")
    page.goto(f"/teach/courses/{kit.course.id}")
    page.locator(f"#lesson-{kit.survey.id}").get_by_role("link", name="问卷题目").click()
    expect(page.locator("h1")).to_contain_text("问卷题目")
    add = page.locator("#add-survey-question")
    add.get_by_label("题型").select_option("rating")
    add.get_by_label("题干", exact=True).fill("课程安排是否合理？")
    add.get_by_label("选项，每行一个", exact=False).fill("很不满意\n不满意\n一般\n满意\n很满意")
    add.get_by_role("button", name="添加").click()
    expect(page.locator(".flash-success")).to_contain_text("题目已添加")
    add = page.locator("#add-survey-question")
    add.get_by_label("题型").select_option("multiple")
    add.get_by_label("题干", exact=True).fill("希望增加哪些内容？")
    add.get_by_label("选项，每行一个", exact=False).fill("案例\n政策解读\n互动")
    add.get_by_label("必答").uncheck()
    add.get_by_role("button", name="添加").click()
    editor = page.locator(".survey-editor > li")
    expect(editor).to_have_count(4)
    # The new rating item goes first; the default open question gets new wording.
    rated = editor.filter(has_text="课程安排是否合理？")
    for _ in range(2):
        page.locator(".survey-editor > li").filter(has_text="课程安排是否合理？").get_by_role(
            "button", name="上移"
        ).click()
    expect(page.locator(".survey-editor > li").first).to_contain_text("课程安排是否合理？")
    comment = page.locator(".survey-editor > li").filter(has_text="意见建议")
    comment.locator("summary", has_text="编辑").click()
    comment.get_by_label("题干", exact=True).fill("您对本课还有什么建议？")
    comment.get_by_role("button", name="保存").click()
    expect(page.locator(".survey-editor")).to_contain_text("您对本课还有什么建议？")
    assert rated is not None
    _check_page(page, tmp_path, f"survey-editor-{width}")

    # The learner answers on the page, then changes one answer.
    page.context.clear_cookies()
    sign_in(page, "liming")
    page.goto(f"/learn/lessons/{kit.survey.id}")
    questions = page.locator(".survey-question")
    expect(questions).to_have_count(4)
    questions.nth(0).locator(".scale-point", has_text="满意").last.click()
    questions.nth(1).locator(".scale-point").nth(3).click()
    questions.nth(2).locator("textarea").fill("多讲基层案例")
    questions.nth(3).get_by_label("案例").check()
    questions.nth(3).get_by_label("互动").check()
    _check_page(page, tmp_path, f"survey-answer-{width}")
    page.get_by_role("button", name="提交").click()
    expect(page.locator(".flash-success")).to_contain_text("感谢")
    expect(page.locator("#survey-mine")).to_contain_text("再次提交将修改这份回答")
    page.locator(".survey-question").nth(0).locator(".scale-point").nth(1).click()
    page.get_by_role("button", name="保存修改").click()
    expect(page.locator(".flash-success")).to_contain_text("课程安排是否合理？：5（很满意） → 2（不满意）")
    _check_page(page, tmp_path, f"survey-changed-{width}")

    # The author reads the report: the changed answer counts once.
    page.context.clear_cookies()
    sign_in(page, "author")
    page.goto(f"/feedback/courses/{kit.course.id}/html")
    first = page.locator(".report-question").first
    expect(first).to_contain_text("课程安排是否合理？")
    expect(first).to_contain_text("1 人作答")
    expect(first).to_contain_text("平均 2.00 分（满分 5）")
    expect(page.locator(".open-answers")).to_contain_text("多讲基层案例")
    _check_page(page, tmp_path, f"feedback-report-{width}")


def test_author_replaces_a_video_lessons_file_from_the_library_and_by_upload(
    mobile_page: Any, tree: Any, tmp_path: Path
) -> None:
    from lms_core.demo.media import DemoVideo, make_video
    from lms_core.enrolments import services as enrolments
    from lms_core.events.services import emit
    from lms_core.learning.models import LessonProgress
    from lms_core.media.models import MediaKind
    from tests.lms_core.learning.fixtures import media_row

    kit = build_course(tree)
    kit.author.username = "author"
    other = media_row(MediaKind.VIDEO, 180_000, sha="9")
    other.original_name = "第二版讲座.mp4"
    emit("media.uploaded", actor=kit.author, obj=other)
    learner = UserFactory(username="liming", org_unit=tree.village_a)
    enrolments.enrol(learner, kit.course)
    db.session.add(LessonProgress(user_id=learner.id, lesson_id=kit.video.id, course_id=kit.course.id))
    db.session.commit()
    page = mobile_page

    sign_in(page, "author")
    page.goto(f"/teach/courses/{kit.course.id}")
    video = page.locator(f"#lesson-{kit.video.id}")
    video.locator("summary", has_text="编辑").click()
    expect(video).to_contain_text("1 名学员已有记录")
    video.get_by_role("link", name="全部设置").click()
    expect(page.locator("#records-warning")).to_contain_text("已完成的学员保持完成")
    page.get_by_label("或从资源库选择文件").select_option(str(other.id))
    page.get_by_label("视频：需观看比例（%）").fill("90")
    _check_page(page, tmp_path, "lesson-edit-390")
    page.get_by_role("button", name="保存").click()
    expect(page.locator(".flash-success")).to_contain_text("1 名学员的记录保持不变")
    expect(page.locator(f"#lesson-{kit.video.id}")).to_contain_text("第二版讲座.mp4")
    expect(page.locator(f"#lesson-{kit.video.id}")).to_contain_text("180 秒")

    # A fresh upload: the lesson's duration is the file's own (2 s here).
    clip = make_video(tmp_path / "新讲座.webm", DemoVideo("新讲座.webm", "新讲座", 2, 1, (40, 80, 160), 300))
    page.goto(f"/teach/lessons/{kit.video.id}/edit")
    page.locator("input[type=file][name=file]").set_input_files(str(clip))
    page.get_by_role("button", name="保存").click()
    expect(page.locator(f"#lesson-{kit.video.id}")).to_contain_text("新讲座.webm")
    expect(page.locator(f"#lesson-{kit.video.id}")).to_contain_text("2 秒")
    _check_page(page, tmp_path, "lesson-replaced-390")
    db.session.expire_all()
    assert db.session.query(LessonProgress).filter_by(lesson_id=kit.video.id).count() == 1
