"""Admin views: thin wrappers that parse input, call services and render."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import false, func, or_, select

from lms_core.accounts import initial_passwords
from lms_core.accounts import services as accounts
from lms_core.accounts.importer import RANK_NAMES, count_lines, import_users, queue_import
from lms_core.accounts.models import CredentialSheet, ImportRun, RankBand, Role, RoleAssignment, User, UserStatus
from lms_core.admin.forms import ImportForm, MoveForm, OrgForm, RoleForm, SheetForm, UserForm, role_choices
from lms_core.audit.viewlog import log_view
from lms_core.authz import allowed_or_404, can, require, scope_condition, scope_roots
from lms_core.bounded import int_arg, page_arg
from lms_core.extensions import db
from lms_core.jobs.services import commit
from lms_core.orgs import services as orgs
from lms_core.orgs.models import OrgKind, OrgUnit
from lms_core.unit_of_work import ServiceError, service_call

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@login_required
def _require_admin() -> None:
    require(current_user, "admin.access")


def _unit_or_404(unit_id: int, capability: str) -> OrgUnit:
    unit: OrgUnit = allowed_or_404(OrgUnit, unit_id, current_user, capability)
    return unit


@bp.route("/")
def index() -> Any:
    return redirect(url_for("admin.orgs"))


@bp.route("/orgs", endpoint="orgs")
def orgs_view() -> Any:
    unit_id = int_arg("unit")
    unit = None if unit_id is None else _unit_or_404(unit_id, "org.view")
    return _render_orgs(unit)


def _render_orgs(
    unit: OrgUnit | None,
    *,
    status: int = 200,
    form: OrgForm | None = None,
    edit_form: OrgForm | None = None,
    move_form: MoveForm | None = None,
) -> Any:
    """The org page of ``unit`` (or the user's top units); failed forms re-render here with 400."""
    if unit is None:
        children = scope_roots(current_user, "org.view")
        if not children:
            abort(403)
    else:
        children = list(unit.children)
    breadcrumb = []
    if unit is not None:
        ids = unit.ancestor_ids()
        by_id = {u.id: u for u in db.session.execute(select(OrgUnit).where(OrgUnit.id.in_(ids))).scalars()}
        breadcrumb = [by_id[i] for i in ids if i in by_id and can(current_user, "org.view", by_id[i])]
    counts = (
        dict(
            db.session.execute(
                select(User.org_unit_id, func.count())
                .where(User.org_unit_id.in_([c.id for c in children]))
                .group_by(User.org_unit_id)
            ).all()
        )
        if children
        else {}
    )
    if edit_form is None and unit is not None:
        edit_form = OrgForm(obj=unit, formdata=None)
    return render_template(
        "admin/orgs.html",
        unit=unit,
        children=children,
        breadcrumb=breadcrumb,
        counts=counts,
        form=form or OrgForm(formdata=None),
        move_form=move_form or MoveForm(formdata=None),
        edit_form=edit_form,
    ), status


@bp.route("/orgs/<int:unit_id>/children", methods=["POST"])
def org_create(unit_id: int) -> Any:
    parent = _unit_or_404(unit_id, "org.manage")
    form = OrgForm()
    if not form.validate_on_submit():
        flash(_("Not saved: please fill in code, name and kind."), "error")
        return _render_orgs(parent, status=400, form=form)
    with service_call(lambda: _render_orgs(parent, form=form)):
        child = orgs.create_unit(
            code=form.code.data or "",
            name=form.name.data or "",
            kind=OrgKind(form.kind.data),
            parent=parent,
            actor=current_user,
        )
    flash(_("Created %(name)s.", name=child.name), "success")
    return redirect(url_for("admin.orgs", unit=parent.id))


@bp.route("/orgs/<int:unit_id>/edit", methods=["POST"])
def org_edit(unit_id: int) -> Any:
    unit = _unit_or_404(unit_id, "org.manage")
    form = OrgForm()
    if not form.validate_on_submit():
        flash(_("Not saved: please fill in code and name."), "error")
        return _render_orgs(unit, status=400, edit_form=form)
    with service_call(lambda: _render_orgs(db.session.get(OrgUnit, unit_id), edit_form=form)):
        orgs.update_unit(unit, name=form.name.data or "", code=form.code.data or "", actor=current_user)
    flash(_("Saved."), "success")
    return redirect(url_for("admin.orgs", unit=unit.id))


@bp.route("/orgs/<int:unit_id>/move", methods=["POST"])
def org_move(unit_id: int) -> Any:
    unit = _unit_or_404(unit_id, "org.manage")
    form = MoveForm()
    new_parent = orgs.by_code(form.parent_code.data or "") if form.validate_on_submit() else None
    if new_parent is None:
        flash(_("Not moved: unknown parent code."), "error")
        return _render_orgs(unit, status=400, move_form=form)
    if not can(current_user, "org.manage", new_parent):
        abort(403)
    with service_call(
        lambda: _render_orgs(db.session.get(OrgUnit, unit_id), move_form=form), message=_l("Not moved: %(reason)s")
    ):
        orgs.move_unit(unit, new_parent, actor=current_user)
    flash(_("Moved."), "success")
    return redirect(url_for("admin.orgs", unit=unit_id))


# users ------------------------------------------------------------------------


def _user_or_404(user_id: int, capability: str) -> User:
    user: User = allowed_or_404(User, user_id, current_user, capability)
    return user


@bp.route("/users")
def users() -> Any:
    q = (request.args.get("q") or "").strip()
    org_code = (request.args.get("org") or "").strip()
    page = page_arg()
    size = current_app.config["LMS_PAGE_SIZE"]
    stmt = select(User).join(User.org_unit).where(scope_condition(current_user, "user.view", OrgUnit.path))
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(User.username.ilike(like), User.full_name.ilike(like)))
    if org_code:
        unit = orgs.by_code(org_code)
        if unit is None:
            flash(_("Unknown org code %(code)s.", code=org_code), "error")
            stmt = stmt.where(false())
        else:
            stmt = stmt.where(OrgUnit.path.startswith(unit.path, autoescape=True))
    total = db.session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = db.session.execute(stmt.order_by(User.username).limit(size).offset((page - 1) * size)).scalars().all()
    return render_template("admin/users.html", users=rows, total=total, page=page, size=size, q=q, org_code=org_code)


@bp.route("/users/new", methods=["GET", "POST"])
def user_new() -> Any:
    require(current_user, "user.manage")  # auditors are read-only
    form = UserForm()
    if form.validate_on_submit():
        unit = orgs.by_code(form.org_code.data or "")
        if unit is None:
            form.org_code.errors = [_("Unknown org code.")]
        elif not can(current_user, "user.manage", unit):
            form.org_code.errors = [_("You cannot add people to this org unit.")]
        else:
            # No password typed: a generated one, shown once below, so that no account is
            # created that nobody can sign in to.
            generated = None if form.password.data else initial_passwords.generate()
            with service_call(
                lambda: render_template("admin/user_form.html", form=form, user=None), field=form.username
            ):
                user = accounts.create_user(
                    username=form.username.data or "",
                    full_name=form.full_name.data or "",
                    org_unit=unit,
                    password=form.password.data or None,
                    rank_band=RankBand(form.rank_band.data),
                    party_member=bool(form.party_member.data),
                    position=form.position.data or None,
                    phone=form.phone.data or None,
                    actor=current_user,
                    password_hash=initial_passwords.hash_generated(generated) if generated else None,
                    must_change_password=True,
                )
            flash(_("Created %(name)s.", name=user.full_name), "success")
            if generated:
                flash(
                    _(
                        "Initial password for %(name)s (%(username)s): %(pw)s. It is shown only now: "
                        "hand it over; they must change it at first sign-in.",
                        name=user.full_name,
                        username=user.username,
                        pw=generated,
                    ),
                    "warning",
                )
            return redirect(url_for("admin.user_detail", user_id=user.id))
    return render_template("admin/user_form.html", form=form, user=None), 400 if form.errors else 200


def _user_form(user: User, *, from_request: bool = True) -> UserForm:
    form = (
        UserForm(obj=user, org_code=user.org_unit.code)
        if from_request
        else UserForm(formdata=None, obj=user, org_code=user.org_unit.code)
    )
    form.username.render_kw = {"readonly": True}
    return form


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
def user_detail(user_id: int) -> Any:
    user = _user_or_404(user_id, "user.view")
    form = _user_form(user)
    if request.method == "POST":
        require(current_user, "user.manage", user)
        form.username.data = user.username
        if form.validate_on_submit():
            unit = orgs.by_code(form.org_code.data or "")
            if unit is None or not can(current_user, "user.manage", unit):
                form.org_code.errors = [_("Unknown org code or outside your scope.")]
            else:
                before = {"full_name": user.full_name, "org": user.org_unit.code, "rank_band": user.rank_band.value}
                user.full_name = (form.full_name.data or "").strip()
                user.org_unit = unit
                user.rank_band = RankBand(form.rank_band.data)
                user.party_member = bool(form.party_member.data)
                user.position = form.position.data or None
                user.phone = form.phone.data or None
                from lms_core.events.services import emit

                emit(
                    "user.updated",
                    actor=current_user,
                    obj=user,
                    org_unit_id=unit.id,
                    payload={
                        "before": before,
                        "after": {"full_name": user.full_name, "org": unit.code, "rank_band": user.rank_band.value},
                    },
                )
                commit()
                flash(_("Saved."), "success")
                return redirect(url_for("admin.user_detail", user_id=user.id))
    if request.method == "GET":
        log_view(current_user, user, "profile")  # a look at the person's record (issue 12, part 8)
        commit()
    return render_template(
        "admin/user_form.html", form=form, user=user, role_form=RoleForm()
    ), 400 if form.errors else 200


@bp.route("/users/<int:user_id>/roles", methods=["POST"])
def user_grant(user_id: int) -> Any:
    user = _user_or_404(user_id, "user.view")
    form = RoleForm()
    unit = orgs.by_code(form.org_code.data or "") if form.validate_on_submit() else None
    if unit is None:
        if not form.errors:
            form.org_code.errors = [_("Unknown org code.")]
        flash(_("Not granted: choose a role and a known org code."), "error")
        return render_template(
            "admin/user_form.html", form=_user_form(user, from_request=False), user=user, role_form=form
        ), 400
    with service_call(lambda: redirect(url_for("admin.user_detail", user_id=user_id))):
        accounts.grant_role(current_user, user, Role(form.role.data), unit)  # AccessDenied: rolled back, the 403 page
    flash(_("Role granted."), "success")
    return redirect(url_for("admin.user_detail", user_id=user.id))


def _unconfirmed(question: str, button: str, **fields: str) -> Any:
    """The confirmation page, unless the form says the user already confirmed.

    The buttons' ``data-confirm`` (static/js/confirm.js) asks in the page and sets
    ``confirmed``; without JavaScript, or when the script did not run, this page asks
    instead, so no click changes an account unasked.
    """
    if request.form.get("confirmed") == "1":
        return None
    return render_template(
        "admin/confirm.html",
        question=question,
        button=button,
        action=request.path,
        fields=fields,
        back=request.referrer or url_for("admin.users"),
    )


@bp.route("/users/<int:user_id>/roles/<int:assignment_id>/revoke", methods=["POST"])
def user_revoke(user_id: int, assignment_id: int) -> Any:
    assignment = db.session.get(RoleAssignment, assignment_id)
    if assignment is None or assignment.user_id != user_id:
        abort(404)
    if not accounts.may_revoke_role(current_user, assignment):
        abort(403)  # before the confirmation: nobody is asked to confirm what they may not do
    role = dict(role_choices())[assignment.role.value]
    page = _unconfirmed(
        _(
            "Revoke the role %(role)s over %(unit)s from %(name)s?",
            role=role,
            unit=assignment.org_unit.name,
            name=assignment.user.full_name,
        ),
        _("Revoke"),
    )
    if page is not None:
        return page
    with service_call(lambda: redirect(url_for("admin.user_detail", user_id=user_id))):
        accounts.revoke_role(current_user, assignment)  # AccessDenied: rolled back, the 403 page
    flash(_("Role revoked."), "success")
    return redirect(url_for("admin.user_detail", user_id=user_id))


@bp.route("/users/<int:user_id>/reset-password", methods=["POST"])
def user_reset_password(user_id: int) -> Any:
    user = _user_or_404(user_id, "user.manage")
    page = _unconfirmed(
        _(
            "Reset the password of %(name)s (%(username)s)? Their current password stops working at once.",
            name=user.full_name,
            username=user.username,
        ),
        _("Reset password"),
    )
    if page is not None:
        return page
    temporary = accounts.reset_password(current_user, user)
    commit()
    flash(
        _(
            "Temporary password for %(name)s: %(pw)s (they must change it at next sign-in).",
            name=user.full_name,
            pw=temporary,
        ),
        "success",
    )
    return redirect(url_for("admin.user_detail", user_id=user.id))


@bp.route("/users/<int:user_id>/status", methods=["POST"])
def user_status(user_id: int) -> Any:
    user = _user_or_404(user_id, "user.manage")
    try:
        status = UserStatus(request.form.get("status", ""))
    except ValueError:
        abort(400, _("Unknown status."))
    if status == UserStatus.DISABLED:
        page = _unconfirmed(
            _(
                "Disable the account of %(name)s (%(username)s)? They are signed out and cannot sign "
                "in until the account is enabled again.",
                name=user.full_name,
                username=user.username,
            ),
            _("Disable"),
            status=status.value,
        )
        if page is not None:
            return page
    with service_call(
        lambda: render_template(
            "admin/user_form.html", form=_user_form(user, from_request=False), user=user, role_form=RoleForm()
        )
    ):
        accounts.set_status(current_user, user, status)
    flash(_("Saved."), "success")
    return redirect(url_for("admin.user_detail", user_id=user.id))


class _BadLines(ServiceError):
    """Some lines of an import were refused: nothing of the file is kept, the lines are listed."""


@bp.route("/import", methods=["GET", "POST"])
def import_view() -> Any:
    require(current_user, "user.import")
    form = ImportForm()
    done: dict[str, Any] = {"report": None, "sheet": None, "file_error": None}

    def page() -> str:
        return _import_page(form, **done)

    if not form.validate_on_submit():
        if request.method == "POST":
            done["file_error"] = _("Please choose a CSV or XLSX file.")
            return page(), 400
        return page()
    upload = form.file.data
    data = upload.stream.read(current_app.config["LMS_IMPORT_MAX_BYTES"] + 1)
    if len(data) > current_app.config["LMS_IMPORT_MAX_BYTES"]:
        done["file_error"] = _("The file is too large.")
        return page(), 413
    password = form.initial_password.data or None
    min_length = current_app.config["LMS_PASSWORD_MIN_LENGTH"]
    # A bad file is told above the form; bad lines are listed in the report (neither keeps anything).
    file_error = SimpleNamespace(errors=[])
    with service_call(
        lambda: _import_page(form, done["report"], None, (file_error.errors or [None])[0]),
        message=None,
        field_for=lambda exc: None if isinstance(exc, _BadLines) else file_error,
    ):
        if count_lines(data) > current_app.config["LMS_IMPORT_BACKGROUND_LINES"]:
            run = queue_import(
                current_user,
                data,
                filename=upload.filename or "",
                initial_password=password,
                min_password_length=min_length,
                reissue=bool(form.reissue.data),
            )
            queued = run.id
        else:
            queued = None
            done["report"] = report = import_users(
                current_user,
                data,
                initial_password=password,
                min_password_length=min_length,
                reissue=bool(form.reissue.data),
            )
            if not report.ok:
                raise _BadLines("")
            if report.issued:
                done["sheet"] = initial_passwords.store(current_user, report.issued)
    if queued is not None:
        return redirect(url_for("admin.import_run", run_id=queued), 303)
    return page()


def _import_page(form: ImportForm, report: Any, sheet: Any, file_error: Any) -> str:
    """The import form, a report of the file just sent, the last runs and the password sheets not yet fetched."""
    runs = db.session.execute(
        select(ImportRun.id, ImportRun.created_at, ImportRun.filename, ImportRun.lines, ImportRun.status)
        .where(ImportRun.created_by_id == current_user.id)
        .order_by(ImportRun.id.desc())
        .limit(10)
    ).all()
    pending = [
        s
        for s in db.session.execute(
            select(CredentialSheet)
            .where(CredentialSheet.created_by_id == current_user.id, CredentialSheet.downloaded_at.is_(None))
            .order_by(CredentialSheet.id.desc())
            .limit(10)
        ).scalars()
        if initial_passwords.available(s, current_user) and (sheet is None or s.id != sheet.id)
    ]
    return render_template(
        "admin/import.html",
        form=form,
        report=report,
        file_error=file_error,
        runs=runs,
        sheet=sheet,
        pending=pending,
        sheet_form=SheetForm(formdata=None),
        rank_names=RANK_NAMES,
    )


@bp.route("/imports/<int:run_id>")
def import_run(run_id: int) -> Any:
    """A queued import's status and, once it ended, its report (the uploader's own, or any for site admins)."""
    require(current_user, "user.import")
    run = db.session.get(ImportRun, run_id)
    if run is None or (run.created_by_id != current_user.id and not can(current_user, "site.manage")):
        abort(404)
    sheet = db.session.execute(select(CredentialSheet).filter_by(import_run_id=run.id)).scalar_one_or_none()
    return render_template(
        "admin/import_run.html",
        run=run,
        sheet=sheet,
        sheet_form=SheetForm(formdata=None),
        sheet_available=initial_passwords.available(sheet, current_user),
    )


@bp.route("/initial-passwords/<int:sheet_id>", methods=["POST"])
def initial_password_sheet(sheet_id: int) -> Any:
    """Hand over a sheet of generated passwords, once, to the admin who created the accounts."""
    form = SheetForm()
    sheet = db.session.get(CredentialSheet, sheet_id)
    if not form.validate_on_submit():
        abort(400, _("Choose CSV or XLSX."))
    try:
        lines = initial_passwords.take(sheet, current_user)
    except initial_passwords.SheetGone:
        db.session.commit()  # an unreadable sheet's ciphertext is wiped all the same
        abort(
            410,
            _(
                "These initial passwords were already downloaded or have expired. Import the file again "
                "with “Also give new initial passwords” ticked to issue new ones."
            ),
        )
    commit()
    stamp = f"{sheet_id}"
    if form.format.data == "csv":
        body, mimetype, ext = initial_passwords.as_csv(lines), "text/csv; charset=utf-8", "csv"
    else:
        body = initial_passwords.as_xlsx(lines)
        mimetype, ext = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="initial-passwords-{stamp}.{ext}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/status")
def system_status() -> Any:
    """System status for site admins: plugins, jobs, the xAPI backlog, migrations, the database."""
    require(current_user, "site.manage")
    from lms_core.admin import status

    return render_template(
        "admin/status.html",
        plugins=status.plugins(),
        jobs=status.jobs(),
        backlog=status.xapi_backlog(),
        migrations=status.migrations(),
        database=status.database(),
        job_names=_job_status_names(),
        stale_minutes=int(status.STALE_QUEUE.total_seconds() // 60),
    )


def _job_status_names() -> dict[str, str]:
    return {
        "queued": _("Queued"),
        "running": _("Running"),
        "done": _("Done"),
        "failed": _("Failed"),
        "pending": _("Waiting"),
        "delivered": _("Delivered"),
    }
