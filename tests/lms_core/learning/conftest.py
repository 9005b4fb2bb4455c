"""Fixtures the learning tests share: the course kit and the ASGI beat front."""

from __future__ import annotations

import pytest

from lms_core.learning import beat_asgi, beat_batch
from tests.lms_core.learning.fixtures import build_course


@pytest.fixture
def kit(app, tree):
    """A published course with a video, a document and a quiz lesson (``fixtures.build_course``)."""
    return build_course(tree)


@pytest.fixture
def asgi(app):
    """The ASGI front around the app; its beat writer stopped after the test."""
    front = beat_asgi.BeatASGI(app)
    yield front
    beat_batch.stop(app)
