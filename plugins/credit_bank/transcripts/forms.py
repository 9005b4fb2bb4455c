"""Forms of the transcript pages (CSRF through Flask-WTF)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import IntegerField
from wtforms.validators import InputRequired, NumberRange


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
