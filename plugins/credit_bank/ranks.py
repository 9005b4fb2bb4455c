"""Promotion history (职级变动记录): a cadre's rank band over time, append-only.

Requirements follow the rank a cadre held at the right date: the yearly 90 学时 and the
five-year 550 学时 apply by the band held at the end of the year (or on the "as of" date
when that is earlier), and a promotion opens the "within a year of promotion" requirement
with its own deadline. So the bank keeps the history, not only ``users.rank_band``:

* each entry says "from <effective date> the cadre's band is X" (``from_band`` is what was
  in force the day before, kept so the history reads on its own);
* entries are never changed or deleted (triggers at the database); a wrong entry is
  corrected by a new entry that names it (``corrects_id``): with a band and a date it
  replaces it, with ``withdrawn`` it cancels it;
* ``users.rank_band`` (read by the core's reports) is kept equal to the band in force today.

A promotion is an entry whose band ranks above the band in force the day before.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from lms_core.accounts.models import RankBand, User
from lms_core.db import Base, UTCDateTime, utcnow
from lms_core.extensions import db

#: Bands from lowest to highest.
ORDER = {"general": 0, "township": 1, "county_and_above": 2}
BAND_NAMES = {
    "county_and_above": _l("County level and above"),
    "township": _l("Township level"),
    "general": _l("General staff"),
}


class RankChange(Base):
    __tablename__ = "credit_rank_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    effective_date: Mapped[dt.date | None] = mapped_column(Date)
    from_band: Mapped[str | None] = mapped_column(String(32))
    to_band: Mapped[str | None] = mapped_column(String(32))
    #: The entry this one corrects (replaces, or cancels when ``withdrawn``); at most once.
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("credit_rank_changes.id"), unique=True)
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[int | None] = mapped_column(Integer)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RankError(ValueError):
    """A refused entry; the message is for the user (translated)."""


def band_name(band: str | None) -> str:
    return str(BAND_NAMES.get(band or "", band or "—"))


def today() -> dt.date:
    from plugins.credit_bank.services import local_date

    return local_date(utcnow())


def entries(user_id: int) -> list[RankChange]:
    """Every entry, as recorded (for the history page)."""
    return list(
        db.session.execute(select(RankChange).where(RankChange.user_id == user_id).order_by(RankChange.id)).scalars()
    )


def _effective(rows: list[RankChange]) -> list[RankChange]:
    corrected = {r.corrects_id for r in rows if r.corrects_id is not None}
    live = [r for r in rows if r.id not in corrected and not r.withdrawn and r.effective_date and r.to_band]
    return sorted(live, key=lambda r: (r.effective_date or dt.date.min, r.id))


@dataclass(frozen=True)
class History:
    """A cadre's effective history: what a rule needs to know about rank over time."""

    fallback: str  #: the band before the first entry (or the only band, with no entries)
    changes: list[tuple[dt.date, str]]  #: (effective date, band), oldest first

    def band_on(self, day: dt.date) -> str:
        band = self.fallback
        for when, to in self.changes:
            if when <= day:
                band = to
        return band

    def promotions(self, until: dt.date | None = None) -> list[tuple[dt.date, str]]:
        """(date, band promoted to) of every change to a higher band, up to ``until``."""
        out = []
        for when, to in self.changes:
            if until is not None and when > until:
                continue
            before = self.band_on(when - dt.timedelta(days=1))
            if ORDER.get(to, 0) > ORDER.get(before, 0):
                out.append((when, to))
        return out


def _history_of(user: Any, rows: list[RankChange], before: str | None = None) -> History:
    live = _effective(rows)
    current = before or getattr(user.rank_band, "value", user.rank_band)
    # The band before any history is what the first entry ever recorded found (users.rank_band
    # has followed the history since, so it cannot say).
    first = next((r.from_band for r in sorted(rows, key=lambda r: r.id) if r.from_band), None)
    fallback = first or current
    return History(fallback, [(r.effective_date, r.to_band) for r in live if r.effective_date and r.to_band])


def history(user: Any, *, known_empty: bool = False) -> History:
    """The cadre's history (``known_empty``: the caller knows there is no entry; nothing is read)."""
    return _history_of(user, [] if known_empty else entries(user.id))


def histories(users: list[Any]) -> dict[int, History]:
    """Histories of many cadres in one query (for the "who is behind" list)."""
    by_user: dict[int, list[RankChange]] = {u.id: [] for u in users}
    ids = list(by_user)
    for start in range(0, len(ids), 500):
        for r in db.session.execute(
            select(RankChange).where(RankChange.user_id.in_(ids[start : start + 500])).order_by(RankChange.id)
        ).scalars():
            by_user[r.user_id].append(r)
    return {u.id: _history_of(u, by_user[u.id]) for u in users}


@dataclass(frozen=True)
class AsOf:
    """A cadre as requirement rules see them on one date (the band of that date)."""

    id: int
    rank_band: str
    party_member: bool
    position: str | None


def as_of(user: Any, hist: History, day: dt.date) -> AsOf:
    return AsOf(user.id, hist.band_on(day), bool(user.party_member), user.position)


def record(
    user: User,
    *,
    band: str | None,
    effective: dt.date | None,
    actor: Any,
    reason: str = "",
    corrects: int | None = None,
    withdraw: bool = False,
    before: str | None = None,
    initial: bool = False,
) -> RankChange:
    """Append an entry (commits) and keep ``users.rank_band`` on today's band.

    ``before``: the band before any history, when the caller knows it better than
    ``users.rank_band`` (the core already changed it). ``initial``: the first entry of
    an account created with its rank date (the band before it is unknown, so it is no
    promotion). Raises :class:`RankError` with a message for the user.
    """
    from lms_core.events.services import emit

    reason = (reason or "").replace("\x00", "").strip()[:500]
    rows = entries(user.id)
    target: RankChange | None = None
    if corrects is not None:
        target = next((r for r in rows if r.id == corrects), None)
        if target is None or target.withdrawn:
            raise RankError(_("The entry to correct does not exist."))
        if any(r.corrects_id == target.id for r in rows):
            raise RankError(_("That entry was already corrected; correct the newer entry instead."))
        if not reason:
            raise RankError(_("A correction needs a reason."))
    if withdraw:
        if target is None:
            raise RankError(_("Choose the entry to withdraw."))
        band, effective = None, None
    else:
        if band not in ORDER:
            raise RankError(_("Choose a rank band."))
        if effective is None:
            raise RankError(_("Enter the date the new rank took effect, like 2025-06-30."))
        if not dt.date(2000, 1, 1) <= effective <= today():
            raise RankError(_("The effective date must be between 2000-01-01 and today."))
    # What the history says without the corrected entry: the band the day before this one.
    remaining = [r for r in rows if r.id != (target.id if target else None)]
    hist = _history_of(user, remaining, before)
    from_band = hist.band_on(effective - dt.timedelta(days=1)) if effective and not initial else None
    if not initial and not withdraw and target is None and band == hist.band_on(effective or today()):
        raise RankError(_("The cadre already holds this rank band on that date."))
    row = RankChange(
        user_id=user.id,
        effective_date=effective,
        from_band=from_band,
        to_band=band,
        corrects_id=target.id if target else None,
        withdrawn=withdraw,
        reason=reason or None,
        recorded_by=getattr(actor, "id", None),
        recorded_at=utcnow(),
    )
    db.session.add(row)
    db.session.flush()
    now_band = _history_of(user, [*rows, row], before).band_on(today())
    if getattr(user.rank_band, "value", user.rank_band) != now_band:
        user.rank_band = RankBand(now_band)
    emit(
        "credit.rank_changed",
        actor=actor,
        obj=row,
        org_unit_id=user.org_unit_id,
        payload={
            "user_id": user.id,
            "from_band": from_band,
            "to_band": band,
            "effective_date": effective.isoformat() if effective else None,
            "corrects": target.id if target else None,
            "withdrawn": withdraw,
            "reason": reason,
        },
    )
    db.session.commit()
    return row


#: Entries the platform recorded itself, from a change made elsewhere (shown in words).
SOURCE_ACCOUNT = "source:account"
SOURCE_IMPORT = "source:import"
SOURCE_NAMES = {
    SOURCE_ACCOUNT: _l("Changed on the person's account page"),
    SOURCE_IMPORT: _l("Changed by a personnel import"),
}


def reason_text(reason: str | None) -> str:
    return str(SOURCE_NAMES[reason]) if reason in SOURCE_NAMES else (reason or "")


def follow_core_change(user_id: int, before: Any, after: Any, effective: dt.date, actor_id: Any, source: str) -> None:
    """Keep the history in step with a 职级 changed in the core (account page, personnel
    import): idempotent, so a replayed event records nothing twice."""
    if before not in ORDER or after not in ORDER or before == after:
        return
    user = db.session.get(User, user_id)
    if user is None:
        return
    rows = entries(user_id)
    if _history_of(user, rows, before).band_on(effective) == after:
        return  # already recorded (a replay, or recorded on the history page first)
    actor = db.session.get(User, actor_id) if isinstance(actor_id, int) else None
    effective = min(max(effective, dt.date(2000, 1, 1)), today())
    try:
        record(user, band=after, effective=effective, actor=actor, reason=source, before=before)
    except RankError:
        db.session.rollback()


def on_user_updated(event: Any) -> None:
    p = event.payload or {}
    before, after = p.get("before") or {}, p.get("after") or {}
    if not isinstance(before, dict) or not isinstance(after, dict) or event.object_id is None:
        return
    from plugins.credit_bank.services import local_date

    try:
        user_id = int(event.object_id)
    except (TypeError, ValueError):
        return
    follow_core_change(
        user_id,
        before.get("rank_band"),
        after.get("rank_band"),
        local_date(event.created_at),
        event.actor_id,
        SOURCE_ACCOUNT,
    )


def follow_new_account(user_id: int, band: Any, since: dt.date, actor_id: Any) -> None:
    """The first entry of an account a personnel import created with a 职级生效日期.

    Idempotent: an account that already has entries (a replayed event, or a change
    recorded since) gets nothing. No ``from_band``: the rank held before that date is
    not known, so the entry dates the band without opening a promotion deadline.
    """
    if band not in ORDER:
        return
    user = db.session.get(User, user_id)
    if user is None or entries(user_id):
        return
    actor = db.session.get(User, actor_id) if isinstance(actor_id, int) else None
    since = min(max(since, dt.date(2000, 1, 1)), today())
    try:
        record(user, band=band, effective=since, actor=actor, reason=SOURCE_IMPORT, initial=True)
    except RankError:
        db.session.rollback()


def on_users_imported(event: Any) -> None:
    changes = (event.payload or {}).get("rank_changes") or []
    if not isinstance(changes, list):
        return
    for c in changes[:50_000]:
        try:
            user_id, since = int(c["user_id"]), dt.date.fromisoformat(str(c["since"]))
        except (KeyError, TypeError, ValueError):
            continue
        if c.get("from") is None:
            follow_new_account(user_id, c.get("to"), since, event.actor_id)
        else:
            follow_core_change(user_id, c.get("from"), c.get("to"), since, event.actor_id, SOURCE_IMPORT)


#: Import columns (Chinese headers, English accepted).
IMPORT_COLUMNS = {
    "username": ("用户名", "username"),
    "band": ("职级", "rank_band"),
    "date": ("职级生效日期", "effective_date"),
    "reason": ("说明", "reason"),
}
BAND_BY_NAME = {
    "县处级及以上": "county_and_above",
    "县处级": "county_and_above",
    "乡科级": "township",
    "一般干部": "general",
    **{b: b for b in ORDER},
}


def import_rows(data: bytes, filename: str, actor: Any, may_edit: Any) -> list[Any]:
    """Rank changes from a CSV/XLSX file; a row already recorded (same person, band and date)
    answers "exists", so a file can be imported twice."""
    from plugins.credit_bank.claims import RowResult, read_rows

    def get(row: dict[str, str], field: str) -> str:
        for name in IMPORT_COLUMNS[field]:
            if row.get(name):
                return row[name].replace("\x00", "").strip()
        return ""

    out = []
    for n, row in enumerate(read_rows(data, filename), start=2):
        username = get(row, "username")
        user = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
        if user is None or not may_edit(user):
            out.append(RowResult(n, "error", _("Unknown user or outside your scope: %(u)s", u=username[:64])))
            continue
        band = BAND_BY_NAME.get(get(row, "band"))
        try:
            effective = dt.date.fromisoformat(get(row, "date")[:10])
        except ValueError:
            out.append(RowResult(n, "error", _("The date must look like 2025-06-30.")))
            continue
        live = _effective(entries(user.id))
        if any(r.effective_date == effective and r.to_band == band for r in live):
            out.append(RowResult(n, "exists"))
            continue
        try:
            record(user, band=band, effective=effective, actor=actor, reason=get(row, "reason"))
        except RankError as exc:
            db.session.rollback()
            out.append(RowResult(n, "error", str(exc)))
            continue
        out.append(RowResult(n, "created"))
    return out
