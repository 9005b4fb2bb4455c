"""Editing the versioned policy: labels, units and bounds for each parameter, in the catalogue.

Shared by the admin page and ``flask lms anti-idle policy set``: both parse text
through :func:`parse_changes`, so the same value is accepted or refused with the
same Chinese message in both places, before :func:`policy.new_version` stores it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from lms_core.courses.models import Course
from lms_core.events.services import emit
from lms_core.extensions import db
from plugins.anti_idle import policy
from plugins.anti_idle.events import POLICY_CHANGED


@dataclass(frozen=True)
class Param:
    label: Any  # lazy string
    help: Any
    unit: Any
    low: float
    high: float


#: Every parameter an admin may edit, in display order. Bounds are what is sensible,
#: tighter than what ``policy.validate`` accepts as types.
PARAMS: dict[str, Param] = {
    "heartbeat_seconds": Param(
        _l("Heartbeat cadence"), _l("How often the player reports while a lesson is open."), _l("seconds"), 5, 60
    ),
    "allowed_rates": Param(
        _l("Allowed playback rates"),
        _l("Speeds the learner may choose, separated by commas, e.g. 1, 1.25, 1.5."),
        _l("×"),
        0.25,
        4,
    ),
    "hidden_grace_seconds": Param(
        _l("Hidden-tab grace"),
        _l("Time a hidden or minimised player may keep playing before that time is deducted."),
        _l("seconds"),
        0,
        3600,
    ),
    "check_first_after_seconds": Param(
        _l("First attention check after"), _l("Playing time before the first check may come."), _l("seconds"), 0, 86400
    ),
    "check_min_gap_seconds": Param(
        _l("Shortest gap between checks"),
        _l("Playing time; the gap is drawn at random between the shortest and the longest."),
        _l("seconds"),
        10,
        86400,
    ),
    "check_max_gap_seconds": Param(_l("Longest gap between checks"), _l("Playing time."), _l("seconds"), 10, 86400),
    "check_window_seconds": Param(
        _l("Time to answer a check"),
        _l("After it, study time stops counting until the learner answers."),
        _l("seconds"),
        10,
        600,
    ),
    "checks_follow_claims": Param(
        _l("Checks follow the time claimed"),
        _l(
            "1: a check becomes due after the playing time the learner's browser reports, even if the page "
            "never asks for it (a script); 0: only when the player asks."
        ),
        "",
        0,
        1,
    ),
    "human_latency_floor_ms": Param(
        _l("Fastest human answer"),
        _l("Answers faster than this are recorded as automated."),
        _l("milliseconds"),
        0,
        5000,
    ),
    "lesson_cap_ratio": Param(
        _l("Per-lesson cap"),
        _l("Study time credited per lesson at most this multiple of its duration."),
        _l("× duration"),
        1,
        10,
    ),
    "day_cap_seconds": Param(
        _l("Per-day cap"),
        _l("Study time credited per person and day; the excess is held for audit."),
        _l("seconds"),
        600,
        86400,
    ),
    "handoff_seconds": Param(
        _l("Device handoff tolerance"),
        _l("Overlap of two streams tolerated when moving from one device to another."),
        _l("seconds"),
        0,
        600,
    ),
    "parallel_flag_seconds": Param(
        _l("Parallel streams flagged after"),
        _l("Overlapping playback per day beyond which the day is flagged."),
        _l("seconds"),
        0,
        3600,
    ),
    "delivery_slack_seconds": Param(
        _l("Media delivery slack"),
        _l("How far credited viewing may run ahead of the media actually delivered."),
        _l("seconds"),
        0,
        3600,
    ),
    "idle_seconds": Param(
        _l("Document idle limit"),
        _l("Reading time without any input beyond this is not credited."),
        _l("seconds"),
        60,
        7200,
    ),
    "hold_score": Param(
        _l("Review score that holds a day"),
        _l("A day whose flags add up to this score is held for audit."),
        _l("points"),
        1,
        1000,
    ),
    "signed_beats": Param(
        _l("Signed heartbeats required"),
        _l("1: heartbeats without the lesson page's signature earn nothing; 0: accepted (only during an upgrade)."),
        "",
        0,
        1,
    ),
    "drift_seconds": Param(
        _l("Clock drift tolerated"),
        _l("How far the page's clock may run ahead of the server's before it is flagged."),
        _l("seconds"),
        1,
        600,
    ),
    "skip_share": Param(
        _l("Skipped share of a lesson"),
        _l("A lesson whose forward skips exceed this share of its length counts as skipped."),
        _l("× duration"),
        0.01,
        1,
    ),
    "skip_lessons": Param(
        _l("Skipped lessons flagged per day"),
        _l("A day with this many skipped lessons adds to the review score."),
        _l("lessons"),
        1,
        100,
    ),
    "regular_min_events": Param(
        _l("Events needed to judge regularity"),
        _l("Lesson starts or check answers per day before their timing is judged."),
        _l("events"),
        3,
        1000,
    ),
    "regular_cv": Param(
        _l("Machine-like regularity"),
        _l("Timings that vary less than this (coefficient of variation) look machine-driven."),
        _l("ratio"),
        0.01,
        1,
    ),
    "regular_bic_min_events": Param(
        _l("Events for the timing fit"),
        _l("The fit of evenly spread (machine) against heavy-tailed (human) timing needs at least this many events."),
        _l("events"),
        8,
        1000,
    ),
    "regular_delta_bic": Param(
        _l("Timing fit difference"),
        _l("Evenly spread timing that fits better than human timing by more than this counts as machine-timed."),
        "",
        2,
        10,
    ),
    "continuous_seconds": Param(
        _l("Longest study without a break"),
        _l("Study longer than this without a break adds to the review score."),
        _l("seconds"),
        600,
        86400,
    ),
    "break_seconds": Param(
        _l("Shortest break"), _l("A pause at least this long counts as a break."), _l("seconds"), 60, 7200
    ),
    "night_seconds": Param(
        _l("Night study per night"),
        _l("Study between 00:00 and 05:00 beyond this counts as a night of study."),
        _l("seconds"),
        0,
        18000,
    ),
    "night_days": Param(
        _l("Nights flagged in 14 days"),
        _l("This many such nights in 14 days add to the review score."),
        _l("days"),
        1,
        14,
    ),
    "shared_accounts": Param(
        _l("Accounts on one device at once"),
        _l("One device studying for this many accounts at the same time adds to their review scores."),
        _l("accounts"),
        2,
        100,
    ),
    "shared_overlap_seconds": Param(
        _l("Shared-device overlap tolerated"),
        _l("Simultaneous study of several accounts on one device tolerated per day."),
        _l("seconds"),
        0,
        86400,
    ),
    "datacentre_accounts": Param(
        _l("Accounts from one data-centre range"),
        _l(
            "This many accounts studying from one cloud-server address range on the same day "
            "adds to their review scores."
        ),
        _l("accounts"),
        2,
        1000,
    ),
    "cycling_answers": Param(
        _l("Answers that count as cycling"),
        _l("This many attention-check answers in quick succession look like trying every option."),
        _l("answers"),
        2,
        100,
    ),
    "cycling_seconds": Param(
        _l("Cycling window"), _l("The quick succession above, in seconds."), _l("seconds"), 1, 600
    ),
    "cherry_share": Param(
        _l("Shortest-items share"),
        _l("Auditors are told when this share of a learner's items are the shortest of their courses."),
        _l("ratio"),
        0.1,
        1,
    ),
    "cherry_min_items": Param(
        _l("Items before cherry-picking is judged"),
        _l("Items studied in 14 days before the share above is judged."),
        _l("items"),
        1,
        1000,
    ),
}


class PolicyInputError(ValueError):
    """A value an admin typed that cannot become policy; the message is for the admin (translated)."""


def param(name: str) -> Param:
    """The description of a parameter; parameters added later get a plain one."""
    return PARAMS.get(name) or Param(name, "", "", 0, 86_400_000)


def editable() -> list[str]:
    """Parameter names in display order (the declared ones first, then any new ones)."""
    return [n for n in PARAMS if n in policy.DEFAULTS] + sorted(n for n in policy.DEFAULTS if n not in PARAMS)


def _number(name: str, text: str, *, whole: bool) -> float:
    p = param(name)
    text = text.strip()
    if not text or len(text) > 20 or "\x00" in text:
        raise PolicyInputError(_("%(label)s: please enter a number.", label=p.label))
    try:
        value = float(text)
    except ValueError:
        raise PolicyInputError(_("%(label)s: “%(value)s” is not a number.", label=p.label, value=text[:20])) from None
    if not math.isfinite(value):
        raise PolicyInputError(_("%(label)s: please enter a number.", label=p.label))
    if whole and value != int(value):
        raise PolicyInputError(_("%(label)s: please enter a whole number.", label=p.label))
    if not p.low <= value <= p.high:
        raise PolicyInputError(
            _("%(label)s must be between %(low)s and %(high)s.", label=p.label, low=_fmt(p.low), high=_fmt(p.high))
        )
    return value


def _fmt(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def parse_value(name: str, text: str) -> Any:
    """One parameter from text, typed like its default.

    Raises:
        PolicyInputError: with a translated message naming the parameter.
    """
    if name not in policy.DEFAULTS:
        raise PolicyInputError(_("Unknown policy parameter “%(name)s”.", name=name[:60]))
    default = policy.DEFAULTS[name]
    if isinstance(default, list):
        parts = [part for part in text.replace("，", ",").split(",") if part.strip()]
        if not parts or len(parts) > 10:
            raise PolicyInputError(_("%(label)s: enter 1 to 10 rates separated by commas.", label=param(name).label))
        return sorted({_number(name, part, whole=False) for part in parts})
    if isinstance(default, float):
        return _number(name, text, whole=False)
    return int(_number(name, text, whole=True))


def parse_changes(form: dict[str, str]) -> dict[str, Any]:
    """Typed changes from ``{name: text}``; checks relations between parameters too.

    Raises:
        PolicyInputError: the first problem, in the user's language.
    """
    changes = {name: parse_value(name, text) for name, text in form.items()}
    low = changes.get("check_min_gap_seconds")
    high = changes.get("check_max_gap_seconds")
    if low is not None and high is not None and low > high:
        raise PolicyInputError(_("The shortest gap between checks must not exceed the longest."))
    return changes


def display(name: str, value: Any) -> str:
    """A value as the form shows it."""
    if isinstance(value, list):
        return ", ".join(_fmt(float(v)) for v in value)
    if isinstance(value, float):
        return _fmt(value)
    return str(value)


def save(changes: dict[str, Any], *, course_id: int | None, actor: Any, note: str) -> policy.PolicyVersion:
    """Store the changes as a new version; does not commit.

    Raises:
        PolicyInputError: the combined parameters are refused (e.g. the course's
            shortest gap would exceed its longest).
    """
    base = dict(policy.current_policy(course_id).params)
    merged = {**base, **changes}
    if merged["check_min_gap_seconds"] > merged["check_max_gap_seconds"]:
        raise PolicyInputError(_("The shortest gap between checks must not exceed the longest."))
    try:
        version = policy.new_version(changes, course_id=course_id, actor=actor, note=note)
    except ValueError as exc:  # a type rule of policy.validate the bounds above did not cover
        raise PolicyInputError(_("The policy was refused: %(reason)s", reason=str(exc))) from None
    course = db.session.get(Course, course_id) if course_id is not None else None
    emit(
        POLICY_CHANGED,
        actor=actor,
        obj=course,
        course_id=course_id,
        object_type=None if course else "anti_idle_policies",
        object_id=None if course else version.version,
        payload={"version": version.version, "course_id": course_id, "changes": changes, "note": note},
    )
    return version
