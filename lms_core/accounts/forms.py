"""Forms for sign-in and passwords (Flask-WTF: CSRF on every one)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])


class ChangePasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired()])
    new = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=256)])
    confirm = PasswordField(
        _l("Repeat new password"), validators=[DataRequired(), EqualTo("new", message=_l("Passwords do not match."))]
    )


class TokenForm(FlaskForm):
    name = StringField(_l("Token name"), validators=[DataRequired(), Length(max=100)])
    #: Read-only first and by default: most clients only fetch reports.
    scope = RadioField(
        _l("Access"),
        default="read",
        choices=[
            SelectChoice("read", _l("Read only (GET)")),
            SelectChoice("read_write", _l("Read and write (uploads, changes)")),
        ],
    )
