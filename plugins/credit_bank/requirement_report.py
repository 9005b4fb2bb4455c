"""The requirement report: per requirement of the policy, who is done, on track or behind, by unit.

Built on the core's report :class:`~lms_core.reports.tables.Table` and roll-up, so the
page and its CSV/XLSX exports hold the same rows and parent units get subtotals. The
credit bank serves it from its own blueprint (linked into the core's report index by the
``reports_index`` template slot): the core never imports the plugin.

Figures come from the accounts' posted counters (one grouped query for everyone in
scope) plus what a year-end close moved out, i.e. the same ``earned_for_year`` as the
cadre's own page. Requirements that need a promotion date (``after_promotion``) are
personal and are not summarised by unit.

Status, as of today (Beijing) inside the requirement's window:

* **done**: earned ≥ required;
* **on track**: earned ≥ required × the share of the window already elapsed;
* **behind**: the rest.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import func, select

from lms_core.accounts.models import User, UserStatus
from lms_core.authz import require, scope_condition
from lms_core.bounded import int_arg
from lms_core.extensions import db
from lms_core.orgs.models import OrgUnit
from lms_core.reports.queries import ReportError, band_label, scope_unit
from lms_core.reports.rollup import Leaf, fill, roll_up, visible_ancestors
from lms_core.reports.tables import Table, download
from plugins.credit_bank import labels
from plugins.credit_bank import policy as P
from plugins.credit_bank.models import LEDGERS, Account, AccountKind, Transfer
from plugins.credit_bank.queries import _applies
from plugins.credit_bank.services import CLOSE_CODES, SHANGHAI

CAPABILITY = "credit.view"
STATUSES = ("done", "on_track", "behind")
STATUS_LABELS = {"done": _l("Done"), "on_track": _l("On track"), "behind": _l("Behind")}
#: Requirement windows a unit report can summarise (promotion windows are personal).
WINDOWS = ("calendar_year", "plan_cycle")

bp = Blueprint("credit_bank_requirements", __name__, url_prefix="/credit/requirements", template_folder="templates")


class RequirementError(ValueError):
    """Bad filter input; the message is shown to the user (translated)."""


def _band_label(band: str) -> str:
    return band_label(band)


def window(rule: dict[str, Any], year: int) -> tuple[list[int], dt.date, dt.date]:
    """The years a rule counts for ``year``, and its window's first and last day."""
    if rule["window"] == "plan_cycle":
        n, first = int(rule.get("years", 5)), int(rule.get("cycle_start", 2023))
        cycle0 = first + ((year - first) // n) * n
        return list(range(cycle0, cycle0 + n)), dt.date(cycle0, 1, 1), dt.date(cycle0 + n - 1, 12, 31)
    return [year], dt.date(year, 1, 1), dt.date(year, 12, 31)


def elapsed_share(start: dt.date, end: dt.date, today: dt.date) -> float:
    """How much of the window has passed (0 before it, 1 after it), counting today."""
    if today < start:
        return 0.0
    if today >= end:
        return 1.0
    return ((today - start).days + 1) / ((end - start).days + 1)


def status_of(earned: int, required: int, share: float) -> str:
    if earned >= required:
        return "done"
    return "on_track" if earned >= required * share else "behind"


def rules_for(year: int) -> list[dict[str, Any]]:
    """The requirements of the policy in force at the end of ``year`` that a unit report can show."""
    rules = P.rules_of(P.in_force(dt.date(year, 12, 31)))
    return [r for r in rules["requirements"] if r["window"] in WINDOWS]


@dataclass
class RequirementReport:
    viewer: User
    year: int
    key: str
    today: dt.date
    root: OrgUnit | None = None
    #: Drill-down filters.
    unit_id: int | None = None
    subtree_id: int | None = None
    band: str | None = None
    status: str | None = None

    def __post_init__(self) -> None:
        if not 2000 <= self.year <= 2100:
            raise RequirementError(_("The year must be between 2000 and 2100."))
        rules = {r["key"]: r for r in rules_for(self.year)}
        if self.key not in rules:
            raise RequirementError(_("Unknown requirement."))
        if self.band is not None and self.band not in P.RANK_BANDS:
            raise RequirementError(_("Unknown rank band."))
        if self.status is not None and self.status not in STATUSES:
            raise RequirementError(_("Unknown status."))
        self.rule = rules[self.key]
        self.superseding = [r for r in rules.values() if self.key in r.get("supersedes", [])]
        self.years, self.start, self.end = window(self.rule, self.year)
        self.share = elapsed_share(self.start, self.end, self.today)

    @property
    def title(self) -> str:
        return labels.requirement_name(self.key)

    def _people(self) -> list[dict[str, Any]]:
        """Everyone in scope the rule applies to, with earned and status."""
        scope = scope_condition(self.viewer, CAPABILITY, OrgUnit.path)
        stmt = (
            select(User, OrgUnit.id, OrgUnit.code, OrgUnit.name, OrgUnit.path)
            .join(OrgUnit, OrgUnit.id == User.org_unit_id)
            .where(User.status == UserStatus.ACTIVE, scope)
        )
        if self.root is not None:
            stmt = stmt.where(OrgUnit.path.startswith(self.root.path, autoescape=True))
        if self.unit_id is not None:
            stmt = stmt.where(OrgUnit.id == self.unit_id)
        if self.subtree_id is not None:
            # Paths hold only digits and slashes: no LIKE wildcard to escape.
            under = select(OrgUnit.path).where(OrgUnit.id == self.subtree_id).scalar_subquery()
            stmt = stmt.where(OrgUnit.path.startswith(under))
        # Rules apply by the rank band held on the year's reference date (promotion history).
        from plugins.credit_bank import ranks
        from plugins.credit_bank.queries import reference_date

        found = list(db.session.execute(stmt.order_by(OrgUnit.code, User.full_name, User.id)))
        hists = ranks.histories([r[0] for r in found])
        ref = reference_date(self.year, self.today)
        who = {r[0].id: ranks.as_of(r[0], hists[r[0].id], ref) for r in found}
        rows = [
            r
            for r in found
            if (self.band is None or who[r[0].id].rank_band == self.band)
            and _applies(self.rule, who[r[0].id])
            and not any(_applies(s, who[r[0].id]) for s in self.superseding)
        ]
        earned = self._earned(stmt)
        people = []
        required = int(self.rule["amount_centi"])
        for user, unit_id, code, name, path in rows:
            got = earned.get(user.id, 0)
            people.append(
                {
                    "user": user,
                    "unit_id": unit_id,
                    "code": code,
                    "unit": name,
                    "path": path,
                    "band": who[user.id].rank_band,
                    "earned": got,
                    "required": required,
                    "status": status_of(got, required, self.share),
                }
            )
        return people

    def _earned(self, people_stmt: Any) -> dict[int, int]:
        """Posted counted credit per person on the rule's ledgers and years, with year-end outflows."""
        ids = people_stmt.with_only_columns(User.id).scalar_subquery()
        ledger_ids = [i for i, code, _name in LEDGERS if code in self.rule["ledgers"]]
        counted = (
            Account.kind == AccountKind.COUNTED.value,
            Account.ledger_id.in_(ledger_ids),
            Account.period.in_(self.years),
            Account.owner_id.in_(ids),
        )
        out: dict[int, int] = defaultdict(int)
        posted = select(Account.owner_id, func.sum(Account.credits_posted - Account.debits_posted)).where(*counted)
        for owner, amount in db.session.execute(posted.group_by(Account.owner_id)):
            out[owner] += int(amount or 0)
        closed = (
            select(Account.owner_id, func.sum(Transfer.amount))
            .join(Transfer, Transfer.debit_account_id == Account.id)
            .where(*counted, Transfer.code.in_(CLOSE_CODES))
        )
        for owner, amount in db.session.execute(closed.group_by(Account.owner_id)):
            out[owner] += int(amount or 0)
        return out

    def summary(self) -> Table:
        """People the rule applies to, done, on track and behind, per unit and rank band, rolled up."""
        groups: dict[tuple[int, str], Leaf] = {}
        for p in self._people():
            leaf = groups.setdefault(
                (p["unit_id"], p["band"]),
                Leaf(
                    p["unit_id"],
                    p["code"],
                    p["unit"],
                    p["path"],
                    [_band_label(p["band"])],
                    [0, 0, 0, 0],
                    {"unit": p["unit_id"], "band": p["band"]},
                ),
            )
            leaf.numbers[0] += 1
            leaf.numbers[1 + STATUSES.index(p["status"])] += 1
        leaves = sorted(groups.values(), key=lambda leaf: (leaf.code, P.RANK_BANDS.index(leaf.key["band"])))
        table = Table(
            [
                _("Org unit"),
                _("Unit code"),
                _("Rank band"),
                _("People required"),
                str(STATUS_LABELS["done"]),
                str(STATUS_LABELS["on_track"]),
                str(STATUS_LABELS["behind"]),
                _("Share done"),
            ]
        )
        root = self.root.path if self.root is not None else None
        ancestors = visible_ancestors(self.viewer, CAPABILITY, leaves, root)
        fill(table, roll_up(leaves, ancestors, [_("All ranks")]), _with_share)
        return table

    def people(self, limit: int = 5000) -> Table:
        table = Table(
            [
                _("Full name"),
                _("Username"),
                _("Org unit"),
                _("Rank band"),
                _("Required hours"),
                _("Earned hours"),
                _("Status"),
            ]
        )
        rows = [p for p in self._people() if self.status is None or p["status"] == self.status]
        for p in rows[:limit]:
            table.rows.append(
                [
                    p["user"].full_name,
                    p["user"].username,
                    p["unit"],
                    _band_label(p["band"]),
                    labels.hours(p["required"]),
                    labels.hours(p["earned"]),
                    str(STATUS_LABELS[p["status"]]),
                ]
            )
            table.keys.append({"user": p["user"].id})
        return table


def _with_share(numbers: list[int]) -> list[Any]:
    total, done = numbers[0], numbers[1]
    return [*numbers, f"{100 * done / total:.1f}%" if total else ""]


# --------------------------------------------------------------------------- pages


def _today() -> dt.date:
    return dt.datetime.now(SHANGHAI).date()


def _fmt(fmt: str) -> str:
    if fmt not in ("html", "csv", "xlsx"):
        abort(404)
    return fmt


def _report(**drill: Any) -> RequirementReport:
    viewer = current_user._get_current_object()
    year = int_arg("year", _today().year, minimum=0, maximum=9999) or 0
    key = (request.args.get("key") or "").strip()[:64]
    code = (request.args.get("org") or "").strip()[:64]
    root = None
    if code:
        try:
            root = scope_unit(viewer, code)
        except ReportError as exc:
            abort(400, str(exc))
        except LookupError:
            abort(403)
    try:
        return RequirementReport(viewer, year, key, _today(), root, **drill)
    except RequirementError as exc:
        abort(400, str(exc))


@bp.before_request
@login_required
def _viewers_only() -> None:
    require(current_user, CAPABILITY)


@bp.route("/")
def index() -> Any:
    year = int_arg("year", _today().year, minimum=2000, maximum=2100) or _today().year
    rules = [(r["key"], labels.requirement_name(r["key"])) for r in rules_for(year)]
    return render_template("credit_bank/requirements_index.html", rules=rules, year=year)


@bp.route("/report", defaults={"fmt": "html"})
@bp.route("/report.<fmt>")
def summary(fmt: str) -> Any:
    fmt = _fmt(fmt)
    report = _report()
    table = report.summary()
    if fmt != "html":
        return download(table, fmt, f"requirement-{report.key}-{report.year}", _("Requirement report"))
    return render_template("credit_bank/requirements.html", report=report, table=table)


@bp.route("/people", defaults={"fmt": "html"})
@bp.route("/people.<fmt>")
def people(fmt: str) -> Any:
    fmt = _fmt(fmt)
    report = _report(
        unit_id=int_arg("unit"),
        subtree_id=int_arg("subtree"),
        band=request.args.get("band") or None,
        status=request.args.get("status") or None,
    )
    table = report.people()
    if fmt != "html":
        return download(table, fmt, f"requirement-{report.key}-{report.year}-people", _("People"))
    return render_template(
        "credit_bank/requirements_people.html",
        report=report,
        table=table,
        statuses=STATUS_LABELS,
        bands=[(b, _band_label(b)) for b in P.RANK_BANDS],
    )
