"""The ASGI front (learning/beat_asgi.py) and its group commit (learning/beat_batch.py).

Reference: the Flask view (``LMS_LEAN_BEAT`` off for its requests), as for the lean WSGI
front (test_beat_front.py, whose players and row comparison are reused). Beats through the
ASGI app must answer the same bytes and store the same rows; beats recorded in one group
(one transaction) must store what one-at-a-time stores; a bad beat in a group goes to the
view without losing the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
import time_machine
from flask.testing import _get_werkzeug_version

from lms_core.extensions import db
from lms_core.learning import beat_batch, beat_front
from lms_core.learning.models import LearningInterval, LearningSession, LessonProgress, RefusedBeat
from plugins.anti_idle.envelope import sign_with_key
from plugins.anti_idle.models import Beat
from tests.factories import UserFactory
from tests.lms_core.learning.test_beat_front import T0, Player, beats, rows

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True)
AGENT = f"Werkzeug/{_get_werkzeug_version()}"  # the test client's, which Flask-Login's identifier hashes


def _run(coro: Any) -> Any:
    """``asyncio.run`` on a thread of its own: a browser test earlier in the session leaves
    Playwright's event loop marked as running in this thread, where ``asyncio.run`` refuses."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def people(app: Any, kit: Any, tree: Any, n: int) -> list[Any]:
    from lms_core.enrolments import services as enrolments

    users = [UserFactory(org_unit=tree.village_a, full_name=f"学员{i}") for i in range(n)]
    for user in users:
        enrolments.enrol(user, kit.course)
    db.session.commit()
    return users


def asgi_request(
    asgi: Any, player: Player, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request through the ASGI app, as uvicorn would hand it over, with the player's cookie."""
    cookie = player.client.get_cookie(player.app.config["SESSION_COOKIE_NAME"])
    sent = {"Host": "localhost", "User-Agent": AGENT, "Cookie": f"{cookie.key}={cookie.value}"}
    if method == "POST":
        sent |= {"Content-Type": "application/json", "Content-Length": str(len(body))}
    sent |= {"X-CSRFToken": player.token} if headers is None else headers
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in sent.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("localhost", 80),
    }
    messages: list[dict[str, Any]] = []
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    _run(asgi(scope, receive, send))
    start = messages[0]
    assert start["type"] == "http.response.start"
    out = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], out, b"".join(m.get("body", b"") for m in messages[1:])


def signed(player: Player, body: dict[str, Any]) -> bytes:
    return sign_with_key(player.key, json.dumps(body, separators=(",", ":")).encode())


@pytest.fixture
def flask_calls(asgi, monkeypatch):
    """The requests that reached the Flask app through a2wsgi (the fallback)."""
    seen: list[str] = []
    original = asgi.site.app

    def counting(environ: Any, start_response: Any) -> Any:
        seen.append(environ["PATH_INFO"])
        return original(environ, start_response)

    monkeypatch.setattr(asgi.site, "app", counting)
    return seen


def test_asgi_answers_the_view_bytes_and_stores_the_view_rows(app, kit, tree, asgi):
    a, b = people(app, kit, tree, 2)
    lean, view = Player(app, kit, a, lean=True), Player(app, kit, b, lean=False)
    for at, body in beats():
        with time_machine.travel(at, tick=False):
            status, headers, content = asgi_request(asgi, lean, "POST", lean.path, signed(lean, body))
        reference = view.post(at, body)
        assert (status, content) == (reference.status_code, reference.data), body
        assert headers == {k.lower(): v for k, v in reference.headers.items()}
    db.session.expire_all()
    for model in (LearningInterval, RefusedBeat, Beat):
        assert rows(model, lean.session_id) == rows(model, view.session_id), model.__name__
    sessions = [rows(LearningSession, s, where=LearningSession.id == s) for s in (lean.session_id, view.session_id)]
    assert sessions[0] == sessions[1] and sessions[0][0]["ended_at"] is not None
    progress = [rows(LessonProgress, "", where=LessonProgress.user_id == p.user.id) for p in (lean, view)]
    assert progress[0] == progress[1] and progress[0][0]["position_ms"] == 65_000


def test_what_the_asgi_front_does_not_answer_reaches_flask(app, kit, tree, asgi, flask_calls, monkeypatch):
    recorded: list[str] = []
    real = beat_front.record

    def record(beat: beat_front.Beat) -> Any:
        recorded.append(beat.session_id)
        return real(beat)

    monkeypatch.setattr(beat_front, "record", record)
    (a,) = people(app, kit, tree, 1)
    lean = Player(app, kit, a, lean=True)
    at = T0 + dt.timedelta(seconds=10)
    ok = {"seq": 1, "event": "heartbeat", "position": 0}

    def post(body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        flask_calls.clear()
        with time_machine.travel(at, tick=False):
            status, _headers, content = asgi_request(asgi, lean, "POST", lean.path, signed(lean, body), headers)
        assert flask_calls == [lean.path], "answered on the event loop"
        return status, content

    assert post(ok, headers={})[0] == 400  # no CSRF header: the view's CSRF check
    status, answer = post({"seq": "x"})  # refused by the service: the view's 400, nothing stored
    assert status == 400 and json.loads(answer)["error"]
    made = int((at - dt.timedelta(hours=30)).timestamp() * 1000)
    status, answer = post({**ok, "at": made})  # late: stored once, by the view
    assert status == 422 and json.loads(answer)["refused"] == "late"
    assert len(recorded) == 2  # the bad and the late beat, each tried once here, then the view's alone
    assert db.session.query(RefusedBeat).filter_by(session_id=lean.session_id, reason="late").count() == 1
    # Pages are Flask's, in Chinese.
    flask_calls.clear()
    with time_machine.travel(at, tick=False):
        status, headers, page = asgi_request(asgi, lean, "GET", f"/learn/lessons/{kit.video.id}")
    assert flask_calls == [f"/learn/lessons/{kit.video.id}"] and status == 200
    assert headers["content-type"].startswith("text/html") and '<html lang="zh-CN">' in page.decode()
    # An ordinary beat is the event loop's.
    flask_calls.clear()
    with time_machine.travel(at, tick=False):
        status, _headers, content = asgi_request(asgi, lean, "POST", lean.path, signed(lean, ok))
    assert status == 200 and json.loads(content)["accepted"] is True and not flask_calls


def requests_for(group: list[tuple[Player, dict[str, Any]]]) -> list[Any]:
    """The writer's requests for these beats (built here: the players' rows are this thread's)."""
    return [
        beat_batch._Request(
            beat_front.Beat(p.session_id, p.user.id, p.user.session_version, signed(p, body), "127.0.0.1"),
            Future(),
        )
        for p, body in group
    ]


def record(app: Any, requests: list[Any]) -> list[beat_batch.Answer | None]:
    """Record the requests as one group in this thread (the writer's work), in a fresh app context."""
    with app.app_context():
        beat_batch.record_group(app, requests)
    return [r.future.result(timeout=0) for r in requests]


def run_group(app: Any, group: list[tuple[Player, dict[str, Any]]]) -> list[beat_batch.Answer | None]:
    return record(app, requests_for(group))


def play_rounds(app: Any, players: list[Player], played: list[tuple[dt.datetime, dict[str, Any]]]) -> None:
    """Each ``(time, body)`` as one group round of every player's beat at that frozen time; a
    beat the round hands back (a day replay, ``beat_group.HandOff``) is done by the view, as the
    ASGI front does."""
    for at, body in played:
        with time_machine.travel(at, tick=False):
            for p, answer in zip(players, run_group(app, [(p, body) for p in players]), strict=True):
                if answer is None:
                    assert p.post(at, body).status_code == 200


@contextlib.contextmanager
def psycopg_statements() -> Iterator[list[str]]:
    """The statements psycopg runs inside the block. The beat path's prepared statements go
    to the raw connection's cursor, so SQLAlchemy's cursor events do not see them."""
    statements: list[str] = []
    original = psycopg.Cursor.execute

    def counting(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(str(query))
        return original(self, query, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(psycopg.Cursor, "execute", counting)
        yield statements


def by_view_if_handed(
    group: list[tuple[Player, dict[str, Any]]],
    answers: list[beat_batch.Answer | None],
    at: dt.datetime,
    keep: Any = lambda body: False,
) -> list[beat_batch.Answer | None]:
    """The group's answers, a beat it handed back answered by the view, as the ASGI front does
    (on PostgreSQL a day replay is handed back: ``beat_group.HandOff``); ``keep(body)``: left
    ``None`` for the test to check."""
    out: list[beat_batch.Answer | None] = []
    for (p, body), answer in zip(group, answers, strict=True):
        if answer is None and not keep(body):
            response = p.post(at, body)
            answer = (response.status_code, [], response.data)
        out.append(answer)
    return out


def test_a_group_stores_what_one_at_a_time_stores_and_a_bad_beat_goes_to_the_view(app, kit, tree):
    users = people(app, kit, tree, 6)
    grouped = [Player(app, kit, u, lean=True) for u in users[:3]]
    alone = [Player(app, kit, u, lean=False) for u in users[3:]]
    played = beats()[:6]
    for step, (at, body) in enumerate(played):
        # Arrival order is not person order; the middle learner's third beat is refused.
        bad = step == 2
        group = [(p, {"seq": "x"} if bad and i == 1 else body) for i, p in reversed(list(enumerate(grouped)))]
        with time_machine.travel(at, tick=False):
            answers = by_view_if_handed(group, run_group(app, group), at, keep=lambda body: body.get("seq") == "x")
        for i, p in enumerate(alone):
            reference = p.post(at, {"seq": "x"} if bad and i == 1 else body)
            answer = answers[len(grouped) - 1 - i]
            if bad and i == 1:
                assert answer is None and reference.status_code == 400  # the view answers it
                continue
            assert answer is not None and (answer[0], answer[2]) == (reference.status_code, reference.data)
    db.session.expire_all()
    for g, a in zip(grouped, alone, strict=True):
        for model in (LearningInterval, Beat):
            assert rows(model, g.session_id) == rows(model, a.session_id), model.__name__
        assert rows(LearningSession, "", where=LearningSession.id == g.session_id) == rows(
            LearningSession, "", where=LearningSession.id == a.session_id
        )
    assert rows(LearningInterval, grouped[0].session_id)  # something was credited


def test_two_beats_of_one_person_in_one_group(app, kit, tree):
    a, b = people(app, kit, tree, 2)
    grouped, alone = Player(app, kit, a, lean=True), Player(app, kit, b, lean=False)
    played = beats()[:5]
    pairs = [played[0:1], played[1:3], played[3:5]]  # beats 2+3 and 4+5 arrive together
    for pair in pairs:
        with time_machine.travel(pair[-1][0], tick=False):
            group = [(grouped, body) for _at, body in pair]
            answers = by_view_if_handed(group, run_group(app, group), pair[-1][0])
            references = [alone.post(pair[-1][0], body) for _at, body in pair]
        assert [(x[0], x[2]) for x in answers if x] == [(r.status_code, r.data) for r in references]
    db.session.expire_all()
    for model in (LearningInterval, Beat):
        assert rows(model, grouped.session_id) == rows(model, alone.session_id), model.__name__


def test_the_writer_answers_after_commit_and_groups_what_waits(app, kit, tree, asgi):
    users = people(app, kit, tree, 4)
    players = [Player(app, kit, u, lean=True) for u in users]
    at, body = beats()[0]
    with time_machine.travel(at, tick=False):
        futures = [
            beat_batch.submit(
                app, beat_front.Beat(p.session_id, p.user.id, p.user.session_version, signed(p, body), "127.0.0.1")
            )
            for p in players
        ]
        answers = [f.result(timeout=30) for f in futures]
    assert all(a is not None and a[0] == 200 for a in answers), answers
    db.session.rollback()  # end this test's read snapshot
    # Answered means committed: another connection sees every beat.
    ids = [p.session_id for p in players]
    stored = db.session.query(LearningSession).filter(LearningSession.id.in_(ids), LearningSession.last_seq == 1)
    assert stored.count() == 4


@pytest.mark.backends("postgresql")
def test_concurrent_groups_in_opposite_orders_do_not_deadlock_on_postgresql(app, kit, tree):
    users = people(app, kit, tree, 6)
    players = [Player(app, kit, u, lean=True) for u in users]
    played = beats()[:4]
    failures: list[BaseException] = []
    for at, body in played:
        barrier = threading.Barrier(2)
        answered: dict[int, list[Any]] = {}

        def writer(requests: list[Any], barrier: Any = barrier, answered: dict[int, list[Any]] = answered) -> None:
            try:
                barrier.wait()
                answers = answered[id(requests)] = record(app, requests)
                # None: handed back to the view (a day replay: beat_group.HandOff), done below
                assert all(a is None or a[0] == 200 for a in answers), answers
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        # Both groups hold the same people, arriving in opposite orders; each person's beat
        # is posted twice (the second is a duplicate of the first, answered 200 too).
        with time_machine.travel(at, tick=False):
            groups = [requests_for([(p, body) for p in order]) for order in (players, players[::-1])]
            threads = [threading.Thread(target=writer, args=(g,)) for g in groups]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "a group is stuck"
        with time_machine.travel(at, tick=False):
            for order, requests in zip((players, players[::-1]), groups, strict=True):
                for p, answer in zip(order, answered.get(id(requests), []), strict=True):
                    if answer is None:
                        assert p.post(at, body).status_code == 200  # as the ASGI front hands it on
    assert not failures, failures
    db.session.rollback()
    for p in players:  # each beat stored once (the play starts the session; the others are beats)
        assert db.session.get(LearningSession, p.session_id).last_seq == len(played)
        assert db.session.query(Beat).filter_by(session_id=p.session_id).count() == len(played) - 1


def test_a_beat_that_raises_is_taken_out_and_the_others_are_kept(app, kit, tree, monkeypatch):
    users = people(app, kit, tree, 3)
    players = [Player(app, kit, u, lean=True) for u in users]
    at, body = beats()[0]
    broken = players[1].session_id
    real = beat_front.record

    def record(beat: beat_front.Beat) -> Any:
        result = real(beat)  # its rows are written, then it fails: the rollback must drop them
        if beat.session_id == broken:
            raise RuntimeError("lost connection")
        return result

    monkeypatch.setattr(beat_front, "record", record)
    with time_machine.travel(at, tick=False):
        answers = run_group(app, [(p, body) for p in players])
    assert answers[1] is None  # handed to the view
    assert answers[0] is not None and answers[2] is not None and answers[0][0] == answers[2][0] == 200
    db.session.rollback()
    seqs = {p.session_id: db.session.get(LearningSession, p.session_id).last_seq for p in players}
    assert seqs == {players[0].session_id: 1, broken: 0, players[2].session_id: 1}


def test_a_failed_commit_hands_every_beat_of_the_group_to_the_view(app, kit, tree, monkeypatch):
    from lms_core.jobs import services as jobs

    users = people(app, kit, tree, 2)
    players = [Player(app, kit, u, lean=True) for u in users]
    at, body = beats()[0]

    def commit() -> None:
        raise RuntimeError("the server closed the connection")

    monkeypatch.setattr(jobs, "commit", commit)
    with time_machine.travel(at, tick=False):
        answers = run_group(app, [(p, body) for p in players])
    assert answers == [None, None]
    monkeypatch.undo()
    db.session.rollback()
    assert [db.session.get(LearningSession, p.session_id).last_seq for p in players] == [0, 0]


@pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True, LMS_BEAT_GROUP_MAX=0)
def test_with_group_commit_off_each_beat_is_its_own_transaction_with_the_same_answers(app, kit, tree, asgi):
    a, b = people(app, kit, tree, 2)
    lean, view = Player(app, kit, a, lean=True), Player(app, kit, b, lean=False)
    for at, body in beats()[:4]:
        with time_machine.travel(at, tick=False):
            status, _headers, content = asgi_request(asgi, lean, "POST", lean.path, signed(lean, body))
        reference = view.post(at, body)
        assert (status, content) == (reference.status_code, reference.data), body
    assert "lms.beat_writer" not in app.extensions  # no writer thread was started
    db.session.expire_all()
    for model in (LearningInterval, Beat):
        assert rows(model, lean.session_id) == rows(model, view.session_id), model.__name__


def test_a_writer_that_fails_hands_the_beat_to_the_view(app, kit, tree, asgi, flask_calls, monkeypatch):
    (a,) = people(app, kit, tree, 1)
    lean = Player(app, kit, a, lean=True)

    def record_group(_app: Any, _requests: list[Any]) -> None:
        raise RuntimeError("the writer thread died")

    # The writer's own thread fails the group: its error reaches the awaiting event loop.
    monkeypatch.setattr(beat_batch, "record_group", record_group)
    at, body = beats()[0]
    with time_machine.travel(at, tick=False):
        status, _headers, content = asgi_request(asgi, lean, "POST", lean.path, signed(lean, body))
    assert flask_calls == [lean.path] and status == 200 and json.loads(content)["accepted"] is True
