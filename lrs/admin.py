"""Site-admin pages for LRS client credentials (CSRF-protected forms)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectMultipleField, StringField, widgets
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError

from lms_core.authz import require
from lms_core.extensions import db
from lrs import clients
from lrs.models import LrsClient

bp = Blueprint("lrs_admin", __name__, url_prefix="/admin/lrs", template_folder="templates")


def _at_least_one(form: FlaskForm, field: Any) -> None:
    # Not DataRequired: its "required" flag would put the HTML attribute on every
    # checkbox, and the browser would then refuse the form unless all were ticked.
    if not field.data:
        raise ValidationError(_("Choose at least one scope."))


def _scope_choices() -> list[SelectChoice]:
    return [SelectChoice(s, clients.scope_label(s)) for s in clients.SCOPES]


class ClientForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    scopes = SelectMultipleField(
        _l("Scopes"),
        choices=_scope_choices,
        validators=[_at_least_one],
        option_widget=widgets.CheckboxInput(),
        widget=widgets.ListWidget(prefix_label=False),
    )


class ActionForm(FlaskForm):
    """An empty form: only its CSRF token matters."""


@bp.before_request
@login_required
def _require_site_admin() -> None:
    require(current_user, "site.manage")


def _client_or_404(client_id: int) -> LrsClient:
    client = db.session.get(LrsClient, client_id)
    if client is None:
        abort(404)
    return client


def clients_view() -> Any:
    form = ClientForm()
    secret = None
    created = None
    if form.validate_on_submit():
        try:
            created, secret = clients.create_client(
                form.name.data or "", form.scopes.data or [], created_by=current_user.username
            )
        except clients.ClientError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Client created. Copy the secret now: it is not shown again."), "success")
            form = ClientForm(formdata=None)
    rows = db.session.execute(select(LrsClient).order_by(LrsClient.id)).scalars().all()
    return render_template(
        "lrs/clients.html",
        form=form,
        rows=rows,
        created=created,
        secret=secret,
        action_form=ActionForm(),
        scope_label=clients.scope_label,
    )


bp.add_url_rule("/clients", endpoint="clients", view_func=clients_view, methods=["GET", "POST"])


@bp.route("/clients/<int:client_id>/toggle", methods=["POST"])
def client_toggle(client_id: int) -> Any:
    if not ActionForm().validate_on_submit():
        abort(400)
    client = _client_or_404(client_id)
    clients.set_active(client, not client.active)
    flash(_("Client enabled.") if client.active else _("Client disabled."), "success")
    return redirect(url_for("lrs_admin.clients"))


@bp.route("/clients/<int:client_id>/rotate", methods=["POST"])
def client_rotate(client_id: int) -> Any:
    if not ActionForm().validate_on_submit():
        abort(400)
    client = _client_or_404(client_id)
    secret = clients.rotate_secret(client)
    rows = db.session.execute(select(LrsClient).order_by(LrsClient.id)).scalars().all()
    flash(_("New secret issued. Copy it now: it is not shown again."), "success")
    return render_template(
        "lrs/clients.html",
        form=ClientForm(formdata=None),
        rows=rows,
        created=client,
        secret=secret,
        action_form=ActionForm(),
    )
