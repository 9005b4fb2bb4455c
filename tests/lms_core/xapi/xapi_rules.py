"""An independent check of statement JSON against xAPI 1.0.3 (Data, section 2.4) and the Video Profile.

Written from the specs in ../shared/specs, not from the code under test: it
returns a list of problems, empty when the statement is valid.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlsplit

VIDEO = "https://w3id.org/xapi/video"
EXT = f"{VIDEO}/extensions/"
VIDEO_TYPE = f"{VIDEO}/activity-type/video"

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
LANG_RE = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z]{4})?(-([a-zA-Z]{2}|[0-9]{3}))?$")  # RFC 5646 subset used here
DURATION_RE = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
SEGMENTS_RE = re.compile(r"^\d+(\.\d{1,3})?\[\.\]\d+(\.\d{1,3})?(\[,\]\d+(\.\d{1,3})?\[\.\]\d+(\.\d{1,3})?)*$")
STATEMENT_KEYS = {
    "id",
    "actor",
    "verb",
    "object",
    "result",
    "context",
    "timestamp",
    "stored",
    "authority",
    "version",
    "attachments",
}
INTERACTION_TYPES = {
    "true-false",
    "choice",
    "fill-in",
    "long-fill-in",
    "matching",
    "performance",
    "sequencing",
    "likert",
    "numeric",
    "other",
}

#: Video Profile 2.7: required context / result extensions per verb.
VIDEO_REQUIRED = {
    "http://adlnet.gov/expapi/verbs/initialized": ({"length"}, set()),
    f"{VIDEO}/verbs/played": (set(), {"time"}),
    f"{VIDEO}/verbs/paused": ({"length"}, {"time", "progress", "played-segments"}),
    f"{VIDEO}/verbs/seeked": (set(), {"time-from", "time-to"}),
    "http://adlnet.gov/expapi/verbs/completed": ({"length"}, {"time", "progress", "played-segments"}),
    "http://adlnet.gov/expapi/verbs/terminated": ({"length"}, {"time", "progress", "played-segments"}),
}


def is_iri(value: Any) -> bool:
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        return False
    parts = urlsplit(value)
    return bool(parts.scheme) and bool(parts.netloc or parts.path)


def _lang_map(value: Any, where: str, problems: list[str]) -> None:
    if not isinstance(value, dict) or not value:
        problems.append(f"{where}: not a non-empty language map")
        return
    for tag, text in value.items():
        if not LANG_RE.match(tag):
            problems.append(f"{where}: bad language tag {tag!r}")
        if not isinstance(text, str):
            problems.append(f"{where}: {tag} is not a string")


def _extensions(value: Any, where: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append(f"{where}: extensions must be an object")
        return
    for key in value:
        if not is_iri(key):
            problems.append(f"{where}: extension key {key!r} is not an IRI")


def _activity(value: Any, where: str, problems: list[str]) -> None:
    if not isinstance(value, dict) or not is_iri(value.get("id")):
        problems.append(f"{where}: activity without an IRI id")
        return
    if value.get("objectType", "Activity") != "Activity":
        problems.append(f"{where}: objectType must be Activity")
    definition = value.get("definition")
    if definition is None:
        return
    for key in ("name", "description"):
        if key in definition:
            _lang_map(definition[key], f"{where}.definition.{key}", problems)
    if "type" in definition and not is_iri(definition["type"]):
        problems.append(f"{where}.definition.type is not an IRI")
    if "interactionType" in definition and definition["interactionType"] not in INTERACTION_TYPES:
        problems.append(f"{where}: unknown interactionType")
    for choice in definition.get("choices", []):
        if not isinstance(choice.get("id"), str):
            problems.append(f"{where}: choice without a string id")
        _lang_map(choice.get("description"), f"{where}.choices", problems)
    if "extensions" in definition:
        _extensions(definition["extensions"], f"{where}.definition", problems)


def _is_float3(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and round(value, 3) == value


def check_statement(st: dict[str, Any]) -> list[str]:  # noqa: C901 - one walk through the spec's rules
    problems: list[str] = []
    unknown = set(st) - STATEMENT_KEYS
    if unknown:
        problems.append(f"unknown top-level properties {sorted(unknown)}")
    if not isinstance(st.get("id"), str) or not UUID_RE.match(st["id"]):
        problems.append("id is not a lowercase RFC 4122 UUID")

    actor = st.get("actor") or {}
    ifis = [k for k in ("mbox", "mbox_sha1sum", "openid", "account") if k in actor]
    if actor.get("objectType", "Agent") != "Agent" or len(ifis) != 1:
        problems.append("actor must be an Agent with exactly one identifier")
    account = actor.get("account")
    if account is not None and (not is_iri(account.get("homePage")) or not account.get("name")):
        problems.append("actor.account needs homePage (IRL) and name")
    if "name" in actor and not isinstance(actor["name"], str):
        problems.append("actor.name must be a string")

    verb = st.get("verb") or {}
    if not is_iri(verb.get("id")):
        problems.append("verb.id is not an IRI")
    if "display" in verb:
        _lang_map(verb["display"], "verb.display", problems)

    _activity(st.get("object"), "object", problems)

    result = st.get("result")
    if result is not None:
        score = result.get("score")
        if score is not None:
            scaled = score.get("scaled")
            if scaled is not None and not -1 <= scaled <= 1:
                problems.append("result.score.scaled outside [-1, 1]")
            lo, hi, raw = score.get("min"), score.get("max"), score.get("raw")
            if lo is not None and hi is not None and not lo < hi:
                problems.append("result.score.min must be below max")
            if raw is not None and ((lo is not None and raw < lo) or (hi is not None and raw > hi)):
                problems.append("result.score.raw outside [min, max]")
        for key in ("success", "completion"):
            if key in result and not isinstance(result[key], bool):
                problems.append(f"result.{key} must be a boolean")
        if "duration" in result and not DURATION_RE.match(result["duration"]):
            problems.append(f"result.duration {result['duration']!r} is not ISO 8601")
        if "response" in result and not isinstance(result["response"], str):
            problems.append("result.response must be a string")
        if "extensions" in result:
            _extensions(result["extensions"], "result", problems)

    context = st.get("context")
    if context is not None:
        if "registration" in context:
            try:
                uuid.UUID(context["registration"])
            except (ValueError, TypeError, AttributeError):
                problems.append("context.registration is not a UUID")
        activities = context.get("contextActivities", {})
        if set(activities) - {"parent", "grouping", "category", "other"}:
            problems.append("unknown contextActivities key")
        for key, items in activities.items():
            for item in items if isinstance(items, list) else [items]:
                _activity(item, f"context.contextActivities.{key}", problems)
        if "language" in context and not LANG_RE.match(context["language"]):
            problems.append("context.language is not RFC 5646")
        if "extensions" in context:
            _extensions(context["extensions"], "context", problems)

    if "timestamp" in st and not TIMESTAMP_RE.match(st["timestamp"]):
        problems.append("timestamp is not ISO 8601 with a zone")
    return problems


def check_video_statement(st: dict[str, Any], *, session_id: str | None = None) -> list[str]:
    """Video Profile rules on top of :func:`check_statement`."""
    problems = check_statement(st)
    verb = st["verb"]["id"]
    context = st.get("context") or {}
    ctx_ext = context.get("extensions") or {}
    res = st.get("result") or {}
    res_ext = res.get("extensions") or {}
    if VIDEO not in [a.get("id") for a in context.get("contextActivities", {}).get("category", [])]:
        problems.append("video statement without the Video Profile category")
    if (st["object"].get("definition") or {}).get("type") != VIDEO_TYPE:
        problems.append("video object must have the video activity type")
    need_ctx, need_res = VIDEO_REQUIRED.get(verb, (set(), set()))
    threshold = ctx_ext.get(EXT + "completion-threshold", 1)
    if threshold != 1 and verb != f"{VIDEO}/verbs/played" and verb != f"{VIDEO}/verbs/seeked":
        need_ctx = need_ctx | {"completion-threshold"}
    for name in need_ctx:
        if EXT + name not in ctx_ext:
            problems.append(f"{verb}: missing context extension {name}")
    for name in need_res:
        if EXT + name not in res_ext:
            problems.append(f"{verb}: missing result extension {name}")
    for name in ("time", "time-from", "time-to", "length", "progress", "completion-threshold"):
        for ext in (ctx_ext, res_ext):
            if EXT + name in ext and not _is_float3(ext[EXT + name]):
                problems.append(f"{name} must be a number with at most 3 decimals")
    for name in ("progress", "completion-threshold"):
        value = {**ctx_ext, **res_ext}.get(EXT + name)
        if value is not None and not 0 <= value <= 1:
            problems.append(f"{name} outside [0, 1]")
    segments = res_ext.get(EXT + "played-segments")
    if segments and not SEGMENTS_RE.match(segments):
        problems.append(f"played-segments {segments!r} has the wrong syntax")
    if verb.endswith("/completed"):
        if res.get("completion") is not True or "duration" not in res:
            problems.append("completed needs result.completion=true and a duration")
    elif "completion" in res:
        problems.append("only completed may carry result.completion")
    if session_id is not None and ctx_ext.get(EXT + "session-id") != session_id:
        problems.append("session-id is not the initialized statement's id")
    return problems
