"""The learning-log browser's third view: LRS statements about the platform's learners.

A statement is about a learner when its actor is the learner's account Agent as the
platform writes it (``homePage`` = ``LMS_PLATFORM_URL``, ``name`` = username); that
is how a statement is tied to a person and so to an org unit. The LRS stores that
person's id beside the statement when it is stored (``actor_user_id``), and the
auditor's scope is applied in SQL on their unit, as in the core's views. Statements whose actor
is not a platform account belong to nobody in the org tree and are not listed.

The recorder (记录者) is the LRS credential that stored the statement (``client_id``,
set by the LRS, never by the statement's content). Anything stored by a credential
other than the platform's own emitter is marked "not recorded by this platform".

Filters by learner, course, lesson and verb go through the lookup keys
(:mod:`lrs.keys`), the same index the xAPI ``GET /statements`` uses; pages are keyset
on (stored, primary key), newest first.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Select, and_, exists, or_, select

from lms_core.accounts.models import User
from lms_core.audit.queries import LogQuery, QueryError, local, parse_time_cursor, time_cursor
from lms_core.authz import scope_condition
from lms_core.orgs.models import OrgUnit
from lms_core.xapi import vocab
from lrs import keys as K
from lrs.models import LrsClient
from lrs.statements import KT, S, platform_base

#: A page cursor: the last row's stored time (microseconds) and pk.
_CURSOR = re.compile(r"^(\d{1,17})-([1-9]\d{0,17})$")

#: Verbs offered in the picker: the platform's own (IRI -> Chinese name).
VERB_NAMES: dict[str, str] = {iri: zh for iri, _en, zh in vocab.VERBS.values()}


def platform_key() -> str | None:
    """The key of the credential the platform's own emitter writes with (None: not connected)."""
    from lms_core.xapi.credentials import ConnectError, saved_credentials

    if current_app.config.get("LMS_XAPI_KEY"):
        return str(current_app.config["LMS_XAPI_KEY"])
    try:
        saved = saved_credentials()
    except ConnectError:
        return None
    return saved["key"] if saved else None


def _lang(value: Any) -> str:
    """A language map's Chinese entry, else its first entry ('' if none)."""
    if not isinstance(value, dict) or not value:
        return ""
    text = value.get("zh-CN") or value.get("zh") or next(iter(value.values()))
    return str(text) if text is not None else ""


def verb_label(verb: dict[str, Any]) -> str:
    iri = str(verb.get("id", ""))
    return VERB_NAMES.get(iri) or _lang(verb.get("display")) or iri


def object_label(obj: dict[str, Any]) -> str:
    kind = obj.get("objectType", "Activity")
    if kind == "Activity":
        return _lang((obj.get("definition") or {}).get("name")) or str(obj.get("id", ""))
    if kind in ("Agent", "Group"):
        return str(obj.get("name") or _("a person or group"))
    if kind == "StatementRef":
        return _("statement %(id)s", id=str(obj.get("id", ""))[:8])
    return _("a nested statement")


def result_text(result: Any) -> str:
    if not isinstance(result, dict):
        return ""
    parts = []
    score = result.get("score") or {}
    if isinstance(score.get("scaled"), int | float):
        parts.append(_("score %(pct)s%%", pct=round(score["scaled"] * 100, 1)))
    if result.get("success") is True:
        parts.append(_("passed"))
    elif result.get("success") is False:
        parts.append(_("not passed"))
    if result.get("completion") is True:
        parts.append(_("completed"))
    return "，".join(parts)


def when(value: Any) -> str:
    """An xAPI timestamp (ISO 8601 text) in Beijing time; the raw text if it does not parse."""
    if not isinstance(value, str):
        return ""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return local(moment)


@dataclass
class StatementQuery(LogQuery):
    """LRS statements whose actor is a learner in the viewer's scope, newest stored first."""

    #: A verb IRI from the picker ('' = any).
    verb: str = ""
    capability: ClassVar[str] = "learning.view"
    filename: ClassVar[str] = "lrs-statements"

    @classmethod
    def from_args(cls, viewer: Any, args: Any, **extra: Any) -> Any:
        return super().from_args(viewer, args, verb=args.get("verb", "")[:200], **extra)

    def _has_key(self, kind: str, value: str) -> Any:
        return exists().where(KT.c.stmt_pk == S.c.pk, KT.c.key == K.key(kind, value))

    def statement(self, *, flat: bool = False) -> Select[Any]:
        base = platform_base()
        stmt = (
            select(
                S.c.pk,
                S.c.stored,
                S.c.voided,
                S.c.data,
                User.id.label("user_id"),
                User.username,
                User.full_name,
                OrgUnit.name.label("unit_name"),
                LrsClient.name.label("client_name"),
                LrsClient.key.label("client_key"),
            )
            .select_from(S)
            # The learner stored beside the statement (lrs.statements.learner_name): scoping
            # by it reads no JSON; ix_lrs_statements_actor_user_id_stored serves a county.
            .join(User, User.id == S.c.actor_user_id)
            .join(OrgUnit, OrgUnit.id == User.org_unit_id)
            .outerjoin(LrsClient, LrsClient.id == S.c.client_id)
            .where(scope_condition(self.viewer, self.capability, OrgUnit.path))
        )
        if username := self.person_named():
            agent = {"account": {"homePage": base, "name": username}}
            stmt = stmt.where(User.username == username, self._has_key("a", K.ifi(agent) or ""))
        if unit := self.unit():
            stmt = stmt.where(OrgUnit.path.startswith(unit.path, autoescape=True))
        if (course_id := self.course_id()) is not None:
            stmt = stmt.where(self._has_key("ro", f"{base}/courses/{course_id}"))
        if (lesson_id := self.lesson_id()) is not None:
            stmt = stmt.where(self._has_key("ro", f"{base}/lessons/{lesson_id}"))
        if verb := self.verb.strip():
            if verb not in VERB_NAMES:
                raise QueryError(_("Unknown verb; choose one from the list."))
            stmt = stmt.where(self._has_key("v", verb))
        start, end = self.bounds()
        if start:
            stmt = stmt.where(S.c.stored >= start)
        if end:
            stmt = stmt.where(S.c.stored < end)
        return stmt

    def _keyset(self, stmt: Select[Any]) -> Select[Any]:
        # Newest stored first, by (stored, pk): a date range is then a range of
        # ix_lrs_statements_stored. Ordered by pk, a month's page walked every
        # statement stored after that month first.
        if self.before:
            moment, raw = parse_time_cursor(self.before, _CURSOR)
            last = int(raw)  # at most 18 digits: within a bigint
            stmt = stmt.where(or_(S.c.stored < moment, and_(S.c.stored == moment, S.c.pk < last)))
        return stmt.order_by(S.c.stored.desc(), S.c.pk.desc())

    def key_of(self, row: Any) -> str:
        return time_cursor(row.stored, row.pk)

    # --- what a row shows ---------------------------------------------------------------------
    def recorder(self, row: Any) -> tuple[str, bool]:
        """The recorder's name in Chinese and whether it is this platform's own emitter."""
        if not hasattr(self, "_platform_key"):
            self._platform_key = platform_key()
        if row.client_key is not None and row.client_key == self._platform_key:
            return _("This platform"), True
        authority = (row.data or {}).get("authority") or {}
        name = row.client_name or authority.get("name") or (authority.get("account") or {}).get("name")
        return (_("Other system: %(name)s", name=name) if name else _("Unknown recorder")), False

    def headers(self) -> list[str]:
        return [
            _("Stored (Beijing)"),
            _("Happened (Beijing)"),
            _("Full name"),
            _("Username"),
            _("Org unit"),
            _("Verb"),
            _("Object"),
            _("Result"),
            _("Recorded by"),
            _("Source"),
            _("Status"),
            _("Statement ID"),
        ]

    def cells(self, row: Any) -> list[Any]:
        data = row.data or {}
        recorder, own = self.recorder(row)
        return [
            local(row.stored),
            when(data.get("timestamp")),
            row.full_name or "",
            row.username or "",
            row.unit_name or "",
            verb_label(data.get("verb") or {}),
            object_label(data.get("object") or {}),
            result_text(data.get("result")),
            recorder,
            _("Recorded by this platform") if own else _("Not recorded by this platform"),
            _("Voided") if row.voided else "",
            str(data.get("id", "")),
        ]
