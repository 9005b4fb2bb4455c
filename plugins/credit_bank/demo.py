"""Demo data for ``make run``: credit produced by the real services, never written into tables.

* A few demo cadres complete published courses through the core's completion service
  (``evaluate_completion``, the path a heartbeat takes once a lesson's rule is met; the
  viewing itself is not simulated), which emits ``course.completed``; the bank's event
  handler posts the course's 学时.
* 李明 (``learner``) submits an offline class claim with a PDF certificate, left pending
  for 南岭县管理员 to review; another cadre's claim is approved.
* 南岭县审计员 reverses one cadre's course credit for 代学代考, with the reason.
* 李明's transcript of the year is issued (signed, logged, verifiable at /credit/verify).
* cadre0001 was promoted to 县处级 three months ago (rank history), so the "within a year
  of promotion" requirement shows with its deadline, and the cadre is on "who is behind".
* The policy converts 网络培训学时 into 学分 at 1:1 (Zhengzhou's practice, a new policy
  version), and 南岭县管理员 converts 1 学时 of 李明's into 1 学分 through the convert page's
  service, so the credit page shows a 学分 balance.

Idempotent: a second run finds everything in place and adds nothing.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable

from sqlalchemy import select

from lms_core.accounts.models import User
from lms_core.db import utcnow
from lms_core.extensions import db
from plugins.credit_bank import ledger as L
from plugins.credit_bank.models import Claim, ClaimStatus, Transfer

COMPLETERS = ("learner", "cadre0001", "cadre0002", "cadre0003")

#: A one-page PDF certificate (as a scanner would produce: the content is checked, not the name).
CERT_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def _user(username: str) -> User | None:
    return db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def _complete_course(user: User, course_id: int) -> bool:
    from lms_core.courses.models import Course, Lesson
    from lms_core.enrolments import services as enrolments
    from lms_core.jobs.services import commit
    from lms_core.learning import services as learning

    course = db.session.get(Course, course_id)
    assert course is not None
    enrolment = learning.enrolment_for(user, course_id) or enrolments.enrol(user, course)
    if enrolment.completed_at is not None:
        return False
    lessons = (
        db.session.execute(
            select(Lesson)
            .where(Lesson.course_id == course_id, Lesson.required.is_(True))
            .order_by(Lesson.position, Lesson.id)
        )
        .scalars()
        .all()
    )
    for lesson in lessons:
        progress = learning.progress_for(user.id, lesson)
        learning.evaluate_completion(user, lesson, progress, enrolment, rule_met=True)
    commit()  # runs the dispatch job inline in development, else the worker does
    return enrolment.completed_at is not None


def load(echo: Callable[[str], object] = print) -> None:
    from lms_core.courses.models import Course
    from lms_core.events.models import Event
    from lms_core.events.services import dispatch
    from plugins.credit_bank import claims, services

    courses = (
        db.session.execute(select(Course.id).where(Course.published.is_(True)).order_by(Course.id).limit(2))
        .scalars()
        .all()
    )
    if not courses:
        echo("credit demo: no published course (run `flask lms demo` first)")
        return
    done = 0
    for i, username in enumerate(COMPLETERS):
        user = _user(username)
        if user is None:
            continue
        for course_id in courses[: 1 + (i % 2)]:
            done += _complete_course(user, course_id)
    # Credit is posted by the bank's event handler; without inline jobs the worker runs it,
    # so dispatch the completions here too (idempotent on the event id) to have it now.
    for event_id in db.session.execute(select(Event.id).where(Event.name == "course.completed")).scalars():
        dispatch(event_id, only_plugin="credit_bank")
    echo(f"credit demo: {done} course completion(s)")

    learner, approved_by = _user("learner"), _user("nanling_admin")
    today = services.local_date(utcnow())
    if learner is not None and not db.session.execute(select(Claim.id).where(Claim.user_id == learner.id)).first():
        claims.submit(
            learner,
            ledger="JZ_XS",
            title="南岭县委党校科级干部进修班",
            organiser="中共南岭县委党校",
            start=today - dt.timedelta(days=12),
            end=today - dt.timedelta(days=10),
            files=[(io.BytesIO(CERT_PDF), "结业证书.pdf")],
        )
        echo("credit demo: 李明's offline claim waits for 南岭县管理员 (审核中)")
    other = _user("cadre0002")
    if (
        other is not None
        and approved_by is not None
        and not db.session.execute(select(Claim.id).where(Claim.user_id == other.id)).first()
    ):
        claim = claims.submit(
            other,
            ledger="DY_XS",
            title="党史学习教育专题党课",
            organiser="南岭县委组织部",
            start=today - dt.timedelta(days=5),
            end=today - dt.timedelta(days=5),
            files=[(io.BytesIO(CERT_PDF), "签到表.pdf")],
        )
        if claim.status == ClaimStatus.SUBMITTED:
            claims.review(claim, approved_by, approve=True, reason="")
    auditor, cheat = _user("nanling_audit"), _user("cadre0003")
    if auditor is not None and cheat is not None:
        posted = db.session.execute(
            select(Transfer.id)
            .where(Transfer.user_id == cheat.id, Transfer.code == "course_complete")
            .order_by(Transfer.seq)
            .limit(1)
        ).scalar_one_or_none()
        if posted is not None:
            res = services.reverse(
                transfer_id=posted, reason="经核查为他人代学（代学代考），予以冲销", actor_id=auditor.id
            )
            if res[0] == L.CREATED:
                echo("credit demo: one course credit of cadre0003 reversed for 代学代考")
    promoted = _user("cadre0001")
    if promoted is not None:
        from plugins.credit_bank import ranks

        if not ranks.entries(promoted.id) and promoted.rank_band.value != "county_and_above":
            ranks.record(
                promoted,
                band="county_and_above",
                effective=today - dt.timedelta(days=90),
                actor=approved_by,
                reason="县委组织部任职通知",
            )
            echo("credit demo: cadre0001 promoted to 县处级 90 days ago (training due within a year)")
    if learner is not None and approved_by is not None:
        _convert_to_credits(learner, approved_by, today, echo)
    if learner is not None:
        from plugins.credit_bank.transcripts import services as transcripts

        if transcripts.current(learner.id, today.year) is None:
            transcripts.issue_transcript(learner, today.year, actor=learner)
            echo(f"credit demo: 李明's {today.year} transcript issued (verify it at /credit/verify)")


#: The demo conversion's idempotency key (a second ``make run`` finds it made).
DEMO_CONVERSION_KEY = "6f2c1a52-8d4e-4b7a-9c3e-0d5b7a1e2f40"


def _convert_to_credits(learner: User, admin: User, today: dt.date, echo: Callable[[str], object]) -> None:
    """A 1:1 学时 -> 学分 rule in the policy, and 1 学时 of 李明's converted by the admin."""
    from lms_core.jobs.services import commit
    from plugins.credit_bank import policy as P
    from plugins.credit_bank import type_conversion

    rules = P.rules_of(P.in_force(today))
    rule = {"from": "WL_XS", "to": "XF", "num": 1, "den": 1}
    if rule not in rules["conversions"]:
        rules["conversions"] = [*rules["conversions"], rule]
        P.add_version(rules, dt.date(today.year, 1, 1), admin.id, "网络培训学时按 1:1 折算学分（参照郑州做法）")
        echo("credit demo: policy version converting 网络培训学时 into 学分 at 1:1")
    if type_conversion.already_made(learner, DEMO_CONVERSION_KEY) is not None:
        return
    _version, _caps, conversions = type_conversion.policy_in_force()
    form = {"rule": str(conversions.index(rule)), "year": str(today.year), "amount": "1.00", "key": DEMO_CONVERSION_KEY}
    plan, errors = type_conversion.plan(learner, form)
    if plan is None or errors:
        echo(f"credit demo: no conversion to 学分 ({'; '.join(errors.values())})")
        return
    if type_conversion.carry_out(learner, plan, admin) == ["created", "created"]:
        commit()  # the credit.converted event is dispatched after the commit
        echo("credit demo: 1 学时 of 李明's converted into 1 学分")
    else:
        db.session.rollback()
