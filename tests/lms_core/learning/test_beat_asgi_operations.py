"""What an operator running the ASGI front (learning/beat_asgi.py) for the whole site relies on.

* hostile beats (a NUL, numbers beyond any column, JSON nested thousands deep, bodies of
  megabytes or over the site's limit, bytes that are not UTF-8) get a 4xx and write nothing,
  never a 500, on either database;
* a graceful stop (gunicorn's SIGTERM: uvicorn finishes the requests in flight, then runs
  the lifespan's shutdown) still commits and answers the beats already queued for the writer;
* every page and file of the site is served through the front as Flask serves it.

Durability of acknowledged beats when a worker is SIGKILLed mid-group needs real processes:
``bench/beat_sigkill.py`` (docs/deployment.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest
import time_machine
from flask import Flask

from lms_core.extensions import db
from lms_core.learning import beat_asgi, beat_batch, beat_front
from lms_core.learning.models import LearningSession
from plugins.anti_idle.envelope import sign_with_key
from tests.lms_core.learning.test_beat_asgi import AGENT, _run, asgi_request, people, signed
from tests.lms_core.learning.test_beat_front import T0, Player, beats
from tests.lms_core.learning.test_beat_fuzz import _written
from tests.test_every_page_in_chinese import PLUGINS, _urls, world  # noqa: F401 - world is a fixture

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True)


def _deep(levels: int) -> bytes:
    return b'{"seq":1,"event":"heartbeat","client":' + b'{"a":' * levels + b"1" + b"}" * levels + b"}"


#: Bodies a hostile or broken client sends (signed with the learner's own key when they end
#: like an object, as a player that is not a browser would). Each must get a 4xx.
HOSTILE: dict[str, bytes] = {
    "empty": b"",
    "a NUL byte": b"\x00",
    "a NUL inside a string": b'{"seq":1,"event":"heart\x00beat"}',
    "an escaped NUL as the event": b'{"seq":1,"event":"heartbeat\\u0000"}',
    "an escaped NUL as a key": b'{"seq":1,"event":"heartbeat","\\u0000":1}',
    "a lone surrogate": b'{"seq":1,"event":"heartbeat","client":{"\\ud800":1}}',
    "not UTF-8": b'{"seq":1,"event":"\xff\xfe"}',
    "seq 1e400": b'{"seq":1e400,"event":"heartbeat"}',
    "seq of 30 digits": b'{"seq":123456789012345678901234567890,"event":"heartbeat"}',
    "seq 2**31": b'{"seq":2147483648,"event":"heartbeat"}',
    "seq negative": b'{"seq":-1,"event":"heartbeat"}',
    "seq NaN": b'{"seq":NaN,"event":"heartbeat"}',
    "visible_ms 1e308": b'{"seq":1,"event":"heartbeat","visible_ms":1e308}',
    "position -Infinity": b'{"seq":1,"event":"heartbeat","position":-Infinity}',
    "made at year 10000": b'{"seq":1,"event":"heartbeat","at":253402300800000}',
    "an array": b"[1,2,3]",
    "a string": b'"heartbeat"',
    "arrays 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
    "objects 5,000 deep": _deep(5_000),
    "a 2 MB client field": b'{"seq":1,"event":"heartbeat","client":{"x":"' + b"a" * 2_000_000 + b'"}}',
    "not JSON": b"seq=1&event=heartbeat",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_beats_through_the_asgi_front_are_4xx_and_write_nothing(app, kit, tree, asgi, name):
    (a,) = people(app, kit, tree, 1)
    player = Player(app, kit, a, lean=True)
    body = HOSTILE[name]
    if body.endswith(b"}"):
        body = sign_with_key(player.key, body)
    before = _written()
    with time_machine.travel(T0 + dt.timedelta(seconds=10), tick=False):
        status, headers, content = asgi_request(asgi, player, "POST", player.path, body)
    assert 400 <= status < 500, (name, status, content[:300])
    assert _written() == before, name
    db.session.expire_all()
    assert db.session.get(LearningSession, player.session_id).last_seq == 0
    if headers["content-type"].startswith("application/json"):
        assert json.loads(content)["error"]
    else:  # the site's own error page, in Chinese
        assert '<html lang="zh-CN">' in content.decode()


@pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True, MAX_CONTENT_LENGTH=4096)
def test_a_beat_over_the_sites_body_limit_is_413_and_not_read_by_the_beat_path(app, kit, tree, asgi, monkeypatch):
    (a,) = people(app, kit, tree, 1)
    player = Player(app, kit, a, lean=True)
    taken: list[str] = []
    monkeypatch.setattr(beat_front, "record", lambda beat: taken.append(beat.session_id))
    body = sign_with_key(player.key, b'{"seq":1,"event":"heartbeat","client":{"x":"' + b"a" * 8192 + b'"}}')
    before = _written()
    with time_machine.travel(T0 + dt.timedelta(seconds=10), tick=False):
        status, _headers, content = asgi_request(asgi, player, "POST", player.path, body)
    assert status == 413 and not taken, content[:300]
    assert _written() == before


def test_a_graceful_stop_commits_and_answers_the_beats_already_queued(app, kit, tree):
    users = people(app, kit, tree, 5)
    players = [Player(app, kit, u, lean=True) for u in users]
    front = beat_asgi.BeatASGI(app)
    at, body = beats()[0]
    # Built here: the players' rows belong to this thread's app context.
    queued = [
        beat_front.Beat(p.session_id, p.user.id, p.user.session_version, signed(p, body), "127.0.0.1") for p in players
    ]

    async def serve_then_stop() -> list[Any]:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        lifespan = asyncio.create_task(front({"type": "lifespan"}, inbox.get, send))
        await inbox.put({"type": "lifespan.startup"})
        # The beats are queued for the writer (as requests in flight are), then the stop comes.
        waiting = [asyncio.ensure_future(beat_batch.wait(app, beat)) for beat in queued]
        await asyncio.sleep(0)
        await inbox.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(lifespan, timeout=60)
        assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        return await asyncio.wait_for(asyncio.gather(*waiting), timeout=60)

    with time_machine.travel(at, tick=False):
        answers = _run(serve_then_stop())
    assert "lms.beat_writer" not in app.extensions  # the writer is gone: the stop was done
    # Every queued beat was answered: 200 after its COMMIT, or None (handed to the view: a
    # person-day's first beat replays the day there on PostgreSQL), which the view answers.
    for p, answer in zip(players, answers, strict=True):
        if answer is None:
            assert p.post(at, body).status_code == 200
        else:
            assert answer[0] == 200
    db.session.rollback()  # a fresh snapshot: what was committed
    stored = [db.session.get(LearningSession, p.session_id).last_seq for p in players]
    assert stored == [1] * len(players)


def _through_asgi(front: Any, client: Any, path: str) -> tuple[int, str, bytes]:
    """``GET path`` through the ASGI front with the test client's cookie (as uvicorn hands it over)."""
    cookie = client.get_cookie(front.app.config["SESSION_COOKIE_NAME"])
    headers = {"Host": "localhost", "User-Agent": AGENT}
    if cookie is not None:
        headers["Cookie"] = f"{cookie.key}={cookie.value}"
    path_only, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path_only,
        "raw_path": path_only.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("localhost", 80),
    }
    messages: list[dict[str, Any]] = []
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    _run(front(scope, receive, send))
    start = messages[0]
    kinds = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], kinds.get("content-type", ""), b"".join(m.get("body", b"") for m in messages[1:])


@pytest.mark.app_config(LMS_PLUGINS=PLUGINS)
def test_every_page_is_served_through_the_asgi_front_as_flask_serves_it(
    app: Flask,
    world: dict[str, Any],  # noqa: F811 - the imported fixture
) -> None:
    from tests.conftest import login

    front = beat_asgi.BeatASGI(app)
    try:
        compared = 0
        for role in ("anonymous", "learner", "site_admin"):
            client = app.test_client()
            if role != "anonymous":
                assert login(client, world["users"][role].username).status_code == 302
            for url in [*_urls(app, world), "/static/css/app.css", "/favicon.ico", "/no/such/page"]:
                # One frozen instant for both: a JSON answer that carries the time stays byte-equal.
                with time_machine.travel(dt.datetime.now(dt.UTC), tick=False):
                    reference = client.get(url)
                    status, kind, content = _through_asgi(front, client, url)
                assert (status, kind) == (reference.status_code, reference.content_type), (role, url)
                if kind.startswith("text/html") and status == 200:
                    assert '<html lang="zh-CN">' in content.decode(), (role, url)
                elif not kind.startswith("text/html"):
                    assert content == reference.data, (role, url)  # files, JSON, CSV: the same bytes
                compared += 1
        assert compared > 100, "too few pages compared: the data or the sign-in broke"
    finally:
        beat_batch.stop(app)
