"""Rules judged once per person-day, over the whole day (and, for R10d and R17, the 14 before it).

The per-beat rules (``els.assess``) decide what each heartbeat earns, inside its
transaction and without extra SQL. The rules here need more than one beat's view:
patterns over a day (forward skips per lesson, the timing of session starts and
check answers, continuous hours), nights across a fortnight, and other people's
sessions (one device driving several accounts, 代刷). They remove no time: they add
to the day's review score, which holds the day at ``hold_score``, and each writes an
evidence line. They run in the day assessment (``assess_day``: when a day's verdict
changes, and in ``flask lms anti-idle recompute``), never per beat.

:func:`judge` is deterministic for the same stored inputs and policy version, like
the replay it follows. Its result is kept in the day's tally (``day_rules``), so the
online path keeps scoring the day with it until the next assessment.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import ipaddress
import json
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Integer, Text, bindparam, case, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from lms_core.db import UTCDateTime
from lms_core.extensions import db
from lms_core.learning.models import LearningSession
from plugins.anti_idle import els
from plugins.anti_idle.inputs import day_bounds
from plugins.anti_idle.models import AttentionCheck, Beat, DayLesson, DayVerdict

#: Severity and score per rule (design §3.4); the thresholds are policy parameters.
SCORES = {
    "R02": 15,
    "R07h": 0,
    "R07o": 0,
    "R09": 20,
    "R10c": 10,
    "R10d": 15,
    "R12": 40,
    "R12d": 40,
    "R15": 20,
    "R17": 0,
}
#: A claim that starts this far past the previous one's end is a forward skip.
SKIP_SLACK_MS = 2000
#: Beijing night: 00:00 to 05:00.
NIGHT_END_HOUR = 5
#: Window of the fortnight rules (R10d, R17), today included.
WINDOW_DAYS = 14
#: Lessons below this count in a course have no meaningful "shortest tenth" (R17).
CHERRY_POOL_MIN = 10
#: The shipped data-centre ranges (R12d), used unless the setting names others.
RANGES_FILE = Path(__file__).with_name("datacentre_ranges.txt")

Outcomes = Sequence[tuple[Beat, els.Outcome]]


class Prefetched:
    """What the day rules read from the database, read once for many person-days.

    The bulk recompute judges a chunk of people before writing any of their days, so
    every day of the chunk would read the same stored rows: reading them here, in one
    statement per kind for the whole chunk, gives each day exactly what its own
    queries would have returned, without a round trip per day (they dominated the
    recompute). The one-day path passes no context and queries as it goes.
    """

    def __init__(self, users: Sequence[int], days: Sequence[dt.date], session_ids: Sequence[str]) -> None:
        #: Session id -> row with ``ip`` and ``user_agent`` (R12).
        self.sessions: dict[str, Any] = {
            r.id: r
            for r in db.session.execute(
                select(LearningSession.id, LearningSession.ip, LearningSession.user_agent).where(
                    LearningSession.id.in_(sorted(set(session_ids)))
                )
            )
        }
        #: The data-centre ranges (R12d): a setting and a file, read once rather than per day.
        self.networks = datacentre_networks()
        first, last = min(days), max(days)
        #: Person -> [(day, lesson)] credited on the fortnight's earlier days (R17).
        self.studied: dict[int, list[tuple[dt.date, int]]] = defaultdict(list)
        for uid, day, lid in db.session.execute(
            select(DayLesson.user_id, DayVerdict.day, DayLesson.lesson_id)
            .join(DayVerdict, DayVerdict.id == DayLesson.day_verdict_id)
            .where(
                DayLesson.user_id.in_(sorted(set(users))),
                DayVerdict.day >= first - dt.timedelta(days=WINDOW_DAYS - 1),
                DayVerdict.day < last,
                DayLesson.credited_ms > 0,
            )
        ):
            self.studied[uid].append((day, lid))
        #: (Beijing day, address) -> credited beats of sessions from that address (R12).
        self.neighbours: dict[tuple[dt.date, str], list[Any]] = defaultdict(list)
        ips = sorted({r.ip for r in self.sessions.values() if r.ip})
        if ips:
            start, _e = day_bounds(first)
            _s, end = day_bounds(last)
            for row in db.session.execute(_neighbour_query(start, end, ips)):
                self.neighbours[(els.beijing_day(row.received_at), row.ip)].append(row)


def _entry(
    rule: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    amount_ms: int = 0,
    fired: bool = True,
    params: Mapping[str, Any] | None = None,
    beat_ids: Sequence[int] = (),
    lesson_id: int | None = None,
    variant: str = "",
) -> dict[str, Any]:
    """One day rule's finding, JSON-ready (kept in the tally)."""
    return {
        "score": SCORES[rule] if fired else 0,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "amount_ms": int(amount_ms),
        "params": dict(params or {}),
        "beat_ids": list(beat_ids)[:500],
        "lesson_id": lesson_id,
        "variant": variant,
    }


def _cv(values: Sequence[float]) -> float | None:
    """Coefficient of variation (population), or None when it says nothing."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    if mean <= 0:
        return None
    return statistics.pstdev(values) / mean


# --- R02: forward skips ------------------------------------------------------------------


def skips(outcomes: Outcomes, policy: Mapping[str, Any]) -> dict[str, Any] | None:
    """Media jumped over within a session, per lesson.

    A session's first claim may start anywhere (resuming where one left off is
    honest); after that, a claim that starts beyond the previous claim's end skipped
    the media in between. Skipped media is never credited (it was not claimed), and
    completion needs coverage anyway: this rule tells the learner why the lesson is
    not complete and scores a day that skips through many lessons.
    """
    last_end: dict[str, int] = {}
    per_lesson: dict[int, int] = defaultdict(int)
    durations: dict[int, int] = {}
    beat_ids: list[int] = []
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    for b, _o in outcomes:
        if b.lesson_kind != "video" or not b.claimed:
            continue
        start = int(b.claimed[0][0])
        prev = last_end.get(b.session_id)
        if prev is not None and start > prev + SKIP_SLACK_MS:
            per_lesson[b.lesson_id] += start - prev
            durations[b.lesson_id] = int(b.media_duration_ms or 0)
            beat_ids.append(b.id)
            first = first or b.wall_start
            last = b.received_at
        last_end[b.session_id] = max(int(b.claimed[-1][1]), prev or 0)
    share = float(policy["skip_share"])
    skipped = [lid for lid, ms in per_lesson.items() if durations[lid] and ms > share * durations[lid]]
    if not skipped or first is None or last is None:
        return None
    return _entry(
        "R02",
        first,
        last,
        amount_ms=sum(per_lesson[lid] for lid in skipped),
        fired=len(skipped) >= int(policy["skip_lessons"]),
        params={"lessons": len(skipped), "share": round(share * 100)},
        beat_ids=beat_ids,
        lesson_id=skipped[0] if len(skipped) == 1 else None,
    )


# --- R07h: presence never proven before a check lapsed ------------------------------------


def judgement_time(day: dt.date, now: dt.datetime | None = None, checks: Sequence[AttentionCheck] = ()) -> dt.datetime:
    """The time a day is judged at: ``now`` while the day runs, its end once it is over,
    or later: the due time of a check issued that day whose window runs past midnight.

    A check counts as lapsed once its window (and any offline relief, R07o) is over by
    this time without a valid answer, whether or not a beat of the person came after it:
    a script that stops beating when a check shows, or a player paused when the window ran
    out, leaves no beat to close it. Judging at the day's end once the day is over makes a
    recompute deterministic; while it runs, a job at each window's end judges the day again
    (``rejudge``), so the online verdict changes with no further beat.

    A check shown at 23:59:30 with a 60 s window is the issue day's (its job re-judges that
    day at 00:00:30): judged at the day's end it was still open and held nothing, so a bot
    that never answers kept the evening's minutes before it. The day is judged when that
    window is over, with the answer given in it (:func:`_day_checks`).
    """
    start, end = day_bounds(day)
    now = now if now is not None else dt.datetime.now(dt.UTC)
    crossing = [c.due_at for c in checks if start <= c.issued_at < end and c.due_at > end]
    return min(now, max([end, *crossing]))


def horizon(checks: Sequence[Any], day: dt.date, at: dt.datetime, floor_ms: int) -> dict[str, list[int]]:
    """What R07h and R07o know of the day's checks at ``at``: the checks lapsed (their window,
    and any offline relief, over without a valid answer, or answered wrongly or by a script)
    and those validly answered, each by its issue time (µs). The day assessment keeps it in
    the tally (``Tally.horizon``); a beat computes it again from the checks it read and
    replays the day when it differs (``verdicts.record_online``): a due time, a relief's end
    or an answer passed since the last assessment triggers one replay, whether or not a job
    or the answer's own event came first. ``checks``: ``AttentionCheck`` rows or
    ``els.CheckInput``; those of the Beijing day (due in it, issued before its end)."""
    start, end = day_bounds(day)
    lapsed: list[int] = []
    proven: list[int] = []
    for c in checks:
        if c.issued_at > at or c.issued_at >= end or c.due_at < start:
            continue
        answered = _day_answer(c, c.answered_at if c.answered_at is not None and c.answered_at <= at else None, end)
        valid = _valid(c, answered, floor_ms)
        reached = c.reached_at
        relief = reached + (c.due_at - c.issued_at) if c.silent and reached is not None and reached <= at else None
        closes = max(c.due_at, relief or c.due_at)
        if valid:
            proven.append(els.us_of(c.issued_at))
        # As ``unverified`` counts a lapse: also a valid answer after the window.
        if (valid and answered is not None and answered > closes) or (
            not valid and (answered is not None or closes <= at)
        ):
            lapsed.append(els.us_of(c.issued_at))
    return {"lapsed": sorted(lapsed), "proven": sorted(proven)}


def _day_answer(c: Any, answered: dt.datetime | None, day_end: dt.datetime) -> dt.datetime | None:
    """``answered`` as the check's day sees it: an answer after the day's end is the next
    day's, except one given in the check's window (a window crossing midnight)."""
    if answered is not None and answered >= day_end and answered > c.due_at:
        return None
    return answered


def _valid(c: Any, answered: dt.datetime | None, floor_ms: int) -> bool:
    """A valid answer: given, correct, by a trusted event, not faster than a person can."""
    return (
        answered is not None
        and c.outcome == "passed"
        and c.trusted is not False
        and not (c.latency_ms is not None and c.latency_ms < floor_ms)
    )


def _day_checks(
    outcomes: Outcomes, checks: Sequence[AttentionCheck], policy: Mapping[str, Any], at: dt.datetime
) -> tuple[dt.datetime, list[tuple[dt.datetime, dt.datetime, dt.datetime | None, bool, dt.datetime | None]]]:
    """(the day's last receive, and per check issued by ``at``, the judgement time: issued,
    due, the answer given that day, whether it is valid, and the end of its new window when
    it fell due offline)."""
    floor = int(policy["human_latency_floor_ms"])
    # Checks issued by the judgement time (also after the day's last beat: a check shown to
    # a player that then stops beating), and the answers given that day: an answer is
    # evidence of the day also when it comes after the last beat (a learner back online
    # answers the check the lapse paused the video on, and plays no more). Answering a
    # check re-judges its day (verdicts.on_check_answered), so the online verdict and the
    # recompute agree; R09 and R15 read the day's answers the same way.
    last_beat = max(b.received_at for b, _o in outcomes)
    day_end = els.at_us(els.day_end_us(els.us_of(last_beat)))
    # ``at`` is past the day's end only for a check whose window crosses midnight
    # (judgement_time): checks issued and beats returning after midnight stay the next day's.
    within = min(at, day_end)
    judged = []
    for c in checks:
        if c.issued_at > within:
            continue
        answered = _day_answer(c, c.answered_at, day_end)
        valid = _valid(c, answered, floor)
        # Offline when it fell due (els.Checks.spans): its window started again at the
        # person's first beat after the due time (a beat of this day, or none).
        reached = getattr(c, "reached_at", None)
        relief = None
        if getattr(c, "silent", False) and reached is not None and reached <= within:
            relief = reached + (c.due_at - c.issued_at)
        judged.append((c.issued_at, c.due_at, answered, valid, relief))
    judged.sort(key=lambda c: c[0])
    return last_beat, judged


def unverified(
    outcomes: Outcomes, checks: Sequence[AttentionCheck], policy: Mapping[str, Any], at: dt.datetime
) -> dict[str, Any] | None:
    """Credit earned before a check that was not validly answered, by someone who had not
    answered any check before it in that run of study.

    Checks stop credit from their due time (R07); what came *before* the first check was
    credited on trust. When that first check then lapses or is answered by a script, the
    trust was misplaced as far as anyone can tell: nobody has shown they were there. That
    credit is held for an auditor (not deducted: a learner who stepped away can appeal). A
    learner who has answered a check earlier in the run proved presence, and a later lapse
    only stops credit, as before. This is what keeps an unattended tab, a bot or a farm of
    tabs from keeping the minutes before its first check.
    """
    brk = dt.timedelta(seconds=int(policy["break_seconds"]))
    _last_beat, judged = _day_checks(outcomes, checks, policy, at)
    study = study_runs(runs(outcomes), brk)
    if not judged or not study:
        return None
    answers = [a for _i, _d, a, v, _r in judged if v and a is not None]
    windows: list[tuple[dt.datetime, dt.datetime]] = []
    for issued, due, answered, valid, relief in judged:
        closes = max(due, relief or due)
        if (valid and answered is not None and answered <= closes) or (answered is None and closes > at):
            continue  # answered by a person in time, or its window still open at the judgement time
        # Lapsed: no answer, a wrong or scripted one, or a valid one after the window (the
        # person's presence then is proven, not the minutes before the lapse: ``proves``).
        run = max((r for r in study if r[0] <= issued), default=None)
        if run is None and study[0][0] < due:
            # Shown the evening before and due after midnight: the run it was shown in goes
            # on this morning, and what it earned here before the due time is as unproven.
            run = study[0]
        if run is None:
            continue
        # Presence is proven by a valid answer within a break of the run (``proves``):
        # earlier, or later (a late answer once the network is back, the retry after a
        # wrong one). A script never gives one; a learner who answers one later only
        # releases this prefix, since the lapse itself stopped credit until that answer (R07).
        if not any(proves(a, run, brk) for a in answers):  # nobody there: up to the time the check fell due
            windows.append((run[0], due))
    if not windows:
        return None

    def placed(received: dt.datetime, start: dt.datetime, end: dt.datetime, w0: dt.datetime, w1: dt.datetime) -> int:
        # The credit placed in the window; and a beat received by the due time was judged
        # before the lapse, so all its credit is in it, also the part the person clock
        # placed after the due time (the second of jitter the core lends, or a burst's
        # credit queued behind earlier beats).
        return els.ms((end if received <= w1 else min(end, w1)) - max(start, w0))

    return _taken_back("R07h", "hold_ms", outcomes, _merge(windows), placed)


def relief_lapsed(
    outcomes: Outcomes, checks: Sequence[AttentionCheck], policy: Mapping[str, Any], at: dt.datetime
) -> dict[str, Any] | None:
    """R07o: a check fell due while nothing of the person reached the server, and nobody
    answered it (or a later check) within a window of their return.

    Such a check starts its window again at the person's first beat after its due time
    (``els.Checks.spans``): the beats queued offline arrive before any answer can, and are
    credited as they come. When no valid answer follows within that window, the relief
    lapses and R07 stops credit from the check's own due time again; the credit those
    beats were given after it, judged before anyone could know, is deducted here, as R07
    would have. So going quiet over a check earns a script nothing over letting it lapse.
    """
    _last_beat, judged = _day_checks(outcomes, checks, policy, at)
    windows: list[tuple[dt.datetime, dt.datetime]] = []
    window_s = 0
    for issued, due, _answered, _valid, relief in judged:
        if relief is None or relief > at:
            continue  # not offline when it fell due, or its new window is still open
        if not any(v and a is not None and issued <= a <= relief for _i, _d, a, v, _r in judged):
            windows.append((due, relief))
            window_s = window_s or round((due - issued).total_seconds())
    if not windows:
        return None

    def after_due(received: dt.datetime, start: dt.datetime, end: dt.datetime, w0: dt.datetime, w1: dt.datetime) -> int:
        # Beats received in the new window, credited after the due time: judged on the relief.
        return els.ms(end - max(start, w0)) if w0 < received <= w1 else 0

    return _taken_back("R07o", "deduct_ms", outcomes, windows, after_due, params={"window": window_s})


def _taken_back(
    rule: str,
    key: str,
    outcomes: Outcomes,
    windows: Sequence[tuple[dt.datetime, dt.datetime]],
    part: Callable[[dt.datetime, dt.datetime, dt.datetime, dt.datetime, dt.datetime], int],
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The finding of a rule that takes credit back (R07h holds it, R07o deducts it): per
    credited beat, the ms ``part(received, credit start, credit end, w0, w1)`` finds of it in
    each window, at most what the beat was given; the amount also under ``key`` (``hold_ms``
    or ``deduct_ms``), and the beats."""
    total = 0
    beat_ids: list[int] = []
    for b, o in outcomes:
        if not o.credited_ms or o.credit_end is None:
            continue
        start, end = o.credit_start, o.credit_end
        got = min(sum(max(0, part(b.received_at, start, end, w0, w1)) for w0, w1 in windows), o.credited_ms)
        if got:
            total += got
            beat_ids.append(b.id)
    if not total:
        return None
    merged = _merge(windows)
    finding = _entry(rule, merged[0][0], merged[-1][1], amount_ms=total, beat_ids=beat_ids, fired=False, params=params)
    finding[key] = total
    return finding


# --- R09: machine-regular timing --------------------------------------------------------


def delta_bic(values: Sequence[float]) -> float | None:
    """BIC of a log-normal fit minus BIC of a uniform fit on [min, max] (both by maximum likelihood).

    Human timings (reading and clicking, pauses between lessons) are heavy-tailed and
    a log-normal describes them; a program that waits "a random 2 to 6 seconds" draws
    from a bounded uniform. A large positive difference says the uniform explains the
    values far better. Both models have two parameters, so the difference is that of
    the log-likelihoods, doubled. None when the values say nothing (too few, not all
    positive, or all equal: the CV test covers that).
    """
    if len(values) < 3 or min(values) <= 0:
        return None
    low, high = min(values), max(values)
    logs = [math.log(v) for v in values]
    sigma = statistics.pstdev(logs)
    if high <= low or sigma <= 0:
        return None
    n = len(values)
    mu = statistics.fmean(logs)
    uniform = -n * math.log(high - low)
    lognormal = (
        -sum(logs)
        - n * math.log(sigma)
        - n / 2 * math.log(2 * math.pi)
        - sum((v - mu) ** 2 for v in logs) / (2 * sigma * sigma)
    )
    return 2 * (uniform - lognormal)


def _machine_timed(values: Sequence[float], events: int, policy: Mapping[str, Any]) -> tuple[str, float] | None:
    """("cv", cv) or ("bic", ΔBIC) when the values (of ``events`` events) look machine-timed, else None."""
    if events < int(policy["regular_min_events"]):
        return None
    cv = _cv(values)
    if cv is not None and cv < float(policy["regular_cv"]):
        return "cv", cv
    if events >= int(policy["regular_bic_min_events"]):
        d = delta_bic(values)
        if d is not None and d > float(policy["regular_delta_bic"]):
            return "bic", d
    return None


def regularity(
    outcomes: Outcomes, checks: Sequence[AttentionCheck], day: dt.date, policy: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Session starts at near-constant gaps, or check answers at near-constant latency.

    Human timings are heavy-tailed: gaps between lessons and the time to read and
    click vary by far more than 10 %. Two tests, as the design names them: the
    coefficient of variation below ``regular_cv`` over at least ``regular_min_events``
    (a fixed timer with a little jitter), and, over at least ``regular_bic_min_events``,
    a bounded uniform fitting better than a log-normal by ΔBIC > ``regular_delta_bic``
    (a timer with wide random jitter, which the CV misses). The second needs about 20
    events to tell the two apart (measured: at 8 events it catches 1 % of uniform
    bots, at 20 about 57 %, with 2 % of log-normal humans above 10). The heartbeat
    itself is timer-driven by design and is never judged here.
    """
    starts = sorted({b.launched_at for b, _o in outcomes if b.claimed})
    found: list[tuple[str, str, float, int, dt.datetime, dt.datetime]] = []
    gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:], strict=False)]
    hit = _machine_timed(gaps, len(starts), policy)
    if hit is not None:
        found.append(("starts", hit[0], hit[1], len(starts), starts[0], starts[-1]))
    answered = sorted(
        (c for c in checks if c.answered_at is not None and c.latency_ms and els.beijing_day(c.answered_at) == day),
        key=lambda c: c.issued_at,
    )
    hit = _machine_timed([float(c.latency_ms or 0) for c in answered], len(answered), policy)
    if hit is not None:
        end = answered[-1].answered_at
        assert end is not None
        found.append(("answers", hit[0], hit[1], len(answered), answered[0].issued_at, end))
    if not found:
        return None
    # The CV finding first (the plainer sentence), then the lowest CV / highest ΔBIC.
    kind, test, value, count, start, end = min(found, key=lambda f: (f[1] != "cv", f[2] if f[1] == "cv" else -f[2]))
    if test == "cv":
        return _entry("R09", start, end, variant=kind, params={"count": count, "cv": round(value * 100, 1)})
    return _entry("R09", start, end, variant=f"{kind}_fit", params={"count": count, "dbic": round(value, 1)})


# --- R10c: no break for hours -----------------------------------------------------------


def runs(outcomes: Outcomes) -> list[tuple[dt.datetime, dt.datetime]]:
    """The day's credited spans of real time, in order."""
    return sorted((o.credit_start, o.credit_end) for _b, o in outcomes if o.credited_ms and o.credit_end is not None)


def study_runs(
    spans: Sequence[tuple[dt.datetime, dt.datetime]], brk: dt.timedelta
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Runs of study: the credited spans (in order) whose gaps are shorter than a break,
    each as (its first credit's start, its last credit's end).

    A run ends at its last *credit*, not at the next beat: beats that earn nothing (a
    check lapsed, the video paused) say nothing of presence, so what a run covers, and
    which answers prove it (``proves``), cannot move with them.
    """
    out: list[tuple[dt.datetime, dt.datetime]] = []
    for s, e in spans:
        if out and s - out[-1][1] < brk:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def proves(answer: dt.datetime, run: tuple[dt.datetime, dt.datetime], brk: dt.timedelta) -> bool:
    """Whether a valid answer proves presence in a run of study: it was given less than a
    break before the run's first credit or after its last one, or in between.

    An answer is presence at one instant, joined to the credit around it as the runs join
    credited spans (gaps shorter than a break). So:

    * the answer that resumes credit after a lapse, a break or more after the run before
      it (the learner came back, credit starts again at the answer), proves the *new* run
      and never the old one: the minutes a script played before a check lapsed are proven
      only by a person who answered within a break of them;
    * an answer given with the video paused, play pressed a moment later, proves the run
      that play starts (and, within a break of it, the run before: a late answer on return);
    * a run's last credit moves only with credit joined to it, which after a lapse comes
      only after a valid answer (R07), itself within a break: so what an answer proves does
      not change with later beats, and the online verdict equals the next morning's recompute.
    """
    start, end = run
    return start - brk < answer < end + brk


def continuous(outcomes: Outcomes, policy: Mapping[str, Any]) -> dict[str, Any] | None:
    """The longest run of credited study whose gaps are all shorter than a break."""
    brk = dt.timedelta(seconds=int(policy["break_seconds"]))
    best: tuple[dt.datetime, dt.datetime] | None = None
    cur: tuple[dt.datetime, dt.datetime] | None = None
    for s, e in runs(outcomes):
        cur = (s, e) if cur is None or s - cur[1] >= brk else (cur[0], max(cur[1], e))
        if best is None or cur[1] - cur[0] > best[1] - best[0]:
            best = cur
    limit = dt.timedelta(seconds=int(policy["continuous_seconds"]))
    if best is None or best[1] - best[0] <= limit:
        return None
    return _entry(
        "R10c",
        best[0],
        best[1],
        amount_ms=els.ms(best[1] - best[0]),
        params={"hours": round(limit.total_seconds() / 3600, 1), "break_min": round(brk.total_seconds() / 60)},
    )


# --- R10d: nights across a fortnight ----------------------------------------------------


def _night_ms(spans: Sequence[tuple[dt.datetime, dt.datetime]]) -> dict[dt.date, int]:
    """Credited milliseconds between 00:00 and 05:00 Beijing, per Beijing day."""
    out: dict[dt.date, int] = defaultdict(int)
    for s, e in spans:
        day = els.beijing_day(s)
        for d in {day, els.beijing_day(e)}:
            night0 = dt.datetime.combine(d, dt.time(), tzinfo=els.SHANGHAI)
            night1 = night0 + dt.timedelta(hours=NIGHT_END_HOUR)
            got = max(0, els.ms(min(e, night1) - max(s, night0)))
            if got:
                out[d] += got
    return out


def _night_ms_of(day: dt.date, spans: Sequence[tuple[dt.datetime, dt.datetime]]) -> int:
    """``_night_ms(spans).get(day, 0)`` for one day, with comparisons instead of a time zone per span."""
    start, end = day_bounds(day)
    night1 = start + dt.timedelta(hours=NIGHT_END_HOUR)
    total = 0
    for s, e in spans:
        if (start <= s < end or start <= e < end) and s < night1 and e > start:
            got = els.ms(min(e, night1) - max(s, start))
            if got > 0:
                total += got
    return total


def nights(user_id: int, day: dt.date, outcomes: Outcomes, policy: Mapping[str, Any]) -> dict[str, Any] | None:
    """Study at night beyond ``night_seconds`` on ``night_days`` of the last 14 days.

    Night study on its own is honest (shift workers); several nights a fortnight is
    the 24/7 pattern of a bot, and only then does the day score.
    """
    today = _night_ms_of(day, runs(outcomes))
    limit = int(policy["night_seconds"]) * 1000
    if today <= limit:
        return None
    since, _e = day_bounds(day - dt.timedelta(days=WINDOW_DAYS - 1))
    until, _e2 = day_bounds(day)
    earlier = db.session.execute(
        select(Beat.credit_start, Beat.credit_end).where(
            Beat.user_id == user_id,
            Beat.received_at >= since,
            Beat.received_at < until,
            Beat.credited_ms > 0,
            Beat.credit_end.is_not(None),
        )
    ).all()
    per_day = _night_ms([(s, e) for s, e in earlier if s is not None and e is not None])
    per_day[day] = today
    nights_over = sorted(d for d, v in per_day.items() if v > limit and day - d < dt.timedelta(days=WINDOW_DAYS))
    if len(nights_over) < int(policy["night_days"]):
        return None  # a night of study now and then is nobody's business
    start, _end = day_bounds(day)
    return _entry(
        "R10d",
        start,
        start + dt.timedelta(hours=NIGHT_END_HOUR),
        amount_ms=today,
        params={"nights": len(nights_over), "minutes": round(limit / 60_000)},
    )


# --- R12: one device, several accounts (代刷) -------------------------------------------


def _device(session: LearningSession, client: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """What identifies a device: the network address, the browser, and the screen the
    player reports (``presence.device``). A session without an address has none."""
    if not session.ip:
        return None
    presence = client.get("presence") if isinstance(client.get("presence"), Mapping) else {}
    device = presence.get("device") if isinstance(presence, Mapping) else None
    return (session.ip, session.user_agent or "", str(device or "")[:64])


def _merge(spans: Sequence[tuple[dt.datetime, dt.datetime]]) -> list[tuple[dt.datetime, dt.datetime]]:
    out: list[tuple[dt.datetime, dt.datetime]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _overlap_ms(a: Sequence[tuple[dt.datetime, dt.datetime]], b: Sequence[tuple[dt.datetime, dt.datetime]]) -> int:
    total = 0
    for s0, e0 in a:
        for s1, e1 in b:
            total += max(0, els.ms(min(e0, e1) - max(s0, s1)))
    return total


def _neighbour_query(start: dt.datetime, end: dt.datetime, ips: Sequence[str]) -> Any:
    """Credited beats received in ``[start, end)`` by sessions from these addresses."""
    return (
        select(
            Beat.user_id,
            Beat.credit_start,
            Beat.credit_end,
            Beat.client,
            LearningSession.ip,
            LearningSession.user_agent,
            Beat.received_at,
        )
        .join(LearningSession, LearningSession.id == Beat.session_id)
        .where(
            Beat.received_at >= start,
            Beat.received_at < end,
            Beat.credited_ms > 0,
            LearningSession.ip.in_(ips),
        )
    )


class _DeviceJSON(FunctionElement[str]):
    """The JSON text of a beat's ``client.presence.device`` (NULL when it has none).

    The text, not the value: ``jsonb`` and SQLite's JSON functions turn ``true`` and ``1``
    into the same SQL value, and ``_device`` keys on Python's ``str`` of the value, so the
    caller decodes the text as the full column would have been decoded.
    """

    type = Text()
    inherit_cache = True


@compiles(_DeviceJSON)
def _device_json_sqlite(element: _DeviceJSON, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} -> '$.presence.device')"


@compiles(_DeviceJSON, "postgresql")
def _device_json_pg(element: _DeviceJSON, compiler: Any, **kw: Any) -> str:
    return f"(({compiler.process(element.clauses, **kw)} #> '{{presence,device}}')::text)"


def _neighbour_islands(day: dt.date, ips: Sequence[str], user_id: int) -> Any:
    """Other people's credited time of the day from these addresses, as merged spans
    (``_merge``) per person, address, browser and device text: what ``shared_device``
    overlaps with, summed up in the database.

    Reading every credited beat of everyone behind the address cost a replay 3,780 rows
    and their JSON for 64 accounts on one device (75 % of its CPU), and grows with an
    office's day; the islands are one row per person and run. Merging is associative,
    so ``_merge`` of a person's islands is the union of their spans, as before.
    """
    start, end = day_bounds(day)
    params = {"start": start, "end": end, "user_id": user_id, "ips": list(ips)}
    return db.session.execute(_islands_statement(), params)


@functools.cache
def _islands_statement() -> Any:
    """Built once per process: building the windowed statement cost more than running it."""
    device = _DeviceJSON(Beat.client).label("device")
    beats = (
        select(
            Beat.user_id,
            LearningSession.ip,
            LearningSession.user_agent,
            device,
            Beat.credit_start.label("s"),
            Beat.credit_end.label("e"),
        )
        .join(LearningSession, LearningSession.id == Beat.session_id)
        .where(
            Beat.received_at >= bindparam("start", type_=UTCDateTime()),
            Beat.received_at < bindparam("end", type_=UTCDateTime()),
            Beat.credited_ms > 0,
            Beat.user_id != bindparam("user_id", type_=Integer),
            LearningSession.ip.in_(bindparam("ips", expanding=True)),
            Beat.credit_start.is_not(None),
            Beat.credit_end.is_not(None),
        )
        .subquery()
    )
    key = (beats.c.user_id, beats.c.ip, beats.c.user_agent, beats.c.device)
    order = (beats.c.s, beats.c.e)
    # The gaps-and-islands form of ``_merge``: a span opens an island when it starts
    # after every earlier span's end (touching spans merge, as there).
    reach = func.max(beats.c.e).over(partition_by=key, order_by=order, rows=(None, -1))
    marked = select(*beats.c, reach.label("reach")).subquery()
    opens = case((or_(marked.c.reach.is_(None), marked.c.s > marked.c.reach), 1), else_=0)
    mkey = (marked.c.user_id, marked.c.ip, marked.c.user_agent, marked.c.device)
    island = func.sum(opens).over(partition_by=mkey, order_by=(marked.c.s, marked.c.e), rows=(None, 0))
    numbered = select(*marked.c, island.label("island")).subquery()
    nkey = (numbered.c.user_id, numbered.c.ip, numbered.c.user_agent, numbered.c.device)
    return select(*nkey, func.min(numbered.c.s), func.max(numbered.c.e)).group_by(*nkey, numbered.c.island)


def shared_device(
    user_id: int, day: dt.date, outcomes: Outcomes, policy: Mapping[str, Any], ctx: Prefetched | None = None
) -> dict[str, Any] | None:
    """Other accounts credited from the same device while this one was.

    The same office computer used by colleagues one after the other is honest and
    only noted (score 0); accounts studying on one device *at the same time* is what
    a 代刷 operator does. The score (40) is below the hold score on purpose: a
    training room where every PC has the same address, browser and screen looks like
    one device, so the rule holds a day only together with another signal
    (automation, script answers, regular timing).
    """
    mine: dict[tuple[str, str, str], list[tuple[dt.datetime, dt.datetime]]] = defaultdict(list)
    sessions: dict[str, LearningSession | None] = {}
    for b, o in outcomes:
        if not o.credited_ms or o.credit_end is None:
            continue
        if b.session_id not in sessions:
            sessions[b.session_id] = (
                ctx.sessions.get(b.session_id) if ctx is not None else db.session.get(LearningSession, b.session_id)
            )
        s = sessions[b.session_id]
        key = _device(s, b.client) if s is not None else None
        if key is not None:
            mine[key].append((o.credit_start, o.credit_end))
    if not mine:
        return None
    ips = sorted({k[0] for k in mine})
    theirs: dict[int, list[tuple[dt.datetime, dt.datetime]]] = defaultdict(list)
    if ctx is not None:
        rows: Sequence[Any] = [r for ip in ips for r in ctx.neighbours.get((day, ip), ()) if r.user_id != user_id]
        for uid, s0, e0, client, ip, ua, _received in rows:
            presence = client.get("presence") if isinstance(client, Mapping) else None
            device = presence.get("device") if isinstance(presence, Mapping) else None
            key = (ip, ua or "", str(device or "")[:64])
            if key in mine and s0 is not None and e0 is not None:
                theirs[uid].append((s0, e0))
    else:
        for uid, ip, ua, device_json, s0, e0 in _neighbour_islands(day, ips, user_id):
            device = json.loads(device_json) if device_json is not None else None
            if (ip, ua or "", str(device or "")[:64]) in mine:
                theirs[uid].append((s0, e0))
    if not theirs:
        return None
    my_spans = _merge([span for spans in mine.values() for span in spans])
    overlaps = {uid: _overlap_ms(my_spans, _merge(spans)) for uid, spans in theirs.items()}
    tolerated = int(policy["shared_overlap_seconds"]) * 1000
    concurrent = sorted(uid for uid, v in overlaps.items() if v > tolerated)
    fired = len(concurrent) + 1 >= int(policy["shared_accounts"]) and bool(concurrent)
    return _entry(
        "R12",
        my_spans[0][0],
        my_spans[-1][1],
        amount_ms=sum(overlaps[u] for u in concurrent),
        fired=fired,
        variant="concurrent" if fired else "sequential",
        params={"accounts": len(concurrent) if fired else len(theirs)},
    )


# --- R12d: several accounts studying from data-centre addresses -------------------------


@functools.lru_cache(maxsize=8)
def _networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    nets = []
    for line in text.splitlines():
        for item in line.split("#", 1)[0].replace(",", " ").split():
            with contextlib.suppress(ValueError):  # a typo in the setting must not stop the day
                nets.append(ipaddress.ip_network(item, strict=False))
    return tuple(nets)


def datacentre_networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The setting ``anti_idle.datacentre_ranges`` if set, else the shipped list."""
    from lms_core.settings import services as settings

    configured = str(settings.get("anti_idle", "datacentre_ranges") or "").strip()
    return _networks(configured or RANGES_FILE.read_text(encoding="utf-8"))


def _range_of(ip: str | None, nets: Sequence[Any]) -> Any:
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    return next((n for n in nets if address.version == n.version and address in n), None)


def datacentre(
    user_id: int, day: dt.date, outcomes: Outcomes, policy: Mapping[str, Any], ctx: Any = None
) -> dict[str, Any] | None:
    """Credited study from a data-centre address range that ``datacentre_accounts`` accounts used that day.

    People study at home, at work or on a phone network; an auto-study farm runs its
    browsers on rented cloud servers. One account behind a cloud address may be a
    learner on a company VPN, so a lone account only gets an information line; the
    rule scores when several accounts studied from the same range on the same day.
    """
    nets = ctx.networks if ctx is not None else datacentre_networks()
    if not nets:
        return None
    #: Session -> its address's range: looked up once per session, not per beat (the list is long).
    ranges: dict[str, Any] = {}
    hits: dict[Any, list[tuple[dt.datetime, dt.datetime]]] = defaultdict(list)
    for b, o in outcomes:
        if not o.credited_ms or o.credit_end is None:
            continue
        if b.session_id not in ranges:
            known = ctx.sessions.get(b.session_id) if ctx is not None else None
            if known is None:
                # The session row R12 (shared_device) just loaded: from the session's
                # identity map, not a statement per session again.
                known = db.session.get(LearningSession, b.session_id)
            ip = known.ip if known is not None else None
            ranges[b.session_id] = _range_of(ip, nets)
        net = ranges[b.session_id]
        if net is not None:
            hits[net].append((o.credit_start, o.credit_end))
    if not hits:
        return None
    start, end = day_bounds(day)
    others = db.session.execute(
        select(LearningSession.user_id, LearningSession.ip)
        .where(
            LearningSession.user_id != user_id,
            LearningSession.started_at < end,
            LearningSession.last_beat_at >= start,
            LearningSession.ip.is_not(None),
        )
        .distinct()
    ).all()
    accounts: dict[Any, set[int]] = {net: {user_id} for net in hits}
    for uid, ip in others:
        net = _range_of(ip, list(hits))
        if net is not None:
            accounts[net].add(uid)
    net = max(hits, key=lambda n: (len(accounts[n]), len(hits[n])))
    spans = _merge(hits[net])
    need = int(policy["datacentre_accounts"])
    return _entry(
        "R12d",
        spans[0][0],
        spans[-1][1],
        amount_ms=sum(els.ms(e - s) for s, e in spans),
        fired=len(accounts[net]) >= need,
        variant="" if len(accounts[net]) >= need else "alone",
        params={"range": str(net), "accounts": len(accounts[net]), "need": need},
    )


# --- R15: cycling through a check's options ---------------------------------------------


def cycling(checks: Sequence[AttentionCheck], day: dt.date, policy: Mapping[str, Any]) -> dict[str, Any] | None:
    """Several check answers within seconds: trying every option in turn.

    A wrong answer is followed at once by a fresh check (one retry, by design), so a
    script that clicks through the options answers several checks in a few seconds;
    a human reads each new question first.
    """
    times = sorted(c.answered_at for c in checks if c.answered_at is not None and els.beijing_day(c.answered_at) == day)
    need = int(policy["cycling_answers"])
    window = dt.timedelta(seconds=int(policy["cycling_seconds"]))
    for i in range(len(times) - need + 1):
        if times[i + need - 1] - times[i] <= window:
            j = i + need - 1
            while j + 1 < len(times) and times[j + 1] - times[i] <= window:
                j += 1
            return _entry(
                "R15", times[i], times[j], params={"answers": j - i + 1, "seconds": int(window.total_seconds())}
            )
    return None


# --- R17: only the shortest items (informational) ---------------------------------------


def cherry_picking(
    user_id: int, day: dt.date, outcomes: Outcomes, policy: Mapping[str, Any], ctx: Prefetched | None = None
) -> dict[str, Any] | None:
    """Most items studied in 14 days are among the shortest tenth of their courses.

    A legitimate choice, so it never scores: the line gives an auditor context when a
    learner's hours come only from the quickest items.
    """
    from lms_core.courses.models import Lesson, LessonKind
    from lms_core.media.models import MediaFile as Media

    since = day - dt.timedelta(days=WINDOW_DAYS - 1)
    lessons = {b.lesson_id for b, o in outcomes if o.credited_ms and b.lesson_kind == "video"}
    if ctx is not None:
        lessons |= {lid for d, lid in ctx.studied.get(user_id, ()) if since <= d < day}
    else:
        lessons |= set(
            db.session.execute(
                select(DayLesson.lesson_id)
                .join(DayVerdict, DayVerdict.id == DayLesson.day_verdict_id)
                .where(
                    DayLesson.user_id == user_id,
                    DayVerdict.day >= since,
                    DayVerdict.day < day,
                    DayLesson.credited_ms > 0,
                )
            ).scalars()
        )
    if len(lessons) < int(policy["cherry_min_items"]):
        return None
    rows = db.session.execute(
        select(Lesson.id, Lesson.course_id, Media.duration_ms)
        .join(Media, Media.id == Lesson.media_id)
        .where(
            Lesson.course_id.in_(select(Lesson.course_id).where(Lesson.id.in_(sorted(lessons)))),
            Lesson.kind == LessonKind.VIDEO,
        )
    ).all()
    by_course: dict[int, list[int]] = defaultdict(list)
    duration: dict[int, int] = {}
    for lid, cid, ms in rows:
        by_course[cid].append(int(ms or 0))
        duration[lid] = int(ms or 0)
    course_of = {lid: cid for lid, cid, _ms in rows}
    judged = [lid for lid in lessons if lid in course_of and len(by_course[course_of[lid]]) >= CHERRY_POOL_MIN]
    if len(judged) < int(policy["cherry_min_items"]):
        return None

    def shortest_tenth(lid: int) -> bool:
        pool = sorted(by_course[course_of[lid]])
        return duration[lid] <= pool[max(0, len(pool) // 10 - 1)]

    short = sum(1 for lid in judged if shortest_tenth(lid))
    share = short / len(judged)
    if share < float(policy["cherry_share"]):
        return None
    start, end = outcomes[0][0].wall_start, outcomes[-1][0].received_at
    return _entry("R17", start, end, params={"items": len(judged), "short": short, "share": round(share * 100)})


def judge(
    user_id: int,
    day: dt.date,
    outcomes: Outcomes,
    checks: Sequence[AttentionCheck],
    policy: Mapping[str, Any],
    ctx: Prefetched | None = None,
    at: dt.datetime | None = None,
) -> dict[str, dict[str, Any]]:
    """Every day rule that found something: ``{rule: finding}`` (see :func:`_entry`).

    ``ctx``: the stored rows the rules read, prefetched for many days (bulk recompute).
    ``at``: the judgement time (:func:`judgement_time` of the day by default).
    """
    if not outcomes:
        return {}
    at = judgement_time(day, checks=checks) if at is None else at
    found = {
        "R02": skips(outcomes, policy),
        "R07h": unverified(outcomes, checks, policy, at),
        "R07o": relief_lapsed(outcomes, checks, policy, at),
        "R09": regularity(outcomes, checks, day, policy),
        "R10c": continuous(outcomes, policy),
        "R10d": nights(user_id, day, outcomes, policy),
        "R12": shared_device(user_id, day, outcomes, policy, ctx),
        "R12d": datacentre(user_id, day, outcomes, policy, ctx),
        "R15": cycling(checks, day, policy),
        "R17": cherry_picking(user_id, day, outcomes, policy, ctx),
    }
    return {rule: f for rule, f in found.items() if f is not None}
