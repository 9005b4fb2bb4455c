"""Forms of the transcript pages (CSRF through Flask-WTF)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import IntegerField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange


class VerifyForm(FlaskForm):
    file = FileField(
        _l("Transcript file (PDF, or the credential.json inside it)"),
        validators=[FileRequired(_l("Choose a file to check."))],
    )


class IssueForm(FlaskForm):
    year = IntegerField(
        _l("Year"),
        validators=[
            InputRequired(_l("Enter a year.")),
            NumberRange(2000, 2100, _l("The year must be between 2000 and 2100.")),
        ],
    )


class RevokeForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason (shown on the verification page)"),
        validators=[
            DataRequired(_l("A reason is required to revoke a transcript.")),
            Length(max=1000, message=_l("At most 1000 characters.")),
        ],
    )


class ReissueForm(FlaskForm):
    year = IntegerField(
        _l("Year"),
        validators=[
            InputRequired(_l("Enter a year.")),
            NumberRange(2000, 2100, _l("The year must be between 2000 and 2100.")),
        ],
    )
    reason = TextAreaField(
        _l("Reason for re-issuing"),
        validators=[
            DataRequired(_l("A reason is required to re-issue a transcript.")),
            Length(max=1000, message=_l("At most 1000 characters.")),
        ],
    )
