"""Attention checks: issued by the server on a random schedule, answered once, judged on the server.

Schedule. A person owes a check after a random amount of *playing* time since
their last valid answer (or, before the first one, since the first check may
come): the first after ``check_first_after_seconds`` plus a random part of
``[0, check_max_gap_seconds - check_min_gap_seconds]``, later ones after a random
gap in ``[check_min_gap_seconds, check_max_gap_seconds]``. Playing time is the
media time the person's beats claimed (server ledger, every session and tab),
so reloading the page or opening another tab does not restart the clock. The
random draw is an HMAC of the person and the reference time under the app's
secret key: the client cannot predict it, and the schedule needs no stored state.

Reveal. A check row is created when it is owed, at the first of: the player asks
for it while the person is playing (server evidence: a beat with claimed media in
the last few cadences), or a heartbeat claiming media takes the person's claimed
time past the owed amount (``beat_check``, in the beat's transaction). The second
is what makes checks follow the media *claimed*, not the media a page says it
plays: a script that sends beats and never asks for a check still owes one, and
its credit stops when the window lapses. ``issued_at`` is the server's time of
creation and ``due_at = issued_at + window``; the challenge goes to the client only
when it asks, so the answer is in no page before the check is due. A video beat's
answer says whether a check is open (or owed) for the person (``beat_check``: its
``check`` field, never the challenge), and the player asks only then, when a page
opens, and between beats on a course with frequent checks. One open check per
person: any of their tabs shows it.

Answer. ``answer_check`` redeems the single-use token once (a second answer is a
409), timestamps it with the server's receive time and judges it:
* ``automated`` when the click was not trusted (``isTrusted`` false: a script's
  ``element.click()``), or the latency since render, as the client measured it
  or as the server measured it, is below ``human_latency_floor_ms``;
* ``wrong`` for a wrong choice; a fresh check follows at once (one retry);
* ``passed`` otherwise, also when late: the credit path then stops credit from
  ``due_at`` to ``answered_at``.
A person whose last check is not ``passed`` owes a new check at once, so credit
stays stopped until a human answers one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from lms_core.accounts.models import User
from lms_core.courses.models import Lesson, LessonKind
from lms_core.db import utcnow
from lms_core.events.services import emit
from lms_core.expiring import Bounded
from lms_core.extensions import db
from lms_core.learning.models import LearningInterval, LearningSession
from lms_core.learning.services import person_clock
from plugins.anti_idle import els, rejudge
from plugins.anti_idle.events import CHECK_ANSWERED, CHECK_ISSUED
from plugins.anti_idle.inputs import CLOCK_STEP_MARGIN, LastCheck, Owed
from plugins.anti_idle.models import (
    CHECK_AUTOMATED,
    CHECK_PASSED,
    CHECK_PENDING,
    CHECK_WRONG,
    AttentionCheck,
    CheckClock,
)
from plugins.anti_idle.policy import PolicyVersion, current_policy

#: How the learner reached the answer control, as the script reports it.
INPUT_MODES = {"pointer", "touch", "keyboard", "none"}
#: Options shown per check.
OPTION_COUNT = 4
#: The person counts as playing if a beat claimed media within this many cadences.
PLAYING_CADENCES = 3


class CheckError(ValueError):
    """A request about a check that cannot be honoured; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Judged:
    check: AttentionCheck
    outcome: str
    message: str


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite hands datetimes back naive; they are UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


#: The draws' numbers kept per app (``app.extensions``), by secret, person and reference
#: (a UTC time itself, another as ``_draw``'s message spells it): every video beat asks for
#: its person's next check (``beat_check``), and the number changes only with the reference
#: (a check answered or issued). Full, the oldest goes (``expiring.Bounded``, as the envelope's keys).
_DRAWS_MAX = 50_000


def _draw(user_id: int, reference: dt.datetime, low: int, high: int) -> int:
    """A number in [low, high] the client cannot predict: an HMAC under the app's secret.

    The HMAC's first 8 bytes are kept per (secret, person, reference): a function of those
    alone, so the same number as computing it again (an HMAC object set up with its two
    hash objects, about a tenth of a video beat's hook otherwise)."""
    if high <= low:
        return low
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # one proxy look-up
    secret = str(app.config["SECRET_KEY"])  # what the HMAC is keyed with
    # A UTC time (every reference the beat path gives) is the key itself: equal UTC datetimes
    # have equal fields, so one ``isoformat`` (~10,000 instructions) is the same message.
    # Any other is keyed by its message (an equal instant in another zone spells another).
    key: tuple[Any, ...] = (
        (secret, user_id, reference)
        if type(reference) is dt.datetime and reference.tzinfo is dt.UTC and type(user_id) is int
        else (secret, f"anti-idle-check:{user_id}:{reference.isoformat()}")
    )
    draws: Bounded[tuple[Any, ...], int] | None = app.extensions.get("anti_idle_check_draws")
    if draws is None:
        draws = app.extensions.setdefault("anti_idle_check_draws", Bounded(_DRAWS_MAX))
    number = draws.map.get(key)
    if number is None:
        message = f"anti-idle-check:{user_id}:{reference.isoformat()}"
        digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
        number = int.from_bytes(digest[:8], "big")
        draws.keep(key, number)
    return low + number % (high - low + 1)


def last_check(user_id: int) -> AttentionCheck | None:
    return db.session.execute(
        select(AttentionCheck).where(AttentionCheck.user_id == user_id).order_by(AttentionCheck.id.desc()).limit(1)
    ).scalar_one_or_none()


def open_check(user_id: int) -> AttentionCheck | None:
    """The person's revealed check still waiting for an answer, if any."""
    check = last_check(user_id)
    return check if check is not None and check.outcome == CHECK_PENDING else None


def _playing_ms_since(user_id: int, since: dt.datetime | None, *, remember: bool = True) -> int:
    """Claimed ms of the person's intervals with ``wall_end`` after ``since`` (all if None).

    O(1) per poll: the person's ``CheckClock`` keeps the sum up to the last interval it
    saw, so only the intervals stored since are added (an index range on
    ``(user_id, wall_end)`` of a few rows). A new reference (a check answered or issued)
    starts the memo again from that time, which sums only what came after it. The caller
    holds the person's clock row (``person_clock``), so no interval of theirs is being
    stored meanwhile and two polls do not race on the memo. ``remember=False`` (the beat
    path) reads the memo without writing it: a beat does not pay an UPDATE for it.
    """
    memo = db.session.get(CheckClock, user_id)
    if memo is not None and (_aware(memo.reference_at) if memo.reference_at else None) != since:
        if remember:
            memo.reference_at, memo.played_ms, memo.through_id, memo.through_wall_end = since, 0, 0, None
        else:
            memo = None
    played, through_id, through_end = (
        (0, 0, None) if memo is None else (memo.played_ms, memo.through_id, memo.through_wall_end)
    )
    stmt = select(
        func.coalesce(func.sum(LearningInterval.claimed_ms), 0),
        func.max(LearningInterval.id),
        func.max(LearningInterval.wall_end),
    ).where(LearningInterval.user_id == user_id, LearningInterval.id > through_id)
    if since is not None:
        stmt = stmt.where(LearningInterval.wall_end > since)
    if through_end is not None:
        stmt = stmt.where(LearningInterval.wall_end >= _aware(through_end) - CLOCK_STEP_MARGIN)
    added, last_id, last_end = db.session.execute(stmt).one()
    played += int(added)
    if remember and last_id is not None:
        if memo is None:
            memo = CheckClock(user_id=user_id, reference_at=since)
            db.session.add(memo)
        memo.played_ms, memo.through_id, memo.through_wall_end = played, last_id, last_end
    return played


def _is_playing(session: LearningSession, policy: PolicyVersion, now: dt.datetime) -> bool:
    recent = now - dt.timedelta(seconds=PLAYING_CADENCES * int(policy["heartbeat_seconds"]))
    return (
        db.session.execute(
            select(LearningInterval.id)
            .where(
                LearningInterval.session_id == session.id,
                LearningInterval.wall_end >= recent,
                LearningInterval.claimed_ms > 0,
            )
            .limit(1)
        ).first()
        is not None
    )


_UNREAD: Any = object()


def owed_after_ms(
    user_id: int, policy: PolicyVersion, last: AttentionCheck | LastCheck | None = _UNREAD
) -> tuple[dt.datetime | None, int]:
    """(reference time, playing ms after it at which the next check is owed).

    ``last`` is the person's latest check when the caller has read it already.
    """
    if last is _UNREAD:
        last = last_check(user_id)
    if last is not None and last.outcome != CHECK_PASSED:
        return _aware(last.answered_at or last.issued_at), 0  # wrong or automated: a new check at once
    first_after = int(policy["check_first_after_seconds"])
    low, high = int(policy["check_min_gap_seconds"]), int(policy["check_max_gap_seconds"])
    if last is None:
        # Before the first check, everything the person ever played counts toward it.
        return None, 1000 * (first_after + _draw(user_id, dt.datetime(2000, 1, 1, tzinfo=dt.UTC), 0, high - low))
    reference = _aware(last.answered_at or last.issued_at)
    return reference, 1000 * _draw(user_id, reference, low, high)


def poll_interval_ms(lesson: Lesson) -> int:
    """How often the player asks for a due check between beats (0: only after each beat).

    The server reveals a check at the first ask after it is owed, so asking at least
    four times per shortest gap keeps a frequent schedule (a test course's 30 s) close
    to its draw; the usual 10-20 min gaps need no more than the beats give.
    """
    policy = current_policy(lesson.course_id)
    gap = min(int(policy["check_min_gap_seconds"]), int(policy["check_first_after_seconds"]) or 10**9)
    every = max(2, gap // 4)
    return 0 if every >= int(policy["heartbeat_seconds"]) else every * 1000


def _challenge() -> tuple[dict[str, Any], str]:
    """Pick the highlighted number: four distinct two-digit numbers, one of them asked for."""
    rng = secrets.SystemRandom()
    options = [str(n) for n in rng.sample(range(10, 100), OPTION_COUNT)]
    expected = rng.choice(options)
    return {"kind": "pick_number", "target": expected, "options": options}, expected


def issue_if_due(session: LearningSession, user: User, *, now: dt.datetime | None = None) -> AttentionCheck | None:
    """The person's open check, or a new one if one is owed now; does not commit.

    Called by the player while it plays (``poll_check``). Returns None when no
    check is due, for a lesson without media, or when the session is not playing.
    """
    now = now or utcnow()
    # The person's clock row is what every beat of theirs locks (learning.person_clock):
    # taking it here serialises this poll with a beat whose claim issues the owed check
    # (beat_check), so the two cannot both find no open check and issue one each.
    person_clock(user.id)
    last = last_check(user.id)
    if last is not None and last.outcome == CHECK_PENDING:
        return last
    lesson = db.session.get(Lesson, session.lesson_id)
    if lesson is None or lesson.kind != LessonKind.VIDEO or session.ended_at is not None:
        return None
    policy = current_policy(lesson.course_id)
    if not _is_playing(session, policy, now):
        return None
    reference, owed_ms = owed_after_ms(user.id, policy, last)
    if owed_ms and _playing_ms_since(user.id, reference) < owed_ms:
        return None
    return _create(session.id, user, lesson, policy, now)


#: What a video beat's answer says of the person's attention check (its ``check`` field,
#: ``beat_check``): one is revealed and waits for an answer, or one is owed and the
#: player's ask reveals it. No field: nothing to ask for.
OPEN, DUE = "open", "due"


def beat_check(
    session_id: str,
    user_id: int,
    lesson_id: int,
    claimed_ms: int,
    policy: PolicyVersion,
    now: dt.datetime,
    known: Owed | None = None,
) -> str | None:
    """Create the check a video heartbeat's claim makes owed, whether or not a player asked
    (unless the policy leaves issuing to the player's ask, ``checks_follow_claims`` off), and
    say what the beat's answer tells the player: :data:`OPEN` (a
    check waits for an answer: this beat's claim issued it, or it was open already),
    :data:`DUE` (owed, but the policy leaves issuing it to the player's ask,
    ``checks_follow_claims`` off) or None (nothing to ask for).

    So the player asks for a check (``POST .../check``) only when one is there, not after
    every beat. The answer says only that: the challenge still reaches the page when it
    asks, the server's reveal, as before.

    Called in the heartbeat's transaction, before the beat's interval is stored, so
    ``claimed_ms`` (the beat's own claim) is added to what the ledger already holds.
    Nothing is issued when a check is open already. ``known``: the latest check and the
    playing time since its reference, when the beat's read brought them (``state_pg``: no
    statement of its own here then).
    """
    if claimed_ms <= 0:
        return None
    last = last_check(user_id) if known is None else known.last
    if last is not None and last.outcome == CHECK_PENDING:
        return OPEN
    reference, owed_ms = owed_after_ms(user_id, policy, last)
    if owed_ms:
        played = _playing_ms_since(user_id, reference, remember=False) if known is None else known.played_ms
        if played + claimed_ms < owed_ms:
            return None
    if not int(policy["checks_follow_claims"]):
        return DUE
    user = db.session.get(User, user_id)
    lesson = db.session.get(Lesson, lesson_id)
    if user is None or lesson is None:
        return None
    _create(session_id, user, lesson, policy, now)
    return OPEN


def _create(session_id: str, user: User, lesson: Lesson, policy: PolicyVersion, now: dt.datetime) -> AttentionCheck:
    challenge, expected = _challenge()
    window = int(policy["check_window_seconds"])
    check = AttentionCheck(
        token=secrets.token_urlsafe(24),
        session_id=session_id,
        user_id=user.id,
        lesson_id=lesson.id,
        issued_at=now,
        window_seconds=window,
        due_at=now + dt.timedelta(seconds=window),
        challenge=challenge,
        expected=expected,
        outcome=CHECK_PENDING,
        policy_version=policy.version,
    )
    db.session.add(check)
    db.session.flush()
    # Its window may end with no beat of the person to judge the day again (R07h).
    rejudge.schedule(user.id, els.beijing_day(now), check.due_at, check.id)
    emit(
        CHECK_ISSUED,
        actor=user,
        obj=lesson,
        course_id=lesson.course_id,
        payload={
            "check_id": check.id,
            "session_id": session_id,
            "due_at": check.due_at.isoformat(),
            "policy_version": policy.version,
        },
    )
    return check


def client_view(check: AttentionCheck, now: dt.datetime | None = None) -> dict[str, Any]:
    """What the player may see of a revealed check: never ``expected``."""
    now = now or utcnow()
    challenge = check.challenge or {}
    return {
        "token": check.token,
        "prompt": _("Please choose the number %(n)s", n=challenge.get("target", "")),
        "options": list(challenge.get("options", [])),
        "window_seconds": check.window_seconds,
        "due_in_ms": max(0, els.ms(_aware(check.due_at) - now)),
    }


def _parse_answer(raw: Any) -> tuple[str, bool, int | None, str]:
    if not isinstance(raw, dict):
        raise CheckError(_("The answer must be a JSON object."))
    answer = raw.get("answer")
    if not isinstance(answer, str) or not 0 < len(answer) <= 64 or "\x00" in answer:
        raise CheckError(_("The answer is missing or too long."))
    trusted = raw.get("trusted")
    if not isinstance(trusted, bool):
        raise CheckError(_("The answer must say whether the click was trusted."))
    latency = raw.get("latency_ms")
    if latency is not None and (
        not isinstance(latency, int) or isinstance(latency, bool) or not 0 <= latency <= 86_400_000
    ):
        raise CheckError(_("The answer latency must be a whole number of milliseconds."))
    mode = raw.get("input_mode", "none")
    if mode not in INPUT_MODES:
        raise CheckError(_("Unknown input mode."))
    return answer, trusted, latency, str(mode)


def answer_check(token: str, user: User, raw: Any, *, now: dt.datetime | None = None) -> Judged:
    """Redeem a check's single-use token with an answer; does not commit.

    Raises:
        CheckError: 400 for a malformed answer, 404 for a token that is not this
            person's, 409 for a check already answered.
    """
    answer, trusted, latency, mode = _parse_answer(raw)
    now = now or utcnow()
    stmt = select(AttentionCheck).where(AttentionCheck.token == token[:64])
    if db.session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()  # two answers racing: one wins, the other sees it answered
    check = db.session.execute(stmt).scalar_one_or_none()
    if check is None or check.user_id != user.id:
        raise CheckError(_("Unknown attention check."), 404)
    if check.outcome != CHECK_PENDING or check.answered_at is not None:
        raise CheckError(_("This attention check has already been answered."), 409)
    policy_floor = int(current_policy(_course_of(check)).params["human_latency_floor_ms"])
    server_latency = els.ms(now - _aware(check.issued_at))
    if not trusted or server_latency < policy_floor or (latency is not None and latency < policy_floor):
        outcome, message = (
            CHECK_AUTOMATED,
            _("This answer did not come from a person's click or key press. Please answer the new check yourself."),
        )
    elif answer != check.expected:
        outcome, message = CHECK_WRONG, _("That is not the number asked for. Please answer the new check.")
    else:
        outcome, message = CHECK_PASSED, _("Answer recorded. Study time is being counted.")
    check.answered_at = now
    check.answer = answer
    check.trusted = trusted
    check.latency_ms = latency
    check.server_latency_ms = server_latency
    check.input_mode = mode
    check.outcome = outcome
    lesson = db.session.get(Lesson, check.lesson_id)
    emit(
        CHECK_ANSWERED,
        actor=user,
        obj=lesson,
        course_id=lesson.course_id if lesson else None,
        payload={
            "check_id": check.id,
            "outcome": outcome,
            "late": now > _aware(check.due_at),
            "trusted": trusted,
            "latency_ms": latency,
            "server_latency_ms": server_latency,
            "input_mode": mode,
        },
    )
    return Judged(check, outcome, message)


def _course_of(check: AttentionCheck) -> int | None:
    lesson = db.session.get(Lesson, check.lesson_id)
    return lesson.course_id if lesson else None


__all__ = [
    "CHECK_WRONG",
    "DUE",
    "OPEN",
    "CheckError",
    "Judged",
    "answer_check",
    "beat_check",
    "client_view",
    "issue_if_due",
    "open_check",
]
