"""Statement output formats: ``exact`` (as stored), ``ids`` and ``canonical``."""

from __future__ import annotations

import copy
from typing import Any

_IFIS = ("mbox", "mbox_sha1sum", "openid", "account")


def _ids_actor(a: Any) -> Any:
    if not isinstance(a, dict):
        return a
    out = {k: a[k] for k in _IFIS if k in a}
    if "objectType" in a:
        out["objectType"] = a["objectType"]
    if a.get("objectType") == "Group" and not any(k in a for k in _IFIS):
        out["member"] = [_ids_actor(m) for m in a.get("member") or []]
    return out


def _ids_activity(a: dict[str, Any]) -> dict[str, Any]:
    return {"id": a["id"]}


def _ids_body(s: dict[str, Any]) -> dict[str, Any]:
    s = dict(s)
    s["actor"] = _ids_actor(s["actor"])
    s["verb"] = {"id": s["verb"]["id"]}
    obj = s["object"]
    kind = obj.get("objectType", "Activity")
    if kind == "Activity":
        s["object"] = _ids_activity(obj)
    elif kind in ("Agent", "Group"):
        s["object"] = _ids_actor(obj)
    elif kind == "SubStatement":
        s["object"] = _ids_body(obj)
    if "authority" in s:
        s["authority"] = _ids_actor(s["authority"])
    if "context" in s:
        ctx = dict(s["context"])
        for role in ("instructor", "team"):
            if role in ctx:
                ctx[role] = _ids_actor(ctx[role])
        if "contextActivities" in ctx:
            ctx["contextActivities"] = {
                k: [_ids_activity(a) for a in v] if isinstance(v, list) else _ids_activity(v)
                for k, v in ctx["contextActivities"].items()
            }
        s["context"] = ctx
    return s


def parse_accept_language(header: str | None) -> list[str]:
    """Language ranges in preference order (RFC 2616 14.4), lower-cased."""
    if not header:
        return []
    ranges = []
    for i, part in enumerate(header.split(",")):
        bits = part.strip().split(";")
        tag = bits[0].strip().lower()
        if not tag:
            continue
        q = 1.0
        for b in bits[1:]:
            b = b.strip()
            if b.startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        if q > 0:
            ranges.append((-q, i, tag))
    return [t for _, _, t in sorted(ranges)]


def pick_language(lmap: dict[str, str], prefs: list[str]) -> dict[str, str]:
    """One entry of a language map, chosen by the Accept-Language preferences."""
    if len(lmap) <= 1:
        return dict(lmap)
    lowered = {k.lower(): k for k in lmap}
    for pref in prefs:
        if pref == "*":
            break
        if pref in lowered:
            k = lowered[pref]
            return {k: lmap[k]}
        for low, k in lowered.items():
            if low.startswith(pref + "-"):
                return {k: lmap[k]}
    for fallback in ("und", "en-us", "en"):
        if fallback in lowered:
            k = lowered[fallback]
            return {k: lmap[k]}
    k = next(iter(lmap))
    return {k: lmap[k]}


def _canonical_activity(a: dict[str, Any], prefs: list[str]) -> dict[str, Any]:
    if "definition" not in a:
        return a
    a = copy.deepcopy(a)
    d = a["definition"]
    for key in ("name", "description"):
        if key in d:
            d[key] = pick_language(d[key], prefs)
    for key in ("choices", "scale", "source", "target", "steps"):
        for comp in d.get(key) or []:
            if "description" in comp:
                comp["description"] = pick_language(comp["description"], prefs)
    return a


def _canonical_body(s: dict[str, Any], prefs: list[str]) -> dict[str, Any]:
    s = dict(s)
    if "display" in s["verb"]:
        s["verb"] = {**s["verb"], "display": pick_language(s["verb"]["display"], prefs)}
    obj = s["object"]
    kind = obj.get("objectType", "Activity")
    if kind == "Activity":
        s["object"] = _canonical_activity(obj, prefs)
    elif kind == "SubStatement":
        s["object"] = _canonical_body(obj, prefs)
    if "context" in s and "contextActivities" in s["context"]:
        ctx = dict(s["context"])
        ctx["contextActivities"] = {
            k: [_canonical_activity(a, prefs) for a in v] if isinstance(v, list) else _canonical_activity(v, prefs)
            for k, v in ctx["contextActivities"].items()
        }
        s["context"] = ctx
    return s


def render(statement: dict[str, Any], fmt: str, accept_language: str | None = None) -> dict[str, Any]:
    if fmt == "ids":
        return _ids_body(statement)
    if fmt == "canonical":
        return _canonical_body(statement, parse_accept_language(accept_language))
    return statement
