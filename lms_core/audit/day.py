"""A learner's day, as a picture: one cadre's Beijing calendar day on a time axis.

The core draws what it owns (study sessions, one lane each, with the media time
claimed and credited by every accepted heartbeat); plugins add their layers
through ``lms_day_picture`` (the anti-idle plugin: hidden spans, pauses, attention
checks and the evidence lines; the credit bank: the ledger entries of the day).
The picture is geometry computed here, in percent of the visible span, so the
template draws plain SVG rectangles (no script, nothing inline the CSP refuses),
and every span and mark is listed again in a table for those who cannot see it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from lms_core.courses.models import Lesson
from lms_core.extensions import db
from lms_core.i18n import SHANGHAI
from lms_core.learning.models import LearningInterval, LearningSession
from lms_core.pluginhost import get_plugin_manager
from lms_core.pluginhost.answers import DayLayer as DayLayer  # re-exported: the hook answer types
from lms_core.pluginhost.answers import Mark as Mark
from lms_core.pluginhost.answers import Section as Section
from lms_core.pluginhost.answers import Span as Span

#: The kinds a span or a mark may have; each is a CSS class and has a legend entry.
KIND_NAMES: dict[str, Any] = {
    "credited": _l("Watched, credited"),
    "uncredited": _l("Watched, not (fully) credited"),
    "session": _l("Lesson open"),
    "hidden": _l("Page hidden"),
    "paused": _l("Paused"),
    "check-passed": _l("Attention check passed"),
    "check-failed": _l("Attention check failed or missed"),
    "check-pending": _l("Attention check"),
}
KINDS = tuple(KIND_NAMES)
#: Where the known tables beside the picture go (others follow, in hook order).
SECTION_ORDER = ("evidence", "reviews", "ledger")
#: Beyond this many sessions on one day the picture shows the first ones only.
MAX_LANES = 40
#: Heartbeats closer than this with the same outcome are drawn as one stretch.
MERGE_GAP = dt.timedelta(seconds=5)
#: Heartbeat rows read for one day (a long day at 15 s beats is ~6,000).
MAX_INTERVALS = 20_000


@dataclass
class Bar:
    x: float  #: percent of the axis
    w: float
    kind: str
    text: str


@dataclass
class Lane:
    label: str
    bars: list[Bar]


@dataclass
class Picture:
    day: dt.date
    start: dt.datetime  #: the axis, UTC
    end: dt.datetime
    lanes: list[Lane]
    ticks: list[tuple[float, str]]  #: (percent, "HH:MM")
    rows: list[tuple[dt.datetime, dt.datetime | None, str, str, str]]  #: the text alternative
    sections: list[Section]
    facts: list[str]
    kinds: list[str]


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The Beijing calendar day as a UTC half-open range."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=SHANGHAI)
    return start.astimezone(dt.UTC), (start + dt.timedelta(days=1)).astimezone(dt.UTC)


def hhmm(moment: dt.datetime, day: dt.date | None = None) -> str:
    """Beijing time of day; with its date in front when it falls on another day than ``day``
    (a check left open overnight and answered the next morning, an auditor's decision made
    days later): a bare "09:05:41" would read as the same morning."""
    local = moment.astimezone(SHANGHAI)
    if day is not None and local.date() != day:
        return local.strftime("%Y-%m-%d %H:%M:%S")
    return local.strftime("%H:%M:%S")


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def session_lane(index: int, title: str) -> str:
    return _("Session %(n)d · %(lesson)s", n=index, lesson=title)


def core_layer(user_id: int, day: dt.date) -> tuple[DayLayer, dict[str, str]]:
    """Sessions of the day and what each heartbeat claimed and credited.

    Returns the layer and ``{session_id: lane label}`` so plugins can draw on the
    same lanes (their rows carry the session id).
    """
    start, end = day_bounds(day)
    sessions = db.session.execute(
        select(LearningSession, Lesson.title)
        .join(Lesson, Lesson.id == LearningSession.lesson_id)
        .where(
            LearningSession.user_id == user_id,
            LearningSession.started_at < end,
            LearningSession.last_beat_at >= start,
        )
        .order_by(LearningSession.started_at, LearningSession.id)
        .limit(MAX_LANES)
    ).all()
    layer = DayLayer()
    lanes: dict[str, str] = {}
    for n, (s, title) in enumerate(sessions, 1):
        lane = lanes[s.id] = session_lane(n, title)
        s_end = s.ended_at or s.last_beat_at
        layer.spans.append(
            Span(
                lane,
                _aware(s.started_at),
                _aware(max(s_end, s.started_at)),
                "session",
                "",  # the kind (课程页面打开) says it, and the lane names the lesson
            )
        )
    if not lanes:
        return layer, lanes
    intervals = db.session.execute(
        select(
            LearningInterval.session_id,
            LearningInterval.wall_start,
            LearningInterval.wall_end,
            LearningInterval.claimed_ms,
            LearningInterval.credited_ms,
        )
        .where(
            LearningInterval.user_id == user_id,
            LearningInterval.wall_end >= start,
            LearningInterval.wall_end < end,
            LearningInterval.session_id.in_(list(lanes)),
        )
        .order_by(LearningInterval.wall_end)
        .limit(MAX_INTERVALS)
    ).all()
    # Consecutive heartbeats of one session with the same outcome are one stretch of
    # watching: one bar and one table row, not one per beat.
    runs: list[list[Any]] = []  # [session_id, start, end, kind, claimed, credited]
    for session_id, w_start, w_end, claimed, credited in intervals:
        if not claimed:
            continue
        kind = "credited" if credited >= claimed else "uncredited"
        start_at, end_at = _aware(w_start), _aware(w_end)
        last = next((r for r in reversed(runs) if r[0] == session_id), None)
        if last is not None and last[3] == kind and start_at - last[2] <= MERGE_GAP:
            last[2], last[4], last[5] = max(last[2], end_at), last[4] + claimed, last[5] + credited
        else:
            runs.append([session_id, start_at, end_at, kind, claimed, credited])
    for session_id, start_at, end_at, kind, claimed, credited in runs:
        text = _(
            "%(claimed)s s claimed, %(credited)s s credited",
            claimed=claimed // 1000,
            credited=credited // 1000,
        )
        layer.spans.append(Span(lanes[session_id], start_at, end_at, kind, text))
    return layer, lanes


def _known(kind: str) -> str:
    return kind if kind in KIND_NAMES else "session"


def build(user_id: int, day: dt.date, layers: list[DayLayer]) -> Picture:
    """Lay the spans and marks of every layer out on one axis."""
    spans = [s for layer in layers for s in layer.spans]
    marks = [m for layer in layers for m in layer.marks]
    day_start, day_end = day_bounds(day)
    moments = [s.start for s in spans] + [s.end for s in spans] + [m.at for m in marks]
    if moments:
        # The axis covers the hours that hold something (whole hours), not 24 empty ones,
        # so a morning's study is wide enough to read on a phone.
        lo = max(min(moments), day_start).astimezone(SHANGHAI).replace(minute=0, second=0, microsecond=0)
        hi = min(max(moments), day_end - dt.timedelta(microseconds=1)).astimezone(SHANGHAI)
        hi = hi.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
        a_start, a_end = lo.astimezone(dt.UTC), hi.astimezone(dt.UTC)
    else:
        a_start, a_end = day_start, day_end
    hours = max(round((a_end - a_start).total_seconds() / 3600), 1)
    step = 1 if hours <= 6 else 2 if hours <= 12 else 3
    # Whole steps, so the ticks are evenly spaced and the last one sits at the end.
    a_end = a_start + dt.timedelta(hours=-(-hours // step) * step)
    if a_end > day_end:  # whole steps past midnight: start earlier instead, the axis ends with the day
        a_start, a_end = a_start - (a_end - day_end), day_end
    total = (a_end - a_start).total_seconds()

    def pos(moment: dt.datetime) -> float:
        clipped = min(max(moment, a_start), a_end)
        return round((clipped - a_start).total_seconds() * 100.0 / total, 3)

    order: list[str] = []
    bars: dict[str, list[Bar]] = {}
    for s in spans:
        if s.lane not in bars:
            order.append(s.lane)
            bars[s.lane] = []
        x = pos(s.start)
        bars[s.lane].append(Bar(x, max(pos(s.end) - x, 0.25), _known(s.kind), s.text))
    for m in marks:
        if m.lane not in bars:
            order.append(m.lane)
            bars[m.lane] = []
        bars[m.lane].append(Bar(max(pos(m.at) - 0.3, 0.0), 0.6, _known(m.kind), m.text))
    ticks = []
    for h in range(0, int(total // 3600) + 1, step):
        moment = a_start + dt.timedelta(hours=h)
        # The day's end is its 24:00 (as a timetable says), not the next day's 00:00.
        label = "24:00" if moment == day_end else moment.astimezone(SHANGHAI).strftime("%H:%M")
        ticks.append((pos(moment), label))
    rows: list[tuple[dt.datetime, dt.datetime | None, str, str, str]] = sorted(
        [(s.start, s.end, s.lane, _known(s.kind), s.text) for s in spans]
        + [(m.at, None, m.lane, _known(m.kind), m.text) for m in marks],
        key=lambda r: (r[0], r[2]),
    )
    used = sorted({b.kind for lane in bars.values() for b in lane}, key=lambda k: KINDS.index(k) if k in KINDS else 99)
    return Picture(
        day=day,
        start=a_start,
        end=a_end,
        lanes=[Lane(label, bars[label]) for label in order],
        ticks=ticks,
        rows=rows,
        # The evidence first, then the decisions, then the ledger lines they produced.
        sections=sorted(
            (sec for layer in layers for sec in layer.sections),
            key=lambda sec: SECTION_ORDER.index(sec.key) if sec.key in SECTION_ORDER else len(SECTION_ORDER),
        ),
        facts=[f for layer in layers for f in layer.facts],
        kinds=used,
    )


def picture(person: Any, day: dt.date) -> Picture:
    """The whole picture of ``person``'s ``day``: the core's layer and every plugin's."""
    core, lanes = core_layer(person.id, day)
    extra = get_plugin_manager().hook.lms_day_picture(person=person, day=day, session_lanes=lanes)
    return build(person.id, day, [core, *[layer for layer in extra if layer is not None]])
