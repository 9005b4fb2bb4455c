"""Extension singletons, bound to an application late with ``init_app``.

Keeping them here (and never creating them inside ``create_app``) lets models and
services import ``db`` without importing the application, as in flaskr and Indico.
"""

from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from lms_core.db import Base

#: The database. Models subclass :class:`lms_core.db.Base` directly so that mypy
#: sees real classes; Flask-SQLAlchemy only provides the scoped session and engine.
db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
babel = Babel()
csrf = CSRFProtect()
