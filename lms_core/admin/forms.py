"""Admin forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.validators import AnyOf, DataRequired, Length, Optional

from lms_core.accounts.models import RankBand, Role
from lms_core.i18n import labels_of
from lms_core.orgs.models import OrgKind


def kind_choices() -> list[tuple[str, str]]:
    return labels_of(OrgKind)


def rank_choices() -> list[tuple[str, str]]:
    return labels_of(RankBand)


def role_choices() -> list[tuple[str, str]]:
    return labels_of(Role)


class OrgForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=64)])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    kind = SelectField(_l("Kind"), choices=kind_choices)


class MoveForm(FlaskForm):
    parent_code = StringField(_l("New parent code"), validators=[DataRequired(), Length(max=64)])


class UserForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    full_name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=100)])
    org_code = StringField(_l("Org unit code"), validators=[DataRequired(), Length(max=64)])
    rank_band = SelectField(_l("Rank"), choices=rank_choices)
    party_member = BooleanField(_l("Party member"))
    position = StringField(_l("Position"), validators=[Optional(), Length(max=100)])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=32)])
    password = PasswordField(
        _l("Initial password"),
        validators=[Optional(), Length(max=256)],
        description=_l(
            "Leave empty to generate a one-time password, shown once after "
            "saving. The person must change it at first sign-in."
        ),
    )


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=role_choices)
    org_code = StringField(_l("Over org unit (code)"), validators=[DataRequired(), Length(max=64)])


class ImportForm(FlaskForm):
    file = FileField(_l("CSV (UTF-8 or GBK) or XLSX file"), validators=[FileRequired()])
    initial_password = PasswordField(
        _l("Initial password for new accounts"),
        validators=[Optional(), Length(max=256)],
        description=_l(
            "Leave empty to generate a different one-time password for each new account: you "
            "download them once, as CSV or XLSX, after the import."
        ),
    )
    reissue = BooleanField(_l("Also give new initial passwords to listed accounts that have never signed in"))


class SheetForm(FlaskForm):
    """Download of a one-time password sheet (POST: reading it wipes it)."""

    format = StringField(validators=[AnyOf(["xlsx", "csv"])])
