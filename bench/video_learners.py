"""Issue 8, ingestion on VIDEO lessons: what a learner watching a lecture does besides beating.

Used by ``anti_idle_bench.py --only ingest --rate R --lesson-kind video`` with the open-loop
generator (bench/open_loop.py, whose transport sends the beats and times them). This module
says what each beat says and what the learner does with an answer, as the player
(themes/default/static/js/player.js) and the plugin's script (plugins/anti_idle/static/
anti_idle.js) do:

* **What a beat says.** An honest learner plays the lecture at 1x from the schedule's start:
  each beat claims the media time played since the previous beat (``segments``), which is the
  time between their scheduled moments (the player makes a beat at its interval and queues it
  while the previous one is in flight), and reports the position. Its ``client`` object carries
  the presence signals the plugin's script adds for a visible, focused tab playing at 1x.
* **Media bytes.** Video credit needs bytes served to the session's signed URL (R14: the
  delivered media bounds the credit). The learner fetches the lecture through its own signed
  URL (``/media/s/<token>``, issued for its learning session as the lesson page issues it), in
  ranges of :data:`CHUNK_MS` of media whenever less than :data:`LOOKAHEAD_MS` is buffered beyond
  what the next beat claims. Bounded ranges, as a segmenting player asks for them: the server
  counts a response's bytes when it closes (``media.services.record_delivery``), so one
  open-ended range streamed for minutes would count nothing until it ended.
* **Attention checks.** When a beat's answer says a check waits for the learner (its ``check``
  field), the plugin's script asks for it (``POST /anti-idle/sessions/<id>/check``); when one
  comes back, the learner reads the prompt and clicks the number asked for after a human delay
  (:data:`HUMAN_LATENCY_S`): a trusted pointer click (``POST /anti-idle/checks/<token>/answer``).
  (Before the answer carried ``check``, the script asked after every answered beat.)

These requests are the learner's other traffic, sent on a second keep-alive connection of its
own (a browser keeps several per site), never on the beats' connection, and counted and timed
apart (:class:`SideTally`), so the beats' latencies stay the beats'.
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from open_loop import Learner, Tally, Window

from plugins.anti_idle.envelope import sign_with_key

#: Media time one range request fetches: 10 s, as a segmenting player's segment (HLS: 6-10 s).
CHUNK_MS = 10_000
#: Media buffered beyond the next beat's claim below which the next range is fetched.
LOOKAHEAD_MS = 10_000
#: A human's time from a check appearing to the click (s): read the prompt, find the number.
HUMAN_LATENCY_S = (1.5, 4.0)
#: The video course's attention checks in the bench (a course override, as an admin makes
#: one for a test course): the defaults (first after 2-12 min of playing, then every 10-20
#: min) would never fall due in a run of seconds.
CHECK_POLICY = {
    "check_first_after_seconds": 10,
    "check_min_gap_seconds": 20,
    "check_max_gap_seconds": 40,
    "check_window_seconds": 30,
}
#: Side requests in flight at once while preloading (the lecture's first ranges).
PRELOAD_CONCURRENCY = 32
#: Media the learner's first beat of the day claims (played before the schedule starts). A
#: person-day's first claiming beat replays the day (~13 ms of CPU, handed to the view): that
#: beat goes before the measured run, as the document learners' first beat does (a beat
#: claiming nothing is not added to the day, so it would leave the replay to the window).
PRIME_MS = 1_000
#: First beats of the day in flight at once (``open_loop.prime``'s concurrency).
PRIME_CONCURRENCY = 16


@dataclass(frozen=True)
class Lecture:
    """The media file every learner plays: its size and its probed duration."""

    media_id: int
    size: int
    duration_ms: int

    def bytes_for(self, media_ms: int) -> int:
        """Bytes of the file that hold its first ``media_ms`` (proportionally, as for CBR)."""
        return min(self.size, math.ceil(self.size * min(media_ms, self.duration_ms) / self.duration_ms))


@dataclass
class SideTally:
    """The learners' other requests: (kind, started, done, status) each, plus what checks did."""

    requests: list[tuple[str, float, float, bytes]] = field(default_factory=list)
    media_bytes: int = 0
    checks_shown: int = 0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    samples: list[bytes] = field(default_factory=list)

    def note(self, kind: str, started: float, status: bytes, answer: bytes = b"") -> None:
        self.requests.append((kind, started, time.perf_counter(), status))
        if not status.startswith(b"2") and len(self.samples) < 3:
            self.samples.append(kind.encode() + b" " + status + b" " + answer[:200])

    def in_window(self, opened: float, closed: float) -> collections.Counter[str]:
        """Requests per kind answered between ``opened`` and ``closed`` (the CPU's window)."""
        return collections.Counter(kind for kind, _s, done, _st in self.requests if opened <= done < closed)

    def latencies_ms(self, kind: str, window: Window) -> list[float]:
        """Sorted latencies (ms) of the ``kind`` requests started in the window as scheduled."""
        return sorted(
            (done - started) * 1000
            for k, started, done, _st in self.requests
            if k == kind and window.start <= started < window.end
        )

    def errors(self) -> collections.Counter[str]:
        return collections.Counter(
            f"{kind} {status.decode()}" for kind, _s, _d, status in self.requests if status[:1] != b"2"
        )


class _Side:
    """A learner's second keep-alive connection (checks, answers, media), one exchange at a time."""

    def __init__(self, port: int, learner: Learner) -> None:
        self.port, self.learner = port, learner
        self.headers = (
            f"Host: 127.0.0.1:{port}\r\nCookie: {learner.cookie}\r\nX-CSRFToken: {learner.token}\r\n"
            "Accept-Encoding: identity\r\n"
        ).encode()
        self.lock = asyncio.Lock()
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def exchange(self, method: str, path: str, body: bytes = b"", extra: bytes = b"") -> tuple[bytes, bytes]:
        """``(status, body)`` of one request; an exception's name as the status if it failed."""
        request = b"%s %s HTTP/1.1\r\n%s%s" % (method.encode(), path.encode(), self.headers, extra)
        if body or method == "POST":
            request += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        request += b"\r\n" + body
        async with self.lock:
            for attempt in (1, 2):
                kept = self.streams is not None
                try:
                    if self.streams is None:
                        self.streams = await asyncio.open_connection(
                            "127.0.0.1", self.port, local_addr=(self.learner.address, 0)
                        )
                    reader, writer = self.streams
                    writer.write(request)
                    head = await reader.readuntil(b"\r\n\r\n")
                    at = head.lower().find(b"content-length:")
                    length = int(head[at + 15 : head.index(b"\r\n", at)]) if at >= 0 else 0
                    return head[9:12], await reader.readexactly(length)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                    self.close()
                    # A kept connection the server closed while idle: once more on a new one.
                    if not kept or attempt == 2:
                        return type(exc).__name__.encode(), b""
        return b"unreachable", b""  # pragma: no cover - the loop returns

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


class _Viewer:
    """One learner's playback: what it has fetched, its check in progress, its side connection."""

    __slots__ = (
        "side",
        "media_path",
        "check_path",
        "position_ms",
        "fetched_ms",
        "fetching",
        "polling",
        "again",
        "spent",
        "shown",
    )

    def __init__(self, side: _Side, media_path: str, check_path: str) -> None:
        self.side, self.media_path, self.check_path = side, media_path, check_path
        self.position_ms = 0  # as of the last beat answered
        self.fetched_ms = 0  # media time whose bytes were served
        self.fetching = False
        self.polling = False
        self.again = False  # a poll wanted while one was in flight: made when it returns (as the script)
        self.spent: str | None = None  # the last check answered
        self.shown: str | None = None  # the check on screen


def beat_body(seq: int, start: int, end: int) -> bytes:
    """A beat of 1x playback from ``start`` to ``end`` ms of the lecture, as the player and
    anti_idle.js say it (also bench/beat_split.py's video learners)."""
    played = end - start
    body = {
        "seq": seq,
        "event": "heartbeat",
        "segments": [[start / 1000, end / 1000]] if played > 0 else [],
        "position": end / 1000,
        "visible_ms": played,
        "client": {
            "visibility": "visible",
            "rate": 1,
            "muted": False,
            "presence": {  # a visible, focused tab playing at 1x, as anti_idle.js counts it
                "v": 1,
                "dt_ms": played,
                "hidden_ms": 0,
                "hidden_max_ms": 0,
                "blur_ms": 0,
                "focused": True,
                "raf": -(-played * 60 // 1000),  # at 60 Hz: a frame in any span played
                "ticks": played * 4 // 1000,
                "playing_ms": played,
                "muted_ms": 0,
                "rate_min": 1,
                "rate_max": 1,
                "input": {"pointer": 0, "key": 0, "touch": 0, "wheel": 0, "scroll": 0, "untrusted": 0},
                "path_px": 0,
                "probes": 0,
            },
            "webdriver": False,
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


class VideoLearners:
    """The video learners of one open-loop run: their beats' content and their other traffic.

    ``dues[i][seq]``: when learner ``i``'s beat ``seq`` falls due, in seconds from the
    schedule's start (``open_loop.schedule``); playback starts at 0 from the media's start.
    ``bare``: the same beats with no side request in the window, for an A/B of the beats' own
    cost: the media the whole run plays is fetched before it (:meth:`preload`), and no check is
    polled for (the checks the claims make owed are not answered: the run ends before the
    first one's window, :data:`CHECK_POLICY`, would lapse).
    """

    def __init__(
        self,
        port: int,
        learners: Sequence[Learner],
        media_paths: Sequence[str],
        lecture: Lecture,
        dues: Sequence[dict[int, float]],
        *,
        seed: int = 8,
        bare: bool = False,
    ) -> None:
        self.lecture, self.dues, self.bare = lecture, dues, bare
        self.viewers = [
            _Viewer(
                _Side(port, learner),
                media,
                learner.path.removesuffix("/beat").replace("/learn/", "/anti-idle/") + "/check",
            )
            for learner, media in zip(learners, media_paths, strict=True)
        ]
        self.tally = SideTally()
        self.rnd = random.Random(seed)  # noqa: S311 - a human's delays, not a secret
        self.tasks: set[asyncio.Task[None]] = set()

    # What a beat says ------------------------------------------------------------------

    def position_ms(self, i: int, seq: int) -> int:
        """Where learner ``i``'s playback is when beat ``seq`` is made: :data:`PRIME_MS` after
        its first beat (0 before it), then 1x from the schedule's start."""
        if seq <= 0:
            return 0
        due = self.dues[i].get(seq)
        return PRIME_MS if due is None else min(self.lecture.duration_ms, PRIME_MS + round(due * 1000))

    def content(self, i: int, seq: int, _visible_ms: int) -> bytes:
        """Beat ``seq`` of learner ``i``: the media played since its previous beat, as the player says it."""
        return beat_body(seq, self.position_ms(i, seq - 1), self.position_ms(i, seq))

    # What the learner does with an answer ---------------------------------------------

    def on_answer(self, client: Any, seq: int, status: bytes, body: bytes) -> None:
        """After beat ``seq`` is answered: fetch the next range if the buffer runs low, and ask
        for the check when the answer says one waits (as the plugin's script does)."""
        if not seq or status != b"200" or self.bare:
            return
        i = client.index
        viewer = self.viewers[i]
        viewer.position_ms = self.position_ms(i, seq)
        if not viewer.fetching and viewer.fetched_ms < min(
            self.lecture.duration_ms, self.position_ms(i, seq + 1) + LOOKAHEAD_MS
        ):
            self._spawn(self._fetch(viewer))
        if b'"check":' not in body:  # the answer's JSON, compact: the field is there only when a check waits
            return
        if viewer.polling:
            viewer.again = True
        else:
            self._spawn(self._poll(viewer))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _fetch(self, viewer: _Viewer) -> None:
        """The next :data:`CHUNK_MS` of media through the learner's signed URL (a bounded range)."""
        viewer.fetching = True
        try:
            lecture = self.lecture
            first, to_ms = lecture.bytes_for(viewer.fetched_ms), min(lecture.duration_ms, viewer.fetched_ms + CHUNK_MS)
            last = lecture.bytes_for(to_ms) - 1
            if last < first:
                return
            started = time.perf_counter()
            status, body = await viewer.side.exchange(
                "GET", viewer.media_path, extra=b"Range: bytes=%d-%d\r\n" % (first, last)
            )
            self.tally.note("media", started, status, body if status != b"206" else b"")
            if status == b"206" and len(body) == last - first + 1:
                viewer.fetched_ms = to_ms
                self.tally.media_bytes += len(body)
        finally:
            viewer.fetching = False

    async def _poll(self, viewer: _Viewer) -> None:
        """Ask whether a check is due (the script's ``poll``); show a new one to the learner."""
        viewer.polling = True
        try:
            while True:
                viewer.again = False
                started = time.perf_counter()
                body = json.dumps({"position": viewer.position_ms / 1000}).encode()
                status, answer = await viewer.side.exchange("POST", viewer.check_path, body)
                self.tally.note("poll", started, status, answer)
                check = json.loads(answer).get("check") if status == b"200" else None
                if check and check["token"] not in (viewer.spent, viewer.shown):
                    viewer.shown = check["token"]
                    self.tally.checks_shown += 1
                    self._spawn(self._answer(viewer, check))
                if not viewer.again:
                    return
        finally:
            viewer.polling = False

    async def _answer(self, viewer: _Viewer, check: dict[str, Any]) -> None:
        """Read the prompt, click the number it asks for after a human delay (a trusted click)."""
        latency = self.rnd.uniform(*HUMAN_LATENCY_S)
        await asyncio.sleep(latency)
        choice = next((o for o in check["options"] if o in check["prompt"]), check["options"][0])
        token = check["token"]
        body = json.dumps(
            {"answer": choice, "trusted": True, "latency_ms": round(latency * 1000), "input_mode": "pointer"}
        ).encode()
        started = time.perf_counter()
        status, answer = await viewer.side.exchange("POST", f"/anti-idle/checks/{token}/answer", body)
        self.tally.note("answer", started, status, answer)
        outcome = json.loads(answer).get("outcome") if status == b"200" else None
        self.tally.outcomes[outcome or f"HTTP {status.decode()}"] += 1
        viewer.spent, viewer.shown = token, None

    # Before and after the schedule ------------------------------------------------------

    async def preload(self) -> None:
        """Each learner's first ranges, before it plays (a player buffers before it starts):
        :data:`LOOKAHEAD_MS` + :data:`CHUNK_MS` of media, in ranges of :data:`CHUNK_MS`; ``bare``:
        all the run will play, and :data:`LOOKAHEAD_MS` more."""
        queue = list(range(len(self.viewers)))

        async def worker() -> None:
            while queue:
                i = queue.pop()
                viewer = self.viewers[i]
                ahead = self.position_ms(i, max(self.dues[i], default=1)) if self.bare else CHUNK_MS
                while viewer.fetched_ms < min(self.lecture.duration_ms, LOOKAHEAD_MS + ahead):
                    before = viewer.fetched_ms
                    await self._fetch(viewer)
                    if viewer.fetched_ms == before:
                        break  # refused: the figures say so

        await asyncio.gather(*(worker() for _ in range(PRELOAD_CONCURRENCY)))

    async def prime(self) -> Tally:
        """Each learner's first beat of the day (seq 1, claiming :data:`PRIME_MS`), signed as the
        player signs it, sent on its second connection before the schedule (as ``open_loop.prime``
        sends the document learners'), :data:`PRIME_CONCURRENCY` at a time; errors in the tally."""
        tally = Tally()
        queue = list(range(len(self.viewers)))

        async def worker() -> None:
            while queue:
                i = queue.pop()
                viewer = self.viewers[i]
                body = sign_with_key(viewer.side.learner.key, self.content(i, 1, 0))
                status, answer = await viewer.side.exchange("POST", viewer.side.learner.path, body)
                if status != b"200":
                    tally.error(f"prime {status.decode()}", answer)

        await asyncio.gather(*(worker() for _ in range(PRIME_CONCURRENCY)))
        return tally

    async def finish(self, timeout: float = 20.0) -> None:
        """Let the learners' requests in flight end (checks being answered), then close."""
        deadline = time.perf_counter() + timeout
        while self.tasks and time.perf_counter() < deadline:  # a poll's answer starts a task of its own
            await asyncio.wait(set(self.tasks), timeout=max(0.0, deadline - time.perf_counter()))
        for task in list(self.tasks):
            task.cancel()
        for viewer in self.viewers:
            viewer.side.close()


def media_paths(app: Any, learners: Sequence[Learner], media_id: int) -> list[str]:
    """Each learner's signed media URL for its learning session, as the lesson page issues it
    (``media.services.sign_token``: this user, this file, this session's key)."""
    from sqlalchemy import text

    from lms_core.extensions import db
    from lms_core.media.services import sign_token

    sessions = [learner.path.split("/")[-2] for learner in learners]
    with app.test_request_context():
        owners = dict(
            db.session.execute(
                text("SELECT id, user_id FROM learning_sessions WHERE id = ANY(:ids)"), {"ids": sessions}
            ).all()
        )
        return [f"/media/s/{sign_token(media_id, owners[s], s)}" for s in sessions]


def dues_of(plan: Sequence[tuple[float, int, int]], learners: int) -> list[dict[int, float]]:
    """``open_loop.schedule``'s plan as ``dues[learner][seq]`` (seconds from the schedule's start)."""
    dues: list[dict[int, float]] = [{} for _ in range(learners)]
    for due, i, seq in plan:
        dues[i][seq] = due
    return dues


async def calibrate(learners: VideoLearners, kind: str, count: int, concurrency: int = 4) -> None:
    """``count`` requests of ``kind`` (``poll``: the check poll; ``media``: one range of
    :data:`CHUNK_MS` from the media's start) on the learners' side connections, nothing else
    running: the caller reads the server's and PostgreSQL's CPU around it, the cost of one such
    request, to take the side traffic's share out of a window's CPU per beat."""
    lecture = learners.lecture
    last = lecture.bytes_for(CHUNK_MS) - 1
    queue = list(range(count))

    async def worker() -> None:
        while queue:
            viewer = learners.viewers[queue.pop() % len(learners.viewers)]
            if kind == "poll":
                await viewer.side.exchange("POST", viewer.check_path, b'{"position":0}')
            else:
                await viewer.side.exchange("GET", viewer.media_path, extra=b"Range: bytes=0-%d\r\n" % last)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def close(learners: VideoLearners) -> None:
    for viewer in learners.viewers:
        viewer.side.close()


@dataclass(frozen=True)
class Honest:
    """What the run's learners earned: the figures that show the bench measured honest work."""

    beats: int  # beats that claimed media or time
    credited_beats: int
    claimed_ms: int  # the ledger's, this lesson
    credited_ms: int
    verdicts: dict[str, int]  # person-days by verdict (after folding each one's running tally)
    day_claimed_ms: int
    day_credited_ms: int
    day_deducted_ms: int
    day_held_ms: int
    rules: dict[str, int]  # rules that cut or flagged anything, beats per rule


def honest(app: Any, url: str, names: Sequence[str], lesson_id: int) -> Honest:
    """Fold each learner's day (``verdicts.settle``: what the API adds on reading) and read back
    the share of beats credited, the ledger and the person-days' verdicts."""
    import psycopg

    from lms_core.extensions import db
    from plugins.anti_idle import verdicts

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM users WHERE username = ANY(%s)", (list(names),)).fetchall()]
    for first in range(0, len(ids), 200):
        with app.app_context():
            for user_id in ids[first : first + 200]:
                verdicts.settle(user_id)
            db.session.commit()
        with app.app_context():
            db.engine.dispose()
    with psycopg.connect(plain) as conn:
        beats, credited_beats = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE credited_ms > 0) FROM anti_idle_beats "
            "WHERE user_id = ANY(%s) AND lesson_id = %s AND claimed::text <> '[]'",
            (ids, lesson_id),
        ).fetchone()  # type: ignore[misc]
        claimed, credited = conn.execute(
            "SELECT coalesce(sum(claimed_ms), 0), coalesce(sum(credited_ms), 0) FROM learning_intervals "
            "WHERE user_id = ANY(%s) AND lesson_id = %s",
            (ids, lesson_id),
        ).fetchone()  # type: ignore[misc]
        by_verdict = conn.execute(
            "SELECT verdict, count(*), sum(claimed_ms), sum(credited_ms), sum(deducted_ms), sum(held_ms) "
            "FROM anti_idle_day_verdicts WHERE user_id = ANY(%s) GROUP BY verdict",
            (ids,),
        ).fetchall()
        rules = dict(
            conn.execute(
                "SELECT rule, count(*) FROM (SELECT jsonb_object_keys(cuts::jsonb) AS rule FROM anti_idle_beats "
                "WHERE user_id = ANY(%s) UNION ALL SELECT jsonb_array_elements_text(flags::jsonb) "
                "FROM anti_idle_beats WHERE user_id = ANY(%s)) AS r GROUP BY rule ORDER BY 2 DESC",
                (ids, ids),
            ).fetchall()
        )
    return Honest(
        int(beats),
        int(credited_beats),
        int(claimed),
        int(credited),
        {v: int(n) for v, n, *_ in by_verdict},
        sum(int(r[2] or 0) for r in by_verdict),
        sum(int(r[3] or 0) for r in by_verdict),
        sum(int(r[4] or 0) for r in by_verdict),
        sum(int(r[5] or 0) for r in by_verdict),
        {str(k): int(v) for k, v in rules.items()},
    )
