"""Anti-idle tests script their attention checks by hand (``Learner.issue_check``).

The schedule that issues checks from the playing time a heartbeat claims
(``checks.beat_check``, policy ``checks_follow_claims``, on by default) would add
checks of its own to every scripted day longer than two minutes. It is switched off
here by default; the tests of that schedule turn it on in their course policy
(test_checks.py, and the scenarios that exercise it).
"""

from __future__ import annotations

import pytest

from plugins.anti_idle import policy
from tests.lms_core.learning.fixtures import build_course
from tests.plugins.anti_idle.harness import Learner, make_learner


@pytest.fixture(autouse=True)
def _checks_as_scripted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(policy.DEFAULTS, "checks_follow_claims", 0)


@pytest.fixture
def kit(app, tree):
    """A course with a video, a document and a quiz (a module may define its own)."""
    return build_course(tree)


@pytest.fixture
def me(kit, tree) -> Learner:
    """A learner enrolled in ``kit``'s course, with the harness's beat helpers."""
    return make_learner(tree, kit)
