"""Every event the code writes has a name on the auditors' pages (not 其他事件).

The event log shows ``event_label(code)``; a code without a name reads "其他事件", and an
auditor cannot tell a video played from a section deleted. The codes are found in the
source: literals and module constants given to ``emit``/``emit_many``, and the codes
chosen at run time (listed here).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask_babel import force_locale

from lms_core.events.names import event_label, known_events
from lms_core.learning.services import VIDEO_EVENTS

ROOT = Path(__file__).resolve().parents[3]
SOURCES = [p for d in ("lms_core", "plugins", "lrs") for p in (ROOT / d).rglob("*.py")]
CODE = r"[a-z_]+\.[a-z_]+"
#: Codes picked by an expression rather than written in the call.
CHOSEN = {*VIDEO_EVENTS.values(), "user.password_changed", "user.password_reset"}


def emitted() -> set[str]:
    constants: dict[str, str] = {}
    calls: set[str] = set()
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        constants.update(re.findall(rf'^([A-Z_]+) = "({CODE})"', text, re.M))
        calls.update(re.findall(r"\bemit(?:_many)?\(\s*(\"[a-z_.]+\"|[A-Z_]+)(?=\s*[,)])", text))
    codes = {c.strip('"') if c.startswith('"') else constants.get(c, c) for c in calls}
    return codes | CHOSEN


def test_the_scan_finds_the_codes() -> None:
    codes = emitted()
    assert {"course.created", "record.viewed", "anti_idle.check_issued", "video.played"} <= codes
    assert all(re.fullmatch(CODE, c) for c in codes), sorted(c for c in codes if not re.fullmatch(CODE, c))


@pytest.mark.app_config(LMS_PLUGINS=["lrs", "anti_idle", "credit_bank"])
def test_every_event_the_code_writes_has_a_chinese_name(app: Flask) -> None:
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        named = set(known_events())
        unnamed = sorted(emitted() - named)
        assert not unnamed, ", ".join(unnamed)
        assert event_label("video.seeked") == "拖动视频进度"
