"""发布 says that the course is published (not 已保存); 取消发布 says it is hidden."""

from __future__ import annotations

from lms_core.extensions import db
from tests.conftest import login
from tests.lms_core.learning.fixtures import build_course


def test_publish_and_unpublish_say_what_happened(app, tree):
    kit = build_course(tree, publish=False)
    kit.author.username = "author"
    db.session.commit()
    client = app.test_client()
    login(client, "author")
    r = client.post(f"/teach/courses/{kit.course.id}/publish", data={"published": "1"}, follow_redirects=True)
    html = r.get_data(as_text=True)
    assert "已发布：学员现在可以在课程目录中找到《" in html
    assert "已保存" not in html
    r = client.post(f"/teach/courses/{kit.course.id}/publish", data={"published": "0"}, follow_redirects=True)
    html = r.get_data(as_text=True)
    assert "已取消发布" in html and "已保存" not in html
