"""A JavaScript xAPI client in a page served from another origin (CORS, exposed headers)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

pytestmark = [pytest.mark.browser, pytest.mark.backends("postgresql")]

PAGE = """<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>course</title><script>
async function run(lrs, auth) {
  const h = {"Authorization": auth, "X-Experience-API-Version": "1.0.3", "Content-Type": "application/json"};
  const stmt = {actor: {name: "张三", account: {homePage: "https://gbwl.example.gov.cn", name: "cadre0001"}},
                verb: {id: "http://adlnet.gov/expapi/verbs/experienced", display: {"zh-CN": "学习"}},
                object: {id: "http://gbwl.example.gov.cn/lesson/1"}};
  const post = await fetch(lrs + "statements", {method: "POST", headers: h, body: JSON.stringify(stmt)});
  const ids = await post.json();
  const got = await fetch(lrs + "statements?statementId=" + ids[0], {headers: h});
  const body = await got.json();
  const doc = lrs + "activities/profile?activityId=" + encodeURIComponent("http://gbwl.example.gov.cn/lesson/1")
              + "&profileId=notes";
  const put = await fetch(doc, {method: "PUT", headers: {...h, "If-None-Match": "*"}, body: '{"a": 1}'});
  const read = await fetch(doc, {headers: h});
  const etag = read.headers.get("ETag");
  const update = await fetch(doc, {method: "PUT", headers: {...h, "If-Match": etag}, body: '{"a": 2}'});
  return {post: post.status, get: got.status, name: body.actor.name,
          version: got.headers.get("X-Experience-API-Version"),
          consistent: got.headers.get("X-Experience-API-Consistent-Through"),
          modified: got.headers.get("Last-Modified"), put: put.status, etag: etag, update: update.status};
}
</script><p>课程页面</p></html>"""


@pytest.fixture
def other_origin() -> Iterator[str]:
    def page_app(environ, start_response):
        return Response(PAGE, mimetype="text/html")(environ, start_response)

    server = make_server("127.0.0.1", 0, page_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_browser_client_from_another_origin(browser, live_server, other_origin, xapi):  # noqa: F811
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(other_origin)
        auth = "Basic " + base64.b64encode(f"{xapi.key}:{xapi.secret}".encode()).decode()
        result = page.evaluate("([lrs, auth]) => run(lrs, auth)", [live_server.url + "/xapi/", auth])
    finally:
        context.close()
    assert result["post"] == 200 and result["get"] == 200 and result["name"] == "张三"
    assert result["version"] == "1.0.3"
    assert result["consistent"] and result["modified"]
    assert result["put"] == 204 and result["etag"] and result["update"] == 204
