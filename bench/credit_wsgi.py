"""The app as a WSGI module for servers that import one (uWSGI in ``credit_bench.py --server
uwsgi``); settings come from the ``LMS_*`` environment, as with gunicorn's ``create_app()``."""

from lms_core import create_app

application = create_app()
