"""Issue 8, ingestion: an open-loop heartbeat generator and a fast way to sign learners in.

Open loop (``drive``): each learner's beats fall due on a schedule, ``learners / rate`` seconds
apart with a little jitter, whether or not its last beat was answered; a beat due while the
last one is in flight waits in the learner's queue, as the player queues it. Latency runs from
the *scheduled* send time, so a server that stalls shows up in the figures (no coordinated
omission: a closed-loop client that waits for each answer stops offering load exactly when the
server is slow, and its latency hides the queue).

Each learner connects from its own loopback address (``127.1.x.y``; Linux routes all of
127/8 to ``lo``), so the server sees one device per learner, as 20,000 learners at home or in
offices would be, rather than thousands of accounts on one device (which anti-idle's R12 rule
judges, at a cost of its own).

``mint_learners`` signs learners in without the login form: it runs the app's own
``login_user``, CSRF token and ``learning.services.start_session`` (what the lesson page does)
in process on the same database and secret, and signs the session cookie with the app's own
session serializer. The form costs a password hash per learner (seconds for thousands); the
app is not changed and has no bench-only path.

Used by ``anti_idle_bench.py --only ingest --rate R``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from plugins.anti_idle.envelope import sign_with_key

#: Beats one learner has in flight at once: one, as the player sends them
#: (themes/default/static/js/player.js: one beat in flight, the others queued in order, so
#: two beats never race). A beat due while the last is unanswered waits in the learner's
#: queue, its latency still counted from its scheduled time: a stall shows in full.
MAX_CONNECTIONS = 1
#: How long after the window's last scheduled beat the generator waits for answers; a beat
#: not answered by then counts as an error ("unanswered").
DRAIN_SECONDS = 20.0
#: Learners signed in per app context and COMMIT by :func:`mint_learners`.
MINT_CHUNK = 200


def address(i: int) -> str:
    """Learner ``i``'s own loopback address (up to 62,500 learners)."""
    return f"127.1.{i // 250}.{i % 250 + 1}"


@dataclass(frozen=True)
class Learner:
    address: str
    cookie: str
    path: str
    token: str
    key: str


def mint_learners(app: Any, lesson_id: int, names: Sequence[str]) -> list[Learner]:
    """Sign ``names`` in and open ``lesson_id`` for each, in process (see the module's docstring)."""
    from flask import g, session
    from flask_login import login_user
    from flask_wtf.csrf import generate_csrf
    from sqlalchemy import select

    from lms_core.accounts.models import User
    from lms_core.courses.models import Lesson
    from lms_core.enrolments.models import Enrolment
    from lms_core.extensions import db
    from lms_core.jobs.services import commit
    from lms_core.learning import services
    from plugins.anti_idle import envelope

    serializer = app.session_interface.get_signing_serializer(app)
    cookie_name = app.config["SESSION_COOKIE_NAME"]
    field = app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    out: list[Learner] = []
    # In chunks, each its own app context (database session) and one COMMIT: a session that
    # keeps thousands of objects makes every commit expire them all (quadratic).
    for first in range(0, len(names), MINT_CHUNK):
        chunk = names[first : first + MINT_CHUNK]
        with app.app_context():
            lesson = db.session.get(Lesson, lesson_id)
            users = {u.username: u for u in db.session.scalars(select(User).where(User.username.in_(chunk)))}
            enrolments = {
                e.user_id: e
                for e in db.session.scalars(
                    select(Enrolment).where(
                        Enrolment.course_id == lesson.course_id, Enrolment.user_id.in_([u.id for u in users.values()])
                    )
                )
            }
            made = []
            for i, name in enumerate(chunk, start=first):
                user, addr = users[name], address(i)
                with app.test_request_context(f"/learn/lessons/{lesson_id}", environ_base={"REMOTE_ADDR": addr}):
                    # ``g`` belongs to the chunk's app context: Flask-WTF keeps the signed token
                    # there and would hand the previous learner's to this one.
                    g.pop(field, None)
                    login_user(user)
                    token = generate_csrf()
                    learning = services.start_session(user, lesson, enrolments[user.id], ip=addr, user_agent=None)
                    cookie = f"{cookie_name}={serializer.dumps(dict(session))}"
                    made.append((addr, cookie, learning.id, token))
            commit()
            for addr, cookie, session_id, token in made:
                key = envelope.session_key(session_id)
                out.append(Learner(addr, cookie, f"/learn/sessions/{session_id}/beat", token, key))
    return out


def beat_body(seq: int, visible_ms: int) -> bytes:
    return b'{"seq":%d,"event":"heartbeat","visible_ms":%d,"client":{"visibility":"visible"}}' % (seq, visible_ms)


@dataclass
class Tally:
    """What the generator saw: latencies (s) of the window's beats, errors and their kinds."""

    def answered(self, start: float, end: float) -> int:
        """Beats answered between ``start`` and ``end`` (``perf_counter``), whenever they were due."""
        return sum(start <= t < end for t in self.done)

    latencies: list[float] = field(default_factory=list)
    scheduled: int = 0
    errors: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    done: list[float] = field(default_factory=list)  # when each beat of the run was answered
    connections: int = 0
    samples: list[bytes] = field(default_factory=list)

    def error(self, kind: str, answer: bytes = b"") -> None:
        self.errors += 1
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if answer and len(self.samples) < 3:
            self.samples.append(answer[:300])


class _Conn:
    __slots__ = ("reader", "writer", "used")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.used = reader, writer, False


class _Client:
    """One learner: its own address, its idle connections, its sequence numbers."""

    def __init__(self, port: int, learner: Learner, visible_ms: int) -> None:
        self.port, self.learner, self.visible_ms = port, learner, visible_ms
        self.head = (
            f"POST {learner.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {learner.cookie}\r\n"
            f"X-CSRFToken: {learner.token}\r\nContent-Type: application/json\r\nAccept-Encoding: identity\r\n"
        ).encode()
        self.idle: asyncio.Queue[_Conn] = asyncio.Queue()
        self.open = 0
        self.seq = 0

    async def connect(self, tally: Tally) -> None:
        """Open one connection ahead and keep it idle (before a schedule starts: no burst of connects)."""
        self.open += 1
        tally.connections += 1
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port, local_addr=(self.learner.address, 0))
        except BaseException:
            self.open -= 1
            raise
        self.idle.put_nowait(_Conn(reader, writer))

    async def _connection(self, tally: Tally) -> _Conn:
        if self.idle.empty() and self.open < MAX_CONNECTIONS:
            await self.connect(tally)
        return await self.idle.get()

    async def _exchange(self, conn: _Conn, request: bytes) -> tuple[bytes, bytes]:
        """One request and its answer on ``conn``: ``(status, body)``."""
        conn.writer.write(request)
        head = await conn.reader.readuntil(b"\r\n\r\n")
        at = head.lower().find(b"content-length:")
        length = int(head[at + 15 : head.index(b"\r\n", at)]) if at >= 0 else 0
        return head[9:12], await conn.reader.readexactly(length)

    async def send(self, seq: int, scheduled: float, window: tuple[float, float] | None, tally: Tally) -> None:
        """One beat; ``window``: count it (latency from ``scheduled``) if due in it."""
        body = sign_with_key(self.learner.key, beat_body(seq, self.visible_ms))  # as the player signs it
        request = self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body
        status = answer = b""
        try:
            for attempt in (1, 2):
                conn = await self._connection(tally)
                kept, conn.used = conn.used, True
                try:
                    status, answer = await self._exchange(conn, request)
                    break
                except (OSError, asyncio.IncompleteReadError):
                    self.open -= 1
                    conn.writer.close()
                    # A kept connection the server closed while idle (its keep-alive timeout):
                    # once more on a new one, as a browser does. A new one that fails is an error.
                    if not kept or attempt == 2:
                        raise
                except BaseException:
                    self.open -= 1
                    conn.writer.close()
                    raise
            self.idle.put_nowait(conn)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            status = type(exc).__name__.encode()
        done = time.perf_counter()
        if window is None:
            if status != b"200":
                tally.error(f"prime {status.decode()}", answer)
            return
        tally.done.append(done)
        start, end = window
        if start <= scheduled < end:
            tally.latencies.append(done - scheduled)
            if status != b"200":
                tally.error(status.decode(), answer)


async def connect_all(clients: Sequence[_Client], tally: Tally, concurrency: int = 64) -> None:
    """One kept connection per learner, ``concurrency`` connects at a time."""
    queue = list(clients)

    async def worker() -> None:
        while queue:
            await queue.pop().connect(tally)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def prime(
    port: int, learners: Sequence[Learner], visible_ms: int, concurrency: int = 16, seqs: Sequence[int] = ()
) -> Tally:
    """Each learner's first beat of the day, ``concurrency`` at a time, before the measured run:
    a person-day's first beat replays the day (~13 ms of CPU); at 20,000 learners those are
    spread over the morning, not all in one measured minute."""
    tally = Tally()
    clients = [_Client(port, learner, visible_ms) for learner in learners]
    for client, seq in zip(clients, seqs, strict=False):  # ``seqs``: each learner's next seq (default 1)
        client.seq = seq - 1
    queue = list(reversed(clients))

    async def worker() -> None:
        while queue:
            client = queue.pop()
            client.seq += 1
            await client.send(client.seq, time.perf_counter(), None, tally)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    for client in clients:
        while not client.idle.empty():
            client.idle.get_nowait().writer.close()
    return tally


@dataclass(frozen=True)
class Window:
    """The measured window: as scheduled (``start``, ``end``) and as the CPU was read (``opened``,
    ``closed``; later than scheduled when the generator's loop is behind)."""

    start: float
    end: float
    opened: float
    closed: float


async def drive(
    port: int,
    learners: Sequence[Learner],
    rate: float,
    warmup: float,
    duration: float,
    *,
    jitter: float = 0.1,
    first_seq: int = 1,
    on_window: Any = None,
    seed: int = 8,
) -> tuple[Tally, Window]:
    """Offer ``rate`` beats/s spread over ``learners`` for ``warmup + duration`` seconds.

    Returns the tally and the window. ``on_window(opening: bool)`` is called (blocking) as the
    measured window opens and closes: CPU readings go there.
    """
    interval = len(learners) / rate
    visible_ms = round(interval * 1000)
    rnd = random.Random(seed)  # noqa: S311 - a schedule's jitter, not a secret
    tally = Tally()
    clients = [_Client(port, learner, visible_ms) for learner in learners]
    for client in clients:
        client.seq = first_seq - 1
    await connect_all(clients, tally)
    t0 = time.perf_counter() + 0.5
    start, end = t0 + warmup, t0 + warmup + duration
    window = (start, end)
    pending: dict[asyncio.Task[None], float] = {}  # beat -> its scheduled time

    async def learner(client: _Client, first: float) -> None:
        due = first
        while due < end:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            client.seq += 1
            if start <= due:
                tally.scheduled += 1
            task = asyncio.create_task(client.send(client.seq, due, window, tally))
            pending[task] = due
            task.add_done_callback(pending.pop)
            due += interval * (1 + jitter * (2 * rnd.random() - 1))

    async def clock() -> tuple[float, float]:
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        opened = time.perf_counter()
        if on_window:
            on_window(True)
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
        closed = time.perf_counter()
        if on_window:
            on_window(False)
        return opened, closed

    schedules = [asyncio.create_task(learner(c, t0 + rnd.random() * interval)) for c in clients]
    opened, closed = await clock()
    await asyncio.gather(*schedules)
    if pending:
        _done, late = await asyncio.wait(set(pending), timeout=DRAIN_SECONDS)
        now = time.perf_counter()
        for task in late:
            due = pending.get(task, now)
            task.cancel()
            if due >= start:  # in the figures at what it waited so far: a lower bound
                tally.latencies.append(now - due)
                tally.error("unanswered")
    for client in clients:
        while not client.idle.empty():
            client.idle.get_nowait().writer.close()
    return tally, Window(start, end, opened, closed)
