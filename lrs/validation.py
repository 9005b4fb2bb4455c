"""Strict structural validation of xAPI 1.0.3 statements and query parameters.

The LRS checks structure, never meaning (xAPI-Communication 3.0): every object may
carry only the properties the spec defines, with the right JSON types, and IRIs,
UUIDs, timestamps, durations, language tags and mailto addresses are checked
syntactically. A failure raises :class:`ValidationError` with a short message that
names the offending path; the view answers 400 and stores nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any


class ValidationError(ValueError):
    """The request does not have the structure the spec requires (HTTP 400)."""


_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_MAILTO = re.compile(r"^mailto:[^@\s:]+@[^@\s]+$")
_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
_SHA2 = re.compile(r"^[0-9a-fA-F]{56}$|^[0-9a-fA-F]{64}$|^[0-9a-fA-F]{96}$|^[0-9a-fA-F]{128}$")
_LANG = re.compile(
    r"^(?:(?:[a-zA-Z]{2,3}(?:-[a-zA-Z]{3}){0,3}|[a-zA-Z]{4,8})(?:-[a-zA-Z]{4})?(?:-(?:[a-zA-Z]{2}|\d{3}))?"
    r"(?:-(?:[a-zA-Z\d]{5,8}|\d[a-zA-Z\d]{3}))*(?:-[0-9a-wyzA-WYZ](?:-[a-zA-Z\d]{2,8})+)*"
    r"(?:-x(?:-[a-zA-Z\d]{1,8})+)?|x(?:-[a-zA-Z\d]{1,8})+|i-[a-zA-Z]{2,8})$"
)
_TIMESTAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}(?::?\d{2})?)?$")
_NUM = r"\d+(?:[.,]\d+)?"
_DURATION = re.compile(
    rf"^P(?:(?:{_NUM}Y)?(?:{_NUM}M)?(?:{_NUM}D)?(?:T(?=\d)(?:{_NUM}H)?(?:{_NUM}M)?(?:{_NUM}S)?)?|{_NUM}W)$"
)
_VERSION = re.compile(r"^1\.0(?:\.\d+)?$")

VOIDED_VERB = "http://adlnet.gov/expapi/verbs/voided"
SIGNATURE_USAGE = "http://adlnet.gov/expapi/attachments/signature"
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
#: Which interaction-component lists each interaction type may carry.
COMPONENTS = {
    "choice": {"choices"},
    "sequencing": {"choices"},
    "likert": {"scale"},
    "matching": {"source", "target"},
    "performance": {"steps"},
}
ALL_COMPONENTS = {"choices", "scale", "source", "target", "steps"}


def _fail(path: str, message: str) -> None:
    raise ValidationError(f"{path}: {message}")


def _obj(value: Any, path: str, allowed: set[str], required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(path, "must be a JSON object")
    extra = set(value) - allowed
    if extra:
        _fail(path, f"unexpected properties {sorted(extra)}")
    for key in required:
        if key not in value:
            _fail(path, f"missing required property {key!r}")
    return value


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        _fail(path, "must be a string")
    return value


def _bool(value: Any, path: str) -> None:
    if not isinstance(value, bool):
        _fail(path, "must be true or false")


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(path, "must be a number")
    return float(value)


@functools.lru_cache(maxsize=65536)
def _is_iri(value: str) -> bool:
    # Cached: verbs, activity ids, extension keys and home pages repeat in every batch.
    return bool(_IRI.match(value))


@functools.lru_cache(maxsize=4096)
def _is_language_tag(value: str) -> bool:
    return bool(_LANG.match(value))


def iri(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _is_iri(value):
        _fail(path, "must be an absolute IRI")
    return value


def uuid(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _UUID.match(value):
        _fail(path, "must be a UUID")
    return value


def is_uuid(value: Any) -> bool:
    return isinstance(value, str) and bool(_UUID.match(value))


def language_tag(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _is_language_tag(value):
        _fail(path, "must be an RFC 5646 language tag")
    return value


def language_map(value: Any, path: str) -> None:
    if not isinstance(value, dict):
        _fail(path, "must be a language map")
    for key, text in value.items():
        language_tag(key, f"{path} key {key!r}")
        _str(text, f"{path}.{key}")


def parse_timestamp(value: Any, path: str = "timestamp") -> dt.datetime:
    """An ISO 8601 timestamp as an aware UTC datetime (no offset means UTC)."""
    m = _TIMESTAMP.match(value) if isinstance(value, str) else None
    if not m:
        raise ValidationError(f"{path}: must be an ISO 8601 timestamp")
    year, month, day, hour, minute = (int(m.group(i)) for i in range(1, 6))
    second = int(m.group(6) or 0)
    frac = (m.group(7) or "0")[:6].ljust(6, "0")
    zone = m.group(8)
    if zone == "-00:00" or zone == "-0000" or zone == "-00":
        raise ValidationError(f"{path}: the offset -00:00 is not allowed")
    tz = dt.UTC
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        if offset >= dt.timedelta(hours=24):
            raise ValidationError(f"{path}: invalid offset")
        tz = dt.timezone(sign * offset)
    try:
        return dt.datetime(year, month, day, hour, minute, second, int(frac), tzinfo=tz).astimezone(dt.UTC)
    except ValueError:
        raise ValidationError(f"{path}: not a valid date and time") from None
    except OverflowError:  # 9999-12-31T23:59:59-05:00 is in the year 10000 in UTC
        raise ValidationError(f"{path}: outside the years 0001 to 9999 once converted to UTC") from None


def extensions(value: Any, path: str) -> None:
    if not isinstance(value, dict):
        _fail(path, "must be an object")
    for key in value:
        iri(key, f"{path} key {key!r}")


# Actors ------------------------------------------------------------------------

_IFIS = ("mbox", "mbox_sha1sum", "openid", "account")


def _ifi_values(value: dict[str, Any], path: str) -> int:
    count = 0
    for key in _IFIS:
        if key not in value:
            continue
        count += 1
        v = value[key]
        if key == "mbox":
            if not isinstance(v, str) or not _MAILTO.match(v):
                _fail(f"{path}.mbox", "must be a mailto: IRI with an e-mail address")
        elif key == "mbox_sha1sum":
            if not isinstance(v, str) or not _SHA1.match(v):
                _fail(f"{path}.mbox_sha1sum", "must be a hex SHA-1 digest")
        elif key == "openid":
            iri(v, f"{path}.openid")
        else:
            acc = _obj(v, f"{path}.account", {"homePage", "name"}, ("homePage", "name"))
            iri(acc["homePage"], f"{path}.account.homePage")
            _str(acc["name"], f"{path}.account.name")
    return count


def agent(value: Any, path: str, *, object_type_required: bool = False) -> None:
    a = _obj(value, path, {"objectType", "name", *_IFIS})
    if object_type_required and a.get("objectType") != "Agent":
        _fail(f"{path}.objectType", "must be 'Agent'")
    if "objectType" in a and a["objectType"] != "Agent":
        _fail(f"{path}.objectType", "must be 'Agent'")
    if "name" in a:
        _str(a["name"], f"{path}.name")
    if _ifi_values(a, path) != 1:
        _fail(path, "an Agent needs exactly one inverse functional identifier")


def group(value: Any, path: str) -> None:
    g = _obj(value, path, {"objectType", "name", "member", *_IFIS}, ("objectType",))
    if g["objectType"] != "Group":
        _fail(f"{path}.objectType", "must be 'Group'")
    if "name" in g:
        _str(g["name"], f"{path}.name")
    ifis = _ifi_values(g, path)
    if ifis > 1:
        _fail(path, "a Group has at most one inverse functional identifier")
    if "member" in g:
        if not isinstance(g["member"], list):
            _fail(f"{path}.member", "must be an array of Agents")
        for i, m in enumerate(g["member"]):
            agent(m, f"{path}.member[{i}]")
    if ifis == 0 and not g.get("member"):
        _fail(path, "an anonymous Group needs members")


def actor(value: Any, path: str) -> None:
    if isinstance(value, dict) and value.get("objectType") == "Group":
        group(value, path)
    else:
        agent(value, path)


# Statement parts ------------------------------------------------------------------


def verb(value: Any, path: str) -> None:
    v = _obj(value, path, {"id", "display"}, ("id",))
    iri(v["id"], f"{path}.id")
    if "display" in v:
        language_map(v["display"], f"{path}.display")


def _components(value: Any, path: str) -> None:
    if not isinstance(value, list):
        _fail(path, "must be an array of interaction components")
    seen = set()
    for i, c in enumerate(value):
        comp = _obj(c, f"{path}[{i}]", {"id", "description"}, ("id",))
        cid = _str(comp["id"], f"{path}[{i}].id")
        if not cid.strip():
            _fail(f"{path}[{i}].id", "must not be empty")
        if cid in seen:
            _fail(f"{path}[{i}].id", "duplicate interaction component id")
        seen.add(cid)
        if "description" in comp:
            language_map(comp["description"], f"{path}[{i}].description")


def activity_definition(value: Any, path: str) -> None:
    d = _obj(
        value,
        path,
        {
            "name",
            "description",
            "type",
            "moreInfo",
            "extensions",
            "interactionType",
            "correctResponsesPattern",
            *ALL_COMPONENTS,
        },
    )
    for key in ("name", "description"):
        if key in d:
            language_map(d[key], f"{path}.{key}")
    if "type" in d:
        iri(d["type"], f"{path}.type")
    if "moreInfo" in d:
        iri(d["moreInfo"], f"{path}.moreInfo")
    if "extensions" in d:
        extensions(d["extensions"], f"{path}.extensions")
    itype = d.get("interactionType")
    if itype is not None and (not isinstance(itype, str) or itype not in INTERACTION_TYPES):
        _fail(f"{path}.interactionType", "unknown interaction type")
    if "correctResponsesPattern" in d:
        if itype is None:
            _fail(f"{path}.correctResponsesPattern", "needs an interactionType")
        crp = d["correctResponsesPattern"]
        if not isinstance(crp, list) or not all(isinstance(x, str) for x in crp):
            _fail(f"{path}.correctResponsesPattern", "must be an array of strings")
    present = ALL_COMPONENTS & set(d)
    if present:
        if itype is None:
            _fail(path, "interaction components need an interactionType")
        allowed = COMPONENTS.get(str(itype), set())
        if present - allowed:
            _fail(path, f"{sorted(present - allowed)} not allowed for interactionType {itype!r}")
        for key in present:
            _components(d[key], f"{path}.{key}")


def activity(value: Any, path: str) -> None:
    a = _obj(value, path, {"objectType", "id", "definition"}, ("id",))
    if "objectType" in a and a["objectType"] != "Activity":
        _fail(f"{path}.objectType", "must be 'Activity'")
    iri(a["id"], f"{path}.id")
    if "definition" in a:
        activity_definition(a["definition"], f"{path}.definition")


def statement_ref(value: Any, path: str) -> None:
    r = _obj(value, path, {"objectType", "id"}, ("objectType", "id"))
    if r["objectType"] != "StatementRef":
        _fail(f"{path}.objectType", "must be 'StatementRef'")
    uuid(r["id"], f"{path}.id")


def result(value: Any, path: str) -> None:
    r = _obj(value, path, {"score", "success", "completion", "response", "duration", "extensions"})
    if "score" in r:
        s = _obj(r["score"], f"{path}.score", {"scaled", "raw", "min", "max"})
        nums = {k: _number(s[k], f"{path}.score.{k}") for k in s}
        if "scaled" in nums and not -1 <= nums["scaled"] <= 1:
            _fail(f"{path}.score.scaled", "must be between -1 and 1")
        if "min" in nums and "max" in nums and nums["min"] > nums["max"]:
            _fail(f"{path}.score", "min must not exceed max")
        if "raw" in nums:
            if "min" in nums and nums["raw"] < nums["min"]:
                _fail(f"{path}.score.raw", "must not be below min")
            if "max" in nums and nums["raw"] > nums["max"]:
                _fail(f"{path}.score.raw", "must not exceed max")
    for key in ("success", "completion"):
        if key in r:
            _bool(r[key], f"{path}.{key}")
    if "response" in r:
        _str(r["response"], f"{path}.response")
    if "duration" in r and (
        not isinstance(r["duration"], str) or not _DURATION.match(r["duration"]) or r["duration"] in ("P", "PT")
    ):
        _fail(f"{path}.duration", "must be an ISO 8601 duration")
    if "extensions" in r:
        extensions(r["extensions"], f"{path}.extensions")


def context(value: Any, path: str, object_value: Any) -> None:
    c = _obj(
        value,
        path,
        {
            "registration",
            "instructor",
            "team",
            "contextActivities",
            "revision",
            "platform",
            "language",
            "statement",
            "extensions",
        },
    )
    if "registration" in c:
        uuid(c["registration"], f"{path}.registration")
    if "instructor" in c:
        actor(c["instructor"], f"{path}.instructor")
    if "team" in c:
        group(c["team"], f"{path}.team")
    if "contextActivities" in c:
        ca = _obj(c["contextActivities"], f"{path}.contextActivities", {"parent", "grouping", "category", "other"})
        for key, acts in ca.items():
            for i, a in enumerate(acts if isinstance(acts, list) else [acts]):
                activity(a, f"{path}.contextActivities.{key}[{i}]")
    is_activity = isinstance(object_value, dict) and object_value.get("objectType", "Activity") == "Activity"
    for key in ("revision", "platform"):
        if key in c:
            _str(c[key], f"{path}.{key}")
            if not is_activity:
                _fail(f"{path}.{key}", "only allowed when the object is an Activity")
    if "language" in c:
        language_tag(c["language"], f"{path}.language")
    if "statement" in c:
        statement_ref(c["statement"], f"{path}.statement")
    if "extensions" in c:
        extensions(c["extensions"], f"{path}.extensions")


def attachment(value: Any, path: str) -> None:
    a = _obj(
        value,
        path,
        {"usageType", "display", "description", "contentType", "length", "sha2", "fileUrl"},
        ("usageType", "display", "contentType", "length", "sha2"),
    )
    iri(a["usageType"], f"{path}.usageType")
    language_map(a["display"], f"{path}.display")
    if "description" in a:
        language_map(a["description"], f"{path}.description")
    _str(a["contentType"], f"{path}.contentType")
    if isinstance(a["length"], bool) or not isinstance(a["length"], int) or a["length"] < 0:
        _fail(f"{path}.length", "must be a non-negative integer")
    if not isinstance(a["sha2"], str) or not _SHA2.match(a["sha2"]):
        _fail(f"{path}.sha2", "must be a hex SHA-2 digest")
    if "fileUrl" in a:
        iri(a["fileUrl"], f"{path}.fileUrl")


def _object(value: Any, path: str, *, sub: bool) -> None:
    if not isinstance(value, dict):
        _fail(path, "must be a JSON object")
    kind = value.get("objectType", "Activity")
    if kind == "Activity":
        activity(value, path)
    elif kind == "Agent":
        agent(value, path)
    elif kind == "Group":
        group(value, path)
    elif kind == "StatementRef":
        statement_ref(value, path)
    elif kind == "SubStatement":
        if sub:
            _fail(path, "a SubStatement cannot contain a SubStatement")
        _statement_body(value, path, sub=True)
    else:
        _fail(f"{path}.objectType", "unknown objectType")


_STATEMENT_KEYS = {
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
    "objectType",
}
_SUB_KEYS = {"objectType", "actor", "verb", "object", "result", "context", "timestamp", "attachments"}


def _statement_body(s: Any, path: str, *, sub: bool) -> None:
    _obj(s, path, _SUB_KEYS if sub else _STATEMENT_KEYS, ("actor", "verb", "object"))
    if sub and s["objectType"] != "SubStatement":
        _fail(f"{path}.objectType", "must be 'SubStatement'")
    actor(s["actor"], f"{path}.actor")
    verb(s["verb"], f"{path}.verb")
    _object(s["object"], f"{path}.object", sub=sub)
    if "result" in s:
        result(s["result"], f"{path}.result")
    if "context" in s:
        context(s["context"], f"{path}.context", s["object"])
    if "timestamp" in s:
        parse_timestamp(s["timestamp"], f"{path}.timestamp")
    if "attachments" in s:
        if not isinstance(s["attachments"], list):
            _fail(f"{path}.attachments", "must be an array")
        for i, a in enumerate(s["attachments"]):
            attachment(a, f"{path}.attachments[{i}]")


def statement(s: Any, path: str = "statement") -> None:
    """Validate one statement as received (raises :class:`ValidationError`)."""
    if not isinstance(s, dict):
        _fail(path, "must be a JSON object")
    if "objectType" in s:
        _fail(f"{path}.objectType", "not allowed on a statement")
    _statement_body(s, path, sub=False)
    if "id" in s:
        uuid(s["id"], f"{path}.id")
    if "stored" in s:
        parse_timestamp(s["stored"], f"{path}.stored")
    if "version" in s and (not isinstance(s["version"], str) or not _VERSION.match(s["version"])):
        _fail(f"{path}.version", "must be a 1.0.x version")
    if "authority" in s:
        auth = s["authority"]
        actor(auth, f"{path}.authority")
        if isinstance(auth, dict) and auth.get("objectType") == "Group":
            members = auth.get("member") or []
            if len(members) != 2 or any(k in auth for k in _IFIS):
                _fail(f"{path}.authority", "a Group authority must be an anonymous group of two Agents")
    if s["verb"]["id"] == VOIDED_VERB:
        obj = s["object"]
        if obj.get("objectType") != "StatementRef":
            _fail(f"{path}.object", "a voiding statement's object must be a StatementRef")
