"""The ``lms`` console script: the Flask CLI bound to this platform's app factory.

``lms db upgrade heads`` is ``FLASK_APP=lms_core flask db upgrade heads`` without
the environment variable. Its own module (not ``lms_core.cli``) because it imports
the factory, which imports the CLI.
"""

from __future__ import annotations

from flask.cli import FlaskGroup


def main() -> None:
    from lms_core import create_app

    FlaskGroup(create_app=create_app)()


if __name__ == "__main__":
    main()
