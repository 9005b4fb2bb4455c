"""Extension singletons, bound to an application late with ``init_app``.

Keeping them here (and never creating them inside ``create_app``) lets models and
services import ``db`` without importing the application, as in flaskr and Indico.
"""

from typing import Any

from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect

from lms_core.db import Base

#: The database. Models subclass :class:`lms_core.db.Base` directly so that mypy
#: sees real classes; Flask-SQLAlchemy only provides the scoped session and engine.
db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
babel = Babel()
csrf = CSRFProtect()


def _render_without_csrf_id(self: Any, field: Any, render_kw: dict[str, Any]) -> Any:
    """Render form fields as WTForms does, but the CSRF token without ``id="csrf_token"``.

    Every form's ``hidden_tag()`` would give its token that same id, so a page with
    two forms (a course and its sections, a user and their roles) had duplicate ids.
    Nothing looks the token up by id: it is sent by name.
    """
    if field.type == "CSRFTokenField":
        render_kw = {**render_kw, "id": False}  # html_params leaves out False attributes
    return _default_render_field(self, field, render_kw)


_default_render_field = FlaskForm.Meta.render_field
FlaskForm.Meta.render_field = _render_without_csrf_id
