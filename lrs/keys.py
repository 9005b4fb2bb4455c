"""Lookup keys: what a statement can be found by, as 64-bit hashes.

A statement is stored once as JSON; the query filters (agent, verb, activity,
registration, with or without ``related_*``) run against one narrow table of
``(key, statement)`` pairs whose primary key ``(key, stmt_pk)`` is also the index
that answers "the newest N statements with this key" by a backward range scan.

Each key is the first 8 bytes of a BLAKE2b digest of ``kind + "\\0" + value``:

* ``a``/``ra``: agent as actor or object (``a``), or anywhere an agent filter with
  ``related_agents=true`` must look (``ra``, a superset). Group members count.
* ``o``/``ro``: activity as object (``o``), or related (``ro``: also context
  activities and inside a SubStatement).
* ``v``: verb id; ``r``: registration.
* ``ref``: the statement's object is a StatementRef to this id (for the
  StatementRef filter rule, xAPI-Communication 2.1.3.s3).
* ``vt``: the statement voids this id.
* ``au``: the statement's authority (``statements/read/mine``).

Filter keys (``FILTER_KINDS``) of a targeted statement are copied to the statements
that reference it, so the StatementRef rule costs nothing at query time.
A 64-bit collision is possible in theory (about 1 in 10^7 at a billion keys); a
collision could only add a foreign statement to a filtered result.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

FILTER_KINDS = ("a", "ra", "o", "ro", "v", "r")


@functools.lru_cache(maxsize=65536)
def key(kind: str, value: str) -> int:
    """The 64-bit key; cached, since verbs, courses and active learners repeat constantly."""
    digest = hashlib.blake2b(f"{kind}\0{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_JSON_PLAIN = re.compile(r'^[^"\\\x00-\x1f]*$')


def _account_text(home: object, name: object) -> str:
    # Same text as json.dumps([home, name], ensure_ascii=False), without its cost in
    # the common case (no quote, backslash or control character to escape).
    if isinstance(home, str) and isinstance(name, str) and _JSON_PLAIN.match(home) and _JSON_PLAIN.match(name):
        return f'["{home}", "{name}"]'
    return json.dumps([home, name], ensure_ascii=False)


def ifi(agent: dict[str, Any]) -> str | None:
    """Canonical text of an Agent's or identified Group's inverse functional identifier."""
    if "mbox" in agent:
        return "mbox:" + str(agent["mbox"]).lower()
    if "mbox_sha1sum" in agent:
        return "mbox_sha1sum:" + str(agent["mbox_sha1sum"]).lower()
    if "openid" in agent:
        return "openid:" + str(agent["openid"])
    if "account" in agent:
        acc = agent["account"]
        return "account:" + _account_text(acc.get("homePage"), acc.get("name"))
    return None


def _agent_ifis(agent: Any) -> Iterable[str]:
    if not isinstance(agent, dict):
        return
    own = ifi(agent)
    if own:
        yield own
    if agent.get("objectType") == "Group":
        for m in agent.get("member") or []:
            member = ifi(m) if isinstance(m, dict) else None
            if member:
                yield member


def _context_activities(ctx: Any) -> Iterable[str]:
    if not isinstance(ctx, dict):
        return
    for acts in (ctx.get("contextActivities") or {}).values():
        for a in acts if isinstance(acts, list) else [acts]:
            yield a["id"]


def _collect(s: dict[str, Any], out: set[tuple[str, str]], *, top: bool) -> None:
    direct_agent = "a" if top else None
    direct_act = "o" if top else None
    for value in _agent_ifis(s.get("actor")):
        out.add(("ra", value))
        if direct_agent:
            out.add((direct_agent, value))
    obj = s.get("object") or {}
    kind = obj.get("objectType", "Activity")
    if kind in ("Agent", "Group"):
        for value in _agent_ifis(obj):
            out.add(("ra", value))
            if direct_agent:
                out.add((direct_agent, value))
    elif kind == "Activity":
        out.add(("ro", obj["id"]))
        if direct_act:
            out.add((direct_act, obj["id"]))
    elif kind == "SubStatement":
        _collect(obj, out, top=False)
    if top:
        out.add(("v", s["verb"]["id"]))
    ctx = s.get("context") or {}
    for role in ("instructor", "team"):
        for value in _agent_ifis(ctx.get(role)):
            out.add(("ra", value))
    for act in _context_activities(ctx):
        out.add(("ro", act))
    if top and "registration" in ctx:
        out.add(("r", ctx["registration"].lower()))


def statement_keys(s: dict[str, Any]) -> set[tuple[str, str]]:
    """``(kind, value)`` pairs a stored statement (with its authority) is found by."""
    out: set[tuple[str, str]] = set()
    _collect(s, out, top=True)
    for value in _agent_ifis(s.get("authority")):
        out.add(("ra", value))
        out.add(("au", value))
    obj = s["object"]
    if obj.get("objectType") == "StatementRef":
        out.add(("ref", obj["id"].lower()))
        if s["verb"]["id"] == "http://adlnet.gov/expapi/verbs/voided":
            out.add(("vt", obj["id"].lower()))
    return out
