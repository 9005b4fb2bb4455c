"""The app factory configures the ORM's mappers before the first request.

In a fresh process (a gunicorn worker) the heartbeat's hot path reads through psycopg and
builds ORM instances without a query (``db.transient_copy``); before the factory configured
the mappers, reading such an instance's column raised ``AttributeError: 'NoneType' object has
no attribute 'supports_population'`` (a 500 on a burst of completions after a restart). The
test process has configured its mappers long ago, so this runs in a new interpreter.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys
    from lms_core import create_app
    from lms_core.db import Base, transient_copy
    from lms_core.courses.models import Lesson

    create_app({"SECRET_KEY": "test", "SQLALCHEMY_DATABASE_URI": "sqlite:///" + sys.argv[1]})
    pending = [m.class_.__name__ for m in Base.registry.mappers if not m.configured]
    lesson = transient_copy(Lesson, {"id": 5, "course_id": 7})
    print(pending, lesson.id, lesson.course_id)
    """
)


def test_a_fresh_process_reads_a_transient_copy_after_the_factory(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "app.db")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["[]", "5", "7"]
