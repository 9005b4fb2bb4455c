"""Human names of events and of the objects they are about, and readable payloads.

The event log stores codes (``course.enrolled``, ``enrolments:183``): stable, and
what handlers match on. People see these names instead: the core's are here, a
plugin adds its own through the ``lms_event_labels`` hook. A code without a name
is shown as a generic "other event", never raw (the page test checks that every
event the code emits is named).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from lms_core.i18n import SHANGHAI

EVENT_NAMES: dict[str, Any] = {
    "api_token.created": _l("API token created"),
    "api_token.revoked": _l("API token revoked"),
    "course.assigned": _l("Training assigned (调训)"),
    "course.completed": _l("Course completed"),
    "course.created": _l("Course created"),
    "course.enrolled": _l("Enrolled in a course"),
    "course.published": _l("Course published"),
    "course.unpublished": _l("Course unpublished"),
    "course.updated": _l("Course updated"),
    "learning.beat_refused": _l("Progress report refused (repeated, replayed or too late)"),
    "lesson.archived": _l("Lesson archived"),
    "lesson.completed": _l("Lesson completed"),
    "lesson.created": _l("Lesson created"),
    "lesson.deleted": _l("Lesson deleted"),
    "lesson.launched": _l("Lesson opened"),
    "lesson.moved": _l("Lesson moved"),
    "lesson.terminated": _l("Lesson closed"),
    "lesson.updated": _l("Lesson updated"),
    "media.uploaded": _l("File uploaded"),
    "org.created": _l("Org unit created"),
    "org.moved": _l("Org unit moved"),
    "org.updated": _l("Org unit updated"),
    "quiz.answered": _l("Quiz answered"),
    "quiz.failed": _l("Quiz not passed"),
    "quiz.passed": _l("Quiz passed"),
    "record.viewed": _l("Learning record viewed"),
    "role.granted": _l("Role granted"),
    "role.revoked": _l("Role revoked"),
    "section.deleted": _l("Section deleted"),
    "section.moved": _l("Section moved"),
    "section.updated": _l("Section updated"),
    "study.interval_credited": _l("Study time credited"),
    "survey.submitted": _l("Survey answered"),
    "user.created": _l("Account created"),
    "user.locked": _l("Account locked"),
    "user.logged_in": _l("Signed in"),
    "user.logged_out": _l("Signed out"),
    "user.password_changed": _l("Password changed"),
    "user.password_reset": _l("Password reset by an administrator"),
    "user.status_changed": _l("Account status changed"),
    "user.updated": _l("Account updated"),
    "users.imported": _l("People imported"),
    "video.completed": _l("Video watched to the end"),
    "video.initialized": _l("Video loaded"),
    "video.paused": _l("Video paused"),
    "video.played": _l("Video played"),
    "video.seeked": _l("Video position changed"),
}

#: Object types are table names (``Event.object_type``).
OBJECT_NAMES: dict[str, Any] = {
    "api_tokens": _l("API token"),
    "course_assignments": _l("Assignment (调训)"),
    "course_sections": _l("Section"),
    "courses": _l("Course"),
    "enrolments": _l("Enrolment"),
    "import_runs": _l("Import"),
    "learning_sessions": _l("Learning session"),
    "lesson_feedback": _l("Survey answer"),
    "lessons": _l("Lesson"),
    "media_files": _l("File"),
    "org_units": _l("Org unit"),
    "quiz_attempts": _l("Quiz attempt"),
    "quiz_questions": _l("Question"),
    "role_assignments": _l("Role"),
    "users": _l("Person"),
}

#: Payload keys, for the readable details column of the CSV export.
PAYLOAD_KEYS: dict[str, Any] = {
    "after": _l("after"),
    "assigned": _l("assigned"),
    "before": _l("before"),
    "code": _l("code"),
    "deadline": _l("deadline"),
    "from": _l("from"),
    "full_name": _l("full name"),
    "kind": _l("kind"),
    "lesson_id": _l("lesson"),
    "name": _l("name"),
    "org": _l("org unit"),
    "prefix": _l("prefix"),
    "rank_band": _l("rank"),
    "rank_changes": _l("rank changes"),
    "registration": _l("registration"),
    "role": _l("role"),
    "seconds": _l("seconds"),
    "status": _l("status"),
    "title": _l("title"),
    "to": _l("to"),
    "unit": _l("org unit"),
    "until": _l("until"),
    "username": _l("username"),
}


def _plugin_labels() -> Mapping[str, Any]:
    from flask import current_app

    from lms_core.pluginhost import get_plugin_manager

    cache = current_app.extensions.setdefault("lms_event_labels", {})
    if "merged" not in cache:
        merged: dict[str, Any] = {}
        for answer in reversed(get_plugin_manager().hook.lms_event_labels()):
            merged.update(answer or {})
        cache["merged"] = merged
    return cache["merged"]


def known_events() -> dict[str, Any]:
    """Every named event (core and enabled plugins): ``{code: lazy name}``."""
    plugin = {k: v for k, v in _plugin_labels().items() if "." in k}
    return {**EVENT_NAMES, **plugin}


def event_label(name: str) -> str:
    label = EVENT_NAMES.get(name) or _plugin_labels().get(name)
    return str(label) if label is not None else _("Other event")


def object_label(object_type: str | None, object_id: str | None) -> str:
    """``enrolments:183`` as "选课记录 #183"."""
    if not object_type:
        return ""
    label = OBJECT_NAMES.get(object_type) or _plugin_labels().get(object_type)
    kind = str(label) if label is not None else _("Record")
    return f"{kind} #{object_id}" if object_id else kind


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if value is None:
        return "—"
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is not None:
            return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def readable_payload(payload: Mapping[str, Any], prefix: str = "") -> str:
    """``{"until": "2026-12-04T02:00:00+00:00"}`` as "截至：2026-12-04 10:00:00" (Beijing time)."""
    parts = []
    for key in sorted(payload):
        value = payload[key]
        name = str(PAYLOAD_KEYS.get(key, key))
        if isinstance(value, Mapping):
            inner = readable_payload(value)
            parts.append(f"{prefix}{name}（{inner}）" if inner else f"{prefix}{name}")
        elif isinstance(value, list | tuple):
            parts.append(f"{prefix}{name}：" + "、".join(_value(v) for v in value))
        else:
            parts.append(f"{prefix}{name}：{_value(value)}")
    return "；".join(parts)
