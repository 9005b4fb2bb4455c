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

The generator shares the machine's two cores with the server it measures, so what it costs
per beat is taken from the server: it signs every beat of the run before the schedule starts
(what a beat says depends on its seq alone), sends each as one ``write`` of ready bytes from a
single timer callback, and reads an answer by its status line and ``Content-Length`` only,
in asyncio ``Protocol``s on uvloop (:func:`run`). Two seams let a bench say what its beats say
and react to the answers without touching the transport: ``content`` (a beat's JSON for a
learner and seq) and ``on_answer`` (each answer, with :meth:`Client.post` for an extra request
on the learner's connection and :meth:`Client.replace` for a later beat).

Used by ``anti_idle_bench.py --only ingest --rate R``.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import random
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

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
#: The shortest sleep between two sends of the schedule (s): the loop's timers are
#: millisecond-coarse, and a shorter one would spin the loop until the next beat falls due.
MIN_SLEEP = 0.001

T = TypeVar("T")


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


def mint_learners(app: Any, lesson_id: int, names: Sequence[str], progress: int = 0) -> list[Learner]:
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
        if progress and len(out) % progress < MINT_CHUNK:
            print(f"    minted {len(out):,} of {len(names):,}", flush=True)
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
    #: Every beat of the schedule (warm-up and window): (due, latency) in seconds, ``due`` from
    #: the schedule's start; for :func:`per_second`. A beat left unanswered at the drain is in
    #: it at what it had waited by then (a lower bound).
    profile: list[tuple[float, float]] = field(default_factory=list)
    #: Seconds from the last connect of :func:`connect_all` until the server had accepted every
    #: connection (:func:`accepted`), before the schedule started.
    accept_wait: float = 0.0

    def error(self, kind: str, answer: bytes = b"") -> None:
        self.errors += 1
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if answer and len(self.samples) < 3:
            self.samples.append(answer[:300])


#: What a learner does with an answer (``on_answer``): called with the learner, the beat's seq
#: (0 for an extra request, :meth:`Client.post`), the status (``b"200"``, or an exception's name
#: when the exchange failed) and the answer's body. For clients that react as the player does
#: (an attention check to answer); the transport itself needs none.
OnAnswer = Callable[["Client", int, bytes, bytes], None]
#: A beat's unsigned JSON text for ``(learner index, seq, visible_ms)``; the generator signs it
#: as the player does. Default :func:`beat_body`.
BeatContent = Callable[[int, int, int], bytes]


class _Conn(asyncio.Protocol):
    """One TCP connection of a :class:`Client`: it only cuts the byte stream into answers.

    An answer is read from its status line and ``Content-Length`` and nothing else (the
    server's other headers are not parsed): the generator's CPU is taken from the server's."""

    __slots__ = ("client", "transport", "buf", "used")

    def __init__(self, client: Client) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.used = False  # an answer came on it: the server may close it while idle (keep-alive)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.client._made(self)

    def data_received(self, data: bytes) -> None:
        if self.buf:
            data = self.buf + data
        end = data.find(b"\r\n\r\n")
        if end < 0:
            self.buf = data
            return
        head = data[:end].lower()
        at = head.find(b"content-length:")
        length = 0
        if at >= 0:
            eol = head.find(b"\r\n", at)
            try:
                length = int(head[at + 15 : eol if eol >= 0 else end])
            except ValueError:
                self.buf = b""
                self.client._answered(self, b"ValueError", data)
                self.transport.close()  # type: ignore[union-attr]  # the stream is lost
                return
        stop = end + 4 + length
        if len(data) < stop:
            self.buf = data
            return
        self.buf = data[stop:]  # nothing, one request in flight at a time
        self.used = True
        self.client._answered(self, data[9:12], data[end + 4 : stop])

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.client._lost(self, exc)


#: An exchange waiting or in flight: (scheduled send time, request bytes, seq or 0, its own
#: on_answer for an extra request, already retried once on a new connection).
_Item = tuple[float, bytes, int, "OnAnswer | None", bool]


class Client:
    """One learner: its own loopback address, one keep-alive connection, its beats in order.

    A beat due while the last is in flight waits in ``queue`` and is sent the moment the
    answer is read (as the player queues it); latency runs from its scheduled time."""

    def __init__(self, index: int, port: int, learner: Learner, run: _Run) -> None:
        self.index, self.port, self.learner, self.run = index, port, learner, run
        self.host = b"Host: 127.0.0.1:%d\r\n" % port
        self.headers = (
            f"Cookie: {learner.cookie}\r\nX-CSRFToken: {learner.token}\r\n"
            "Content-Type: application/json\r\nAccept-Encoding: identity\r\n"
        ).encode()
        self.head = b"POST " + learner.path.encode() + b" HTTP/1.1\r\n" + self.host + self.headers
        self.conn: _Conn | None = None
        self.connecting = False
        self.queue: collections.deque[_Item] = collections.deque()
        self.inflight: _Item | None = None
        #: The beats' requests by seq, signed ahead of the schedule (:meth:`prepare`).
        self.requests: dict[int, bytes] = {}

    # The requests ------------------------------------------------------------------

    def request(self, body: bytes, head: bytes | None = None) -> bytes:
        """``body`` (signed already, or not a beat) as a request on the beat's path (or ``head``'s)."""
        return (head or self.head) + b"Content-Length: %d\r\n\r\n" % len(body) + body

    def sign(self, body: bytes) -> bytes:
        """``body`` signed as the player signs it (:func:`plugins.anti_idle.envelope.sign_with_key`)."""
        return sign_with_key(self.learner.key, body)

    def prepare(self, seqs: Iterable[int], content: BeatContent, visible_ms: int) -> None:
        """Sign the beats ``seqs`` ahead: the schedule of an open loop is known in advance, and
        what a beat says depends on its seq alone, so sending one is a ``write`` of ready bytes."""
        for seq in seqs:
            self.requests[seq] = self.request(self.sign(content(self.index, seq, visible_ms)))

    def replace(self, seq: int, body: bytes) -> None:
        """Beat ``seq`` (not sent yet) says ``body`` instead (signed here): for ``on_answer``."""
        self.requests[seq] = self.request(self.sign(body))

    def post(self, path: str, body: bytes, on_answer: OnAnswer | None = None) -> None:
        """An extra request (not a beat: an attention check's answer, say) on this learner's
        connection, next after the one in flight; not in the figures, ``on_answer`` gets its answer."""
        head = b"POST " + path.encode() + b" HTTP/1.1\r\n" + self.host + self.headers
        self._enqueue((time.perf_counter(), self.request(body, head), 0, on_answer, False), first=True)

    # The transport -------------------------------------------------------------------

    def beat(self, seq: int, scheduled: float) -> None:
        """Beat ``seq`` falls due now (scheduled at ``scheduled``)."""
        self._enqueue((scheduled, self.requests.pop(seq), seq, None, False))

    def _enqueue(self, item: _Item, first: bool = False) -> None:
        self.run.outstanding += 1
        conn = self.conn
        if self.inflight is None and conn is not None and conn.transport is not None:
            self.inflight = item
            conn.transport.write(item[1])
            return
        if first:
            self.queue.appendleft(item)
        else:
            self.queue.append(item)
        if conn is None and not self.connecting:
            self._connect()

    def _next(self) -> None:
        """The next queued exchange, on the connection or on a new one."""
        if not self.queue:
            return
        conn = self.conn
        if conn is not None and conn.transport is not None:
            item = self.inflight = self.queue.popleft()
            conn.transport.write(item[1])
        elif not self.connecting:
            self._connect()

    def _connect(self) -> None:
        self.connecting = True
        self.run.tally.connections += 1
        self.run.loop.create_task(self._open())

    async def _open(self) -> None:
        """A new connection from the learner's own address; then the queue goes on."""
        try:
            await self.run.loop.create_connection(
                lambda: _Conn(self), "127.0.0.1", self.port, local_addr=(self.learner.address, 0)
            )
        except OSError as exc:
            self.connecting = False
            if self.queue:  # the beat that wanted it fails, as a failed connect fails one send
                self._finish(self.queue.popleft(), type(exc).__name__.encode(), b"")
            self._next()
            return
        self.connecting = False

    def _made(self, conn: _Conn) -> None:
        self.conn = conn
        self._next()

    def _answered(self, conn: _Conn, status: bytes, body: bytes) -> None:
        item, self.inflight = self.inflight, None
        if item is not None:
            self._finish(item, status, body)
        self._next()

    def _lost(self, conn: _Conn, exc: Exception | None) -> None:
        if conn is not self.conn:
            return
        self.conn = None
        item, self.inflight = self.inflight, None
        if item is not None:
            # A kept connection the server closed (its keep-alive timeout): once more on a new
            # one, as a browser does. A new one that fails is an error.
            if conn.used and not item[4]:
                self.queue.appendleft((*item[:4], True))
            else:
                self._finish(item, (type(exc).__name__ if exc else "IncompleteReadError").encode(), b"")
        if self.queue and not self.connecting:
            self._connect()

    def _finish(self, item: _Item, status: bytes, body: bytes) -> None:
        self.run.finished(self, item, status, body)

    def close(self) -> None:
        if self.conn is not None and self.conn.transport is not None:
            conn, self.conn = self.conn, None
            conn.transport.close()  # type: ignore[union-attr]


class _Run:
    """What a run's clients share: the loop, the tally, the window and the answers outstanding."""

    def __init__(self, tally: Tally, window: tuple[float, float] | None, on_answer: OnAnswer | None) -> None:
        self.loop = asyncio.get_running_loop()
        self.tally, self.window, self.on_answer = tally, window, on_answer
        self.outstanding = 0
        self.t0 = 0.0  # the schedule's start (``perf_counter``), for ``Tally.profile``
        self.idle: asyncio.Future[None] | None = None  # set when ``outstanding`` falls to 0

    def finished(self, client: Client, item: _Item, status: bytes, body: bytes) -> None:
        """An exchange answered (or failed): into the tally as the window says."""
        done = time.perf_counter()
        scheduled, _request, seq, on_answer, _retried = item
        tally = self.tally
        if not seq:  # an extra request: its caller's
            if on_answer is not None:
                on_answer(client, seq, status, body)
        else:
            if self.window is None:
                if status != b"200":
                    tally.error(f"prime {status.decode()}", body)
            else:
                tally.done.append(done)
                tally.profile.append((scheduled - self.t0, done - scheduled))
                start, end = self.window
                if start <= scheduled < end:
                    tally.latencies.append(done - scheduled)
                    if status != b"200":
                        tally.error(status.decode(), body)
            if self.on_answer is not None:
                self.on_answer(client, seq, status, body)
        self.outstanding -= 1
        if not self.outstanding and self.idle is not None and not self.idle.done():
            self.idle.set_result(None)

    async def drained(self, timeout: float) -> bool:
        """Wait until every exchange is answered, at most ``timeout`` s; whether they all were."""
        if self.outstanding:
            self.idle = self.loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self.idle), timeout)
            except TimeoutError:
                return False
        return True


async def connect_all(clients: Sequence[Client], concurrency: int = 64) -> None:
    """One kept connection per learner, ``concurrency`` connects at a time (before a schedule
    starts: no burst of connects in the window)."""
    queue = list(clients)

    async def worker() -> None:
        while queue:
            client = queue.pop()
            client.run.tally.connections += 1
            await client.run.loop.create_connection(
                functools.partial(_Conn, client), "127.0.0.1", client.port, local_addr=(client.learner.address, 0)
            )

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def _accept_queue(port: int) -> int | None:
    """Connections waiting in the accept queue of the socket listening on ``port`` (the
    ``rx_queue`` of its ``LISTEN`` line in ``/proc/net/tcp``/``tcp6``); None: no such socket
    (not Linux, or the server is elsewhere)."""
    found = None
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as lines:  # noqa: PTH123 - a procfs file read in one go
                rows = lines.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found = (found or 0) + int(fields[4].split(":")[1], 16)
    return found


async def accepted(port: int, timeout: float = 30.0, settle: int = 3) -> float:
    """Wait until the server has accepted every connection made to ``port`` (its accept queue
    empty ``settle`` times in a row, 20 ms apart); the seconds waited.

    The kernel completes a TCP handshake by itself and queues the connection; the server
    accepts it (and uvicorn sets up its protocol) only when its loop gets to it. Opened just
    before the schedule, thousands of connections were still being accepted as the first beats
    fell due, and the first second's beats waited behind them: a start the bench made, not
    the server (a real server's learners connected long before their next beat)."""
    started = time.perf_counter()
    calm = 0
    while calm < settle and time.perf_counter() - started < timeout:
        waiting = _accept_queue(port)
        if waiting is None:
            break
        calm = calm + 1 if waiting == 0 else 0
        await asyncio.sleep(0.02)
    return time.perf_counter() - started


def per_second(tally: Tally, warmup: float) -> list[dict[str, float]]:
    """The schedule's beats by the second they fell due in (``second`` from the window's start:
    the warm-up's are negative): count, p50, p99 and max latency (ms). Shows whether a run's
    tail is a start transient (the first seconds' beats late, the later ones not) or a
    steady queue."""
    by: dict[int, list[float]] = {}
    for due, latency in tally.profile:
        by.setdefault(int(due // 1), []).append(latency * 1000)
    out = []
    for k in sorted(by):
        values = sorted(by[k])
        n = len(values)
        out.append(
            {
                "second": k - round(warmup),
                "n": n,
                "p50_ms": round(values[min(n - 1, n // 2)], 1),
                "p99_ms": round(values[min(n - 1, (99 * n) // 100)], 1),
                "max_ms": round(values[-1], 1),
            }
        )
    return out


def format_per_second(rows: Sequence[dict[str, float]], per_line: int = 5) -> str:
    """:func:`per_second` compactly: ``second: n p50/p99/max`` (ms), a few seconds a line."""
    cells = [
        f"{r['second']:>4.0f}s {r['n']:>5.0f} {r['p50_ms']:>6.0f}/{r['p99_ms']:>6.0f}/{r['max_ms']:>6.0f}" for r in rows
    ]
    return "\n".join("    " + " | ".join(cells[i : i + per_line]) for i in range(0, len(cells), per_line))


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop when it is installed (the ``asgi``/``test`` extras): its loop
    costs the generator less CPU per exchange than the default one, and the CPU is what the
    machine's two cores share with the server."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with the asgi and test extras
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


async def prime(
    port: int,
    learners: Sequence[Learner],
    visible_ms: int,
    concurrency: int = 128,
    seqs: Sequence[int] = (),
    progress: int = 0,
) -> Tally:
    """Each learner's first beat of the day, ``concurrency`` at a time, before the measured run:
    a person-day's first beat replays the day (in the writer's group round, as a start-of-day
    rush meets it: ``concurrency`` beats in flight fill its groups); at 20,000 learners those
    are spread over the morning, not all in one measured minute."""
    tally = Tally()
    waiting: dict[int, asyncio.Future[None]] = {}

    def answered(client: Client, _seq: int, _status: bytes, _body: bytes) -> None:
        waiting.pop(client.index).set_result(None)

    state = _Run(tally, None, answered)  # no window: only errors are counted
    clients = [Client(i, port, learner, state) for i, learner in enumerate(learners)]
    firsts = [*seqs, *[1] * (len(clients) - len(seqs))]  # ``seqs``: each learner's next seq
    queue = list(reversed(range(len(clients))))
    done = [0]

    async def worker() -> None:
        while queue:
            i = queue.pop()
            client = clients[i]
            client.prepare([firsts[i]], _default_content, visible_ms)
            waiting[i] = state.loop.create_future()
            client.beat(firsts[i], time.perf_counter())
            await waiting[i]
            client.close()  # one beat each: 20,000 learners' connections would not fit a process's files
            done[0] += 1
            if progress and done[0] % progress == 0:
                print(f"    primed {done[0]:,} of {len(clients):,}", flush=True)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    for client in clients:
        client.close()
    return tally


@dataclass(frozen=True)
class Window:
    """The measured window: as scheduled (``start``, ``end``) and as the CPU was read (``opened``,
    ``closed``; later than scheduled when the generator's loop is behind)."""

    start: float
    end: float
    opened: float
    closed: float


def schedule(
    learners: int,
    interval: float,
    span: float,
    *,
    jitter: float,
    first_seq: int,
    rnd: random.Random,
    first_seqs: Sequence[int] | None = None,
) -> list[tuple[float, int, int]]:
    """The run's beats as ``(due, learner, seq)`` in the order they fall due, ``due`` in seconds
    from the schedule's start: each learner's first beat at a random point of the first
    interval, then one every ``interval`` ± ``jitter``, until ``span``. ``first_seqs``: each
    learner's own first seq (a day that goes on after an earlier run), else ``first_seq``."""
    firsts = [rnd.random() * interval for _ in range(learners)]
    plan: list[tuple[float, int, int]] = []
    for i, due in enumerate(firsts):
        seq = first_seqs[i] if first_seqs is not None else first_seq
        while due < span:
            plan.append((due, i, seq))
            seq += 1
            due += interval * (1 + jitter * (2 * rnd.random() - 1))
    plan.sort()
    return plan


async def drive(
    port: int,
    learners: Sequence[Learner],
    rate: float,
    warmup: float,
    duration: float,
    *,
    jitter: float = 0.1,
    first_seq: int = 1,
    on_window: Callable[[bool], None] | None = None,
    seed: int = 8,
    content: BeatContent | None = None,
    on_answer: OnAnswer | None = None,
    start_at: Callable[[], float] | None = None,
    first_seqs: Sequence[int] | None = None,
) -> tuple[Tally, Window]:
    """Offer ``rate`` beats/s spread over ``learners`` for ``warmup + duration`` seconds.

    Returns the tally and the window. ``on_window(opening: bool)`` is called (blocking) as the
    measured window opens and closes: CPU readings go there. ``content`` says what each beat
    says (default :func:`beat_body`), ``on_answer`` hears each beat's answer (:data:`OnAnswer`).

    Every beat is signed before the schedule starts (:meth:`Client.prepare`); in the run one
    timer callback sends the beats due, each a ``write`` of its bytes.
    """
    interval = len(learners) / rate
    visible_ms = round(interval * 1000)
    rnd = random.Random(seed)  # noqa: S311 - a schedule's jitter, not a secret
    tally = Tally()
    state = _Run(tally, None, on_answer)
    clients = [Client(i, port, learner, state) for i, learner in enumerate(learners)]
    plan = schedule(
        len(clients), interval, warmup + duration, jitter=jitter, first_seq=first_seq, rnd=rnd, first_seqs=first_seqs
    )
    seqs: list[list[int]] = [[] for _ in clients]
    for _due, i, seq in plan:
        seqs[i].append(seq)
    beat_content = content or _default_content
    for client, mine in zip(clients, seqs, strict=True):
        client.prepare(mine, beat_content, visible_ms)
    await connect_all(clients)
    tally.accept_wait = await accepted(port)
    # ``start_at``: the schedule's start (``perf_counter``) shared with other generator
    # processes (:func:`drive_split`), asked once every connection is open.
    t0 = start_at() if start_at is not None else time.perf_counter() + 0.5
    start, end = t0 + warmup, t0 + warmup + duration
    state.window, state.t0 = (start, end), t0
    dues = [t0 + due for due, _i, _seq in plan]
    tally.scheduled = sum(due >= start for due in dues)
    loop = state.loop
    sent = loop.create_future()
    at = 0

    def tick() -> None:
        """Send every beat due by now; then sleep until the next (at least a millisecond: the
        loop's timers are that coarse, and a shorter sleep would spin). A beat sent late is
        counted late: its latency runs from ``dues``."""
        nonlocal at
        now = time.perf_counter()
        while at < len(plan) and dues[at] <= now:
            _due, i, seq = plan[at]
            clients[i].beat(seq, dues[at])
            at += 1
        if at < len(plan):
            loop.call_later(max(MIN_SLEEP, dues[at] - time.perf_counter()), tick)
        else:
            sent.set_result(None)

    async def until(moment: float) -> float:
        # uvloop's timers are millisecond-coarse and may wake a little early: sleep again.
        while (left := moment - time.perf_counter()) > 0:
            await asyncio.sleep(left)
        return time.perf_counter()

    async def clock() -> tuple[float, float]:
        opened = await until(start)
        if on_window:
            on_window(True)
        closed = await until(end)
        if on_window:
            on_window(False)
        return opened, closed

    if plan:
        loop.call_later(max(0.0, dues[0] - time.perf_counter()), tick)
    else:
        sent.set_result(None)
    opened, closed = await clock()
    await sent
    if not await state.drained(DRAIN_SECONDS):
        now = time.perf_counter()
        for client in clients:
            for scheduled, _request, seq, _on_answer, _retried in [
                *([client.inflight] if client.inflight else []),
                *client.queue,
            ]:
                if seq:
                    tally.profile.append((scheduled - t0, now - scheduled))
                if seq and scheduled >= start:  # in the figures at what it waited so far: a lower bound
                    tally.latencies.append(now - scheduled)
                    tally.error("unanswered")
    for client in clients:
        client.close()
    return tally, Window(start, end, opened, closed)


def _default_content(_learner: int, seq: int, visible_ms: int) -> bytes:
    return beat_body(seq, visible_ms)


#: Learners one generator process drives at most (:func:`drive_split`): each holds a connection,
#: and a process may open 20,000 files on this machine (``ulimit -n``, not raisable here).
LEARNERS_PER_PROCESS = 10_000


def drive_split(
    port: int,
    learners: Sequence[Learner],
    rate: float,
    warmup: float,
    duration: float,
    *,
    processes: int,
    first_seq: int = 1,
    on_window: Callable[[bool], None] | None = None,
    jitter: float = 0.1,
    seed: int = 8,
    first_seqs: Sequence[int] | None = None,
) -> tuple[Tally, Window, float]:
    """:func:`drive` in ``processes`` forked processes, each with a share of the learners and of
    the rate, on one schedule start: for more learners than one process's files allow (the
    issue's 20,000 at a 10 s cadence). Blocking (call it outside any event loop). Returns the
    merged tally, the window (``on_window`` is called here, in this process, at its start and
    end) and the generator processes' CPU seconds over the window."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    pipes, procs = [], []
    for k in range(processes):
        ours, theirs = ctx.Pipe()
        share = list(learners[k::processes])
        part_rate = rate * len(share) / len(learners)
        proc = ctx.Process(
            target=_drive_part,
            args=(
                theirs,
                port,
                share,
                part_rate,
                warmup,
                duration,
                first_seq,
                jitter,
                seed + k,
                None if first_seqs is None else list(first_seqs[k::processes]),
            ),
            daemon=True,
        )
        proc.start()
        pipes.append(ours)
        procs.append(proc)
    for pipe in pipes:
        if pipe.recv() != "ready":  # every beat signed, every connection open
            raise RuntimeError("a generator process did not get ready")
    t0 = time.perf_counter() + 0.5
    for pipe in pipes:
        pipe.send(t0)
    start, end = t0 + warmup, t0 + warmup + duration
    time.sleep(max(0.0, start - time.perf_counter()))
    opened = time.perf_counter()
    if on_window:
        on_window(True)
    time.sleep(max(0.0, end - time.perf_counter()))
    closed = time.perf_counter()
    if on_window:
        on_window(False)
    tally, cpu = Tally(), 0.0
    for pipe, proc in zip(pipes, procs, strict=True):
        part, part_cpu = pipe.recv()
        proc.join()
        cpu += part_cpu
        tally.latencies += part.latencies
        tally.done += part.done
        tally.profile += part.profile  # due times from the one shared schedule start
        tally.accept_wait = max(tally.accept_wait, part.accept_wait)
        tally.samples += part.samples[: max(0, 3 - len(tally.samples))]
        tally.scheduled += part.scheduled
        tally.errors += part.errors
        tally.connections += part.connections
        for kind, n in part.kinds.items():
            tally.kinds[kind] = tally.kinds.get(kind, 0) + n
    return tally, Window(start, end, opened, closed), cpu


def _drive_part(
    pipe: Any,
    port: int,
    learners: list[Learner],
    rate: float,
    warmup: float,
    duration: float,
    first_seq: int,
    jitter: float,
    seed: int,
    first_seqs: list[int] | None = None,
) -> None:
    """One process of :func:`drive_split`: its learners' schedule; its CPU over the window."""
    marks: list[float] = []

    def start_at() -> float:
        pipe.send("ready")
        return float(pipe.recv())

    def on_window(_opening: bool) -> None:
        marks.append(time.process_time())

    tally, _window = run(
        drive(
            port,
            learners,
            rate,
            warmup,
            duration,
            jitter=jitter,
            first_seq=first_seq,
            on_window=on_window,
            seed=seed,
            start_at=start_at,
            first_seqs=first_seqs,
        )
    )
    pipe.send((tally, marks[1] - marks[0] if len(marks) == 2 else 0.0))
