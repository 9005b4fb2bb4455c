"""Business operations on the ledger: earn (with caps), hold, resolve, reverse, close a year.

Each function builds transfers and calls :mod:`plugins.credit_bank.ledger`; none writes a
balance itself. Amounts are centi-学时; the year of a posting is the Asia/Shanghai year of
its effective date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from lms_core.db import utcnow
from lms_core.extensions import db
from lms_core.i18n import SHANGHAI as SHANGHAI  # re-exported: modules here read it from this one
from plugins.credit_bank import ledger as L
from plugins.credit_bank import policy as P
from plugins.credit_bank.models import (
    FLAG_CLOSED,
    T_PENDING,
    T_POST_PENDING,
    T_VOID_PENDING,
    Account,
    AccountKind,
    Transfer,
    TransferCode,
)

#: Codes that move credit out of a year at close; progress toward a year's requirement
#: counts the balance *before* them.
CLOSE_CODES = (TransferCode.CARRY_FORWARD.value, TransferCode.EXPIRY.value)


def local_date(moment: dt.datetime) -> dt.date:
    return moment.astimezone(SHANGHAI).date()


@dataclass(frozen=True)
class EarnResult:
    status: str  #: created | exists | an error code
    counted: int = 0
    overflow: int = 0
    policy_version: int | None = None


def _leg_ids(key: str) -> tuple[str, str]:
    return L.transfer_id(key), L.transfer_id(key + ":overflow")


def _exists(ids: tuple[str, ...]) -> bool:
    return db.session.execute(select(Transfer.id).where(Transfer.id.in_(ids)).limit(1)).first() is not None


def _counted_room(rules: dict[str, Any], ledger: str, user_id: int, day: dt.date, amount: int) -> int:
    """How much of ``amount`` may count under the caps (the rest overflows)."""
    cap = P.cap_of(rules, ledger)
    room = amount
    if cap["per_item"] is not None:
        room = min(room, cap["per_item"])
    if cap["per_year"] is None and cap["per_day"] is None:
        return room
    acct = L._find_accounts([L.counted(ledger, user_id, day.year)], lock=True)
    a = next(iter(acct.values()), None)
    if cap["per_year"] is not None:
        so_far = 0 if a is None else a.cp + a.cpe - a.dp
        room = min(room, max(0, cap["per_year"] - so_far))
    if cap["per_day"] is not None and a is not None:
        t = L.TRANSFERS
        day_sum = int(
            db.session.execute(
                select(func.coalesce(func.sum(t.c.amount), 0)).where(
                    t.c.credit_account_id == a.id,
                    t.c.effective_date == day,
                    t.c.flags.op("&")(T_VOID_PENDING | T_POST_PENDING) == 0,
                    t.c.code.not_in(CLOSE_CODES),
                )
            ).scalar_one()
        )
        room = min(room, max(0, cap["per_day"] - day_sum))
    return max(0, room)


def earn(
    *,
    key: str,
    user_id: int,
    ledger: str,
    amount: int,
    day: dt.date,
    code: str,
    issuer: int = L.ISSUER_PLATFORM,
    policy_version: int | None = None,
    actor_id: int | None = None,
    evidence_ref: str | None = None,
    memo: str | None = None,
    pending: bool = False,
    timeout_seconds: int | None = None,
    commit: bool = True,
) -> EarnResult:
    """Credit a cadre: the counted part up to the caps, the excess to overflow (linked).

    Idempotent on ``key``: a retry answers ``exists`` without recomputing the caps, which
    may have changed since. ``pending`` places a hold (审核中) instead; see :func:`resolve`.
    """
    ids = _leg_ids(key)
    if _exists(ids):
        return EarnResult(L.EXISTS)
    if amount <= 0:
        return EarnResult("nothing_to_credit")
    pol = P.in_force(day)
    rules = P.rules_of(pol)
    version = policy_version or pol.version
    L._ensure_accounts(
        [L.counted(ledger, user_id, day.year), L.overflow(ledger, user_id, day.year), L.issuer(ledger, issuer)]
    )
    room = _counted_room(rules, ledger, user_id, day, amount)
    flags = T_PENDING if pending else 0
    common: dict[str, Any] = {
        "code": code,
        "effective_date": day,
        "flags": flags,
        "policy_version": version,
        "user_id": user_id,
        "actor_id": actor_id,
        "evidence_ref": evidence_ref,
        "memo": memo,
        "timeout_seconds": timeout_seconds if pending else None,
    }
    group = []
    if room > 0:
        group.append(
            L.TransferSpec(
                id=ids[0],
                amount=room,
                debit=L.issuer(ledger, issuer),
                credit=L.counted(ledger, user_id, day.year),
                **common,
            )
        )
    if amount - room > 0:
        group.append(
            L.TransferSpec(
                id=ids[1],
                amount=amount - room,
                debit=L.issuer(ledger, issuer),
                credit=L.overflow(ledger, user_id, day.year),
                **{**common, "code": TransferCode.CAP_OVERFLOW.value, "memo": memo or "cap_reached"},
            )
        )
    results = L.apply([group]) if not commit else L.submit([group])
    status = next((r for r in results[0] if r not in (L.CREATED, L.EXISTS)), results[0][0])
    return EarnResult(status, room, amount - room, version)


def resolve(
    *,
    key: str,
    post: bool,
    amount: int | None = None,
    actor_id: int | None = None,
    memo: str | None = None,
    commit: bool = True,
) -> str:
    """Post (``amount`` ≤ held, default all) or void the hold placed by ``earn(key=..., pending=True)``.

    A partial post takes from the counted leg first; the overflow leg posts the rest.
    """
    ids = _leg_ids(key)
    holds = {r.id: r for r in db.session.execute(select(Transfer).where(Transfer.id.in_(ids))).scalars()}
    if not holds:
        return "pending_transfer_not_found"
    verb = "post" if post else "void"
    left = amount
    group = []
    for leg in ids:
        h = holds.get(leg)
        if h is None:
            continue
        part: int | None = None
        if post and left is not None:
            part = min(left, h.amount)
            left -= part
            if part == 0:
                # Nothing of this leg is posted: void it instead.
                group.append(
                    L.TransferSpec(
                        id=L.transfer_id(f"{leg}:void"),
                        code=h.code,
                        effective_date=h.effective_date,
                        flags=T_VOID_PENDING,
                        pending_id=h.id,
                        user_id=h.user_id,
                        actor_id=actor_id,
                        memo=memo,
                    )
                )
                continue
        group.append(
            L.TransferSpec(
                id=L.transfer_id(f"{leg}:{verb}"),
                code=h.code,
                effective_date=h.effective_date,
                amount=part,
                flags=T_POST_PENDING if post else T_VOID_PENDING,
                pending_id=h.id,
                policy_version=h.policy_version,
                user_id=h.user_id,
                actor_id=actor_id,
                memo=memo,
            )
        )
    results = L.submit([group]) if commit else L.apply([group])
    bad = [r for r in results[0] if r not in (L.CREATED, L.EXISTS)]
    if bad:
        return (
            bad[0] if bad[0] != "linked_event_failed" else next((r for r in bad if r != "linked_event_failed"), bad[0])
        )
    return results[0][0]


def reverse(
    *, transfer_id: str, reason: str, actor_id: int | None, key: str | None = None, commit: bool = True
) -> list[str]:
    """Reverse a credit in full (e.g. 代学代考 found), with its linked legs, keeping the reason.

    Idempotent on ``key`` (default: one full reversal per original).
    """
    reason = (reason or "").strip()
    if not reason:
        return ["reason_required"]
    original = db.session.execute(select(Transfer).where(Transfer.id == transfer_id)).scalar_one_or_none()
    if original is None:
        return ["reversed_transfer_not_found"]
    legs = [original]
    if original.group_id:
        legs = list(
            db.session.execute(
                select(Transfer).where(Transfer.group_id == original.group_id).order_by(Transfer.seq)
            ).scalars()
        )
    if original.flags & T_POST_PENDING and original.pending_id:
        legs = [original]
    group = [
        L.TransferSpec(
            id=L.transfer_id(f"reverse:{leg.id}:{key or 'full'}"),
            code=TransferCode.REVERSAL.value,
            effective_date=local_date(utcnow()),
            reverses_id=leg.id,
            user_id=leg.user_id,
            actor_id=actor_id,
            memo=reason[:1000],
            policy_version=leg.policy_version,
        )
        for leg in legs
        if not leg.flags & (T_PENDING | T_VOID_PENDING)
    ]
    if not group:
        return ["reversed_transfer_not_found"]
    results = L.submit([group]) if commit else L.apply([group])
    return results[0]


def close_year(year: int, *, actor_id: int | None = None, progress: Any = None) -> dict[str, int]:
    """Year-end close: carry forward or expire every counted balance of ``year``, then close it.

    What is left on a counted account (posted balance less pending debits) moves to the next
    year's counted account up to ``carry_cap_centi`` (mode ``carry_forward``), the rest to the
    expiry sink. Then the year's cadre accounts are marked closed: no new posting may touch
    them (a pending hold on them can still be voided). Idempotent: a closed year is skipped.
    """
    rules = P.rules_of(P.in_force(dt.date(year, 12, 31)))
    version = P.in_force(dt.date(year, 12, 31)).version
    mode, cap = rules["year_end"]["mode"], int(rules["year_end"].get("carry_cap_centi", 0))
    day = dt.date(year, 12, 31)
    stats = {"accounts": 0, "carried": 0, "expired": 0}
    ids = list(
        db.session.execute(
            select(Account.id)
            .where(
                Account.period == year,
                Account.kind == AccountKind.COUNTED.value,
                Account.flags.op("&")(FLAG_CLOSED) == 0,
            )
            .order_by(Account.id)
        ).scalars()
    )
    for n, aid in enumerate(ids):
        acct = db.session.get(Account, aid)
        assert acct is not None
        code = L.ledger_code(acct.ledger_id)
        left = acct.credits_posted - acct.debits_posted - acct.debits_pending
        group = []
        carry = min(left, cap) if mode == "carry_forward" else 0
        if carry > 0:
            group.append(
                L.TransferSpec(
                    id=L.transfer_id(f"close:{aid}:carry"),
                    code=TransferCode.CARRY_FORWARD.value,
                    effective_date=day,
                    amount=carry,
                    debit=L.counted(code, acct.owner_id, year),
                    credit=L.counted(code, acct.owner_id, year + 1),
                    policy_version=version,
                    user_id=acct.owner_id,
                    actor_id=actor_id,
                )
            )
        if left - carry > 0:
            group.append(
                L.TransferSpec(
                    id=L.transfer_id(f"close:{aid}:expire"),
                    code=TransferCode.EXPIRY.value,
                    effective_date=day,
                    amount=left - carry,
                    debit=L.counted(code, acct.owner_id, year),
                    credit=L.expired(code),
                    policy_version=version,
                    user_id=acct.owner_id,
                    actor_id=actor_id,
                )
            )
        if group:
            L.apply([group])
        stats["accounts"] += 1
        stats["carried"] += carry
        stats["expired"] += max(0, left - carry)
        if progress and n % 500 == 0:
            progress(n)
    from sqlalchemy import update

    db.session.execute(
        update(Account)
        .where(Account.period == year, Account.kind.in_([AccountKind.COUNTED.value, AccountKind.OVERFLOW.value]))
        .values(flags=Account.flags.op("|")(FLAG_CLOSED)),
        execution_options={"synchronize_session": False},
    )
    db.session.commit()
    return stats


#: Issuer number of the conversion pools (one ISSUER account per ledger acts as the pool).
CONVERSION_POOL = 9


def convert(
    *,
    key: str,
    user_id: int,
    year: int,
    from_ledger: str,
    to_ledger: str,
    amount: int,
    num: int,
    den: int,
    actor_id: int | None = None,
    policy_version: int | None = None,
    commit: bool = True,
) -> list[str]:
    """Convert counted credit of one type into another at ``num/den`` (e.g. 学时 → 学分).

    Two linked legs through the conversion pools: counted[from] → pool[from] (``amount``) and
    pool[to] → counted[to] (``floor(amount × num / den)``, rounding in the bank's favour).
    Both commit or neither does.
    """
    if from_ledger == to_ledger or num <= 0 or den <= 0 or amount <= 0:
        return ["invalid_conversion"]
    out = amount * num // den
    if out <= 0:
        return ["conversion_rounds_to_zero"]
    day = dt.date(year, 12, 31) if year != local_date(utcnow()).year else local_date(utcnow())
    common: dict[str, Any] = {
        "effective_date": day,
        "user_id": user_id,
        "actor_id": actor_id,
        "policy_version": policy_version,
        "memo": f"{num}/{den}",
    }
    group = [
        L.TransferSpec(
            id=L.transfer_id(f"{key}:out"),
            code=TransferCode.CONVERSION_OUT.value,
            amount=amount,
            debit=L.counted(from_ledger, user_id, year),
            credit=L.issuer(from_ledger, CONVERSION_POOL),
            **common,
        ),
        L.TransferSpec(
            id=L.transfer_id(f"{key}:in"),
            code=TransferCode.CONVERSION_IN.value,
            amount=out,
            debit=L.issuer(to_ledger, CONVERSION_POOL),
            credit=L.counted(to_ledger, user_id, year),
            **common,
        ),
    ]
    results = L.submit([group]) if commit else L.apply([group])
    return results[0]
