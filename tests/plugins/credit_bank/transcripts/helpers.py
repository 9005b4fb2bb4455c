"""Credit posted through the real ledger service, for transcript tests."""

from __future__ import annotations

import datetime as dt

from lms_core.accounts.models import User
from plugins.credit_bank import ledger as L
from plugins.credit_bank.models import T_PENDING, T_POST_PENDING

DAY = dt.date(2025, 5, 1)


COURSE = "课程：习近平新时代中国特色社会主义思想概论"


def post(user: User, key: str, amount: int, *, memo: str = COURSE, **kw: object) -> str:
    spec = L.TransferSpec(
        id=L.transfer_id(key),
        code="course_complete",
        effective_date=kw.pop("day", DAY),  # type: ignore[arg-type]
        amount=amount,
        debit=L.issuer("WL_XS"),
        credit=L.counted("WL_XS", user.id, 2025),
        user_id=user.id,
        memo=memo,
        **kw,
    )  # type: ignore[arg-type]
    result = L.submit([[spec]])[0][0]
    assert result == "created", result
    return spec.id


def history(user: User) -> None:
    """2.00 + 1.50 posted, a claim of 3.00 under review, one of 4.00 approved at 3.50, a reversal of 1.50."""
    post(user, f"c1-{user.id}", 200)
    second = post(user, f"c2-{user.id}", 150, memo="课程：党史学习")
    post(user, f"claim-{user.id}", 300, memo="线下培训：市委党校", flags=T_PENDING)
    held = post(user, f"claim2-{user.id}", 400, memo="线下培训：县委党校", flags=T_PENDING)
    approve = L.TransferSpec(
        id=L.transfer_id(f"claim2-post-{user.id}"),
        code="offline_class",
        effective_date=DAY,
        amount=350,
        flags=T_POST_PENDING,
        pending_id=held,
        user_id=user.id,
    )
    assert L.submit([[approve]])[0][0] == "created"
    reverse = L.TransferSpec(
        id=L.transfer_id(f"rev-{user.id}"),
        code="reversal",
        effective_date=DAY,
        reverses_id=second,
        user_id=user.id,
        memo="代学代考，撤销学时",
    )
    assert L.submit([[reverse]])[0][0] == "created"
