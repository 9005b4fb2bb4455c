"""The upload form (Flask-WTF: CSRF token checked on submit)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired


class UploadForm(FlaskForm):
    # No FileAllowed: names are not trusted; the content decides (media/validation.py).
    file = FileField(
        _l("File (MP4 or WebM video, PDF, PNG or JPEG image)"),
        validators=[FileRequired(_l("Choose a file to upload."))],
    )
