"""Policy as data: versioned anti-idle parameters, site-wide or per course.

``current_policy(course_id)`` is what the credit path uses: the newest override of
that course if there is one, else the newest site-wide version, else the built-in
defaults (version 0). A version is immutable, so ``policy_by_version`` replays
any verdict with exactly the thresholds it used.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from flask import current_app
from sqlalchemy import Integer, bindparam, case, or_, select

from lms_core.extensions import db
from plugins.anti_idle import els
from plugins.anti_idle.models import Policy

#: Built-in defaults (version 0). Times in seconds unless the name says otherwise.
DEFAULTS: dict[str, Any] = {
    #: Cadence the player is asked to keep; a session silent for 3 periods is abandoned.
    "heartbeat_seconds": 10,
    #: Playback rates the player offers; a faster claim is cut to real time (R01).
    "allowed_rates": [0.75, 1.0, 1.25, 1.5],
    #: Hidden (background tab, minimised) time tolerated per hidden episode (R05).
    "hidden_grace_seconds": 60,
    #: Attention checks: first not before, then a random gap in [min, max] of playing time.
    "check_first_after_seconds": 120,
    "check_min_gap_seconds": 600,
    "check_max_gap_seconds": 1200,
    #: Time to answer a check; past it, credit stops until a valid answer (R07).
    "check_window_seconds": 60,
    #: 1: a heartbeat whose claim makes a check owed issues it, whether or not a player
    #: asks (checks follow the media claimed, so a script that never asks still owes
    #: them). 0: checks are issued only when the player asks while playing.
    "checks_follow_claims": 1,
    #: An answer faster than this after render is not human (R07).
    "human_latency_floor_ms": 400,
    #: Time credit per lesson at most this multiple of the media duration (re-watching, bounded).
    "lesson_cap_ratio": 1.5,
    #: Study credited per person and Beijing day at most this; the excess is held (R10).
    "day_cap_seconds": 8 * 3600,
    #: Overlap between two streams tolerated as a device handoff (not flagged).
    "handoff_seconds": 30,
    #: Overlap of playing streams in a day beyond which R04 scores.
    "parallel_flag_seconds": 30,
    #: Media delivered may trail credited viewing by this much before R14 cuts.
    "delivery_slack_seconds": 30,
    #: Documents: time beyond this without trusted input is not credited (R08).
    "idle_seconds": 600,
    #: Review score at which a day is held for audit.
    "hold_score": 50,
    #: 1: beats must carry the session's signature (envelope.py); unsigned beats earn
    #: nothing. 0 only while old player pages may still be open after an upgrade.
    "signed_beats": 1,
    #: R13: the page's clock may run ahead of the server's by this much (page load time).
    "drift_seconds": 10,
    # --- rules judged once per person-day (plugins/anti_idle/day_rules.py) --------------
    #: R02: a lesson whose forward skips exceed this share of its length counts as skipped;
    #: the day scores when this many lessons were skipped.
    "skip_share": 0.1,
    "skip_lessons": 3,
    #: R09: this many events of one kind (session starts, check answers) whose gaps or
    #: latencies vary less than this coefficient of variation look machine-timed.
    "regular_min_events": 8,
    "regular_cv": 0.1,
    #: R09, the design's fit: over at least this many events, a bounded uniform beating a
    #: log-normal by more than this ΔBIC looks like a timer with random jitter.
    "regular_bic_min_events": 20,
    "regular_delta_bic": 10.0,
    #: R10c: study longer than this without a break of at least ``break_seconds``.
    "continuous_seconds": 4 * 3600,
    "break_seconds": 300,
    #: R10d: more than ``night_seconds`` credited between 00:00 and 05:00 (Beijing) on
    #: ``night_days`` of the last 14 days.
    "night_seconds": 3600,
    "night_days": 3,
    #: R12: one device (IP, browser and screen) credited this many accounts at once for
    #: longer than ``shared_overlap_seconds`` in a day.
    "shared_accounts": 2,
    "shared_overlap_seconds": 60,
    #: R12d: this many accounts studied from one data-centre address range in a day.
    "datacentre_accounts": 3,
    #: R15: this many check answers within ``cycling_seconds`` is option cycling.
    "cycling_answers": 3,
    "cycling_seconds": 5,
    #: R17: this share of the items studied in 14 days (at least ``cherry_min_items``)
    #: among the shortest tenth of their courses (informational only).
    "cherry_share": 0.8,
    "cherry_min_items": 5,
}


@dataclass(frozen=True)
class PolicyVersion:
    version: int
    course_id: int | None
    params: MappingProxyType[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    @property
    def max_rate(self) -> float:
        return float(max(self.params["allowed_rates"]))

    @functools.cached_property
    def els_params(self) -> els.Params:
        """``els.params_of(params)``, once per version object (a version never changes; the
        beat path asked ~18 µs of it on every beat)."""
        return els.params_of(self.params)


#: The defaults' version as last built, with the values it was built from: rebuilt when
#: ``DEFAULTS`` differs (tests change it), so its ``els_params`` is kept across beats.
_defaults: list[tuple[dict[str, Any], PolicyVersion]] = []


def _wrap(row: Policy | None) -> PolicyVersion:
    if row is None:
        if _defaults and _defaults[0][0] == DEFAULTS:
            return _defaults[0][1]
        snapshot = dict(DEFAULTS)
        # Its own copies: a list value changed in place in DEFAULTS must not change this one.
        built = PolicyVersion(0, None, MappingProxyType(copy.deepcopy(snapshot)))
        _defaults[:] = [(copy.deepcopy(snapshot), built)]
        return built
    return PolicyVersion(row.id, row.course_id, MappingProxyType({**DEFAULTS, **row.params}))


def current_policy(course_id: int | None = None) -> PolicyVersion:
    """The policy in force for a course (or the site when ``course_id`` is None).

    One statement (the heartbeat asks on every beat): the course's newest override
    sorts before the newest site-wide version.
    """
    version = db.session.execute(policy_version_statement(), {"course_id": course_id}).scalar_one_or_none()
    return in_force(version)


def in_force(version: int | None) -> PolicyVersion:
    """The policy of a version found in force (None: no version stored, the defaults)."""
    return _version(version) if version is not None else _wrap(None)


def _version(version: int) -> PolicyVersion:
    """A stored version's parameters, read once per app (process): a version is never changed
    (editing makes a new one), so only which version is in force is asked per beat."""
    known: dict[int, PolicyVersion] = current_app.extensions.setdefault("anti_idle_policy_versions", {})
    found = known.get(version)
    if found is None:
        found = known[version] = policy_by_version(version)
    return found


@functools.cache
def policy_version_statement() -> Any:
    """The version in force for the course bound as ``course_id`` (NULL: the site's): the
    course's newest override sorts before the newest site-wide version. Built once per
    process (asked on every beat, inside the person's state read: ``state.load``)."""
    course = bindparam("course_id", type_=Integer)
    return (
        select(Policy.id)
        .where(or_(Policy.course_id == course, Policy.course_id.is_(None)))
        .order_by(case((Policy.course_id.is_(None), 1), else_=0), Policy.id.desc())
        .limit(1)
    )


def policy_by_version(version: int) -> PolicyVersion:
    """Exactly the parameters of one version (0: the built-in defaults)."""
    if version == 0:
        return _wrap(None)
    row = db.session.get(Policy, version)
    if row is None:
        raise KeyError(f"no anti-idle policy version {version}")
    return _wrap(row)


def validate(params: dict[str, Any]) -> dict[str, Any]:
    """Check names and types against the defaults; returns the cleaned dict.

    Raises:
        ValueError: an unknown name, a wrong type, or a value out of range.
    """
    clean: dict[str, Any] = {}
    for key, value in params.items():
        if key not in DEFAULTS:
            raise ValueError(f"unknown policy parameter {key!r}")
        default = DEFAULTS[key]
        if isinstance(default, list):
            if (
                not isinstance(value, list)
                or not value
                or len(value) > 10
                or not all(isinstance(v, int | float) and not isinstance(v, bool) and 0.1 <= v <= 4 for v in value)
            ):
                raise ValueError(f"{key} must be a list of 1-10 rates between 0.1 and 4")
            clean[key] = sorted({float(v) for v in value})
        elif isinstance(default, float):
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 10:
                raise ValueError(f"{key} must be a number between 0 and 10")
            clean[key] = float(value)
        else:
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 86_400_000:
                raise ValueError(f"{key} must be a whole number between 0 and 86400000")
            clean[key] = value
    if clean.get("check_min_gap_seconds", 0) > clean.get("check_max_gap_seconds", 10**9):
        raise ValueError("check_min_gap_seconds must not exceed check_max_gap_seconds")
    return clean


def new_version(
    changes: dict[str, Any], *, course_id: int | None = None, actor: Any = None, note: str = ""
) -> PolicyVersion:
    """Store a new version (site-wide, or an override for one course); does not commit.

    A course override starts from the policy currently in force for that course, so
    it stays a complete set of parameters.
    """
    base = current_policy(course_id)
    params = {**dict(base.params), **validate(changes)}
    validate(params)
    row = Policy(course_id=course_id, params=params, note=note[:500], created_by_id=getattr(actor, "id", None))
    db.session.add(row)
    db.session.flush()
    return _wrap(row)
