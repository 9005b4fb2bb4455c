"""Subtotals for parent units and a grand total, added to a per-unit report table.

A report groups people by their *own* unit (a village, a township office). A county
leader also wants the county's figure, and a city leader each county's: so every
unit above the rows that lies in the viewer's scope (and under the report's root)
gets a "含下级" row summing its own rows and all rows below it, placed before them
in tree order, and the table ends with a total. Ancestors outside the viewer's
scope get no row: a county admin must not see a "city" line that is really only
their county's share.

The roll-up is computed from the same integers the leaf rows show, so subtotals
always add up on screen and in the exports (which write the very same rows).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import add, itemgetter
from typing import Any, NamedTuple

from flask_babel import gettext as _
from sqlalchemy import select

from lms_core.accounts.models import User
from lms_core.authz import scope_condition
from lms_core.extensions import db
from lms_core.orgs.models import OrgUnit


@dataclass
class Leaf:
    """One grouped row of a report: a unit (and maybe a rank band) with its counts."""

    unit_id: int
    code: str
    name: str
    path: str
    #: Label cells between the unit code and the figures (e.g. the rank band).
    labels: list[Any]
    #: Additive figures (counts, milliseconds); derived cells come from ``finish``.
    numbers: list[int]
    key: dict[str, Any] = field(default_factory=dict)


@dataclass
class Rolled:
    """An output row: ``kind`` is ``unit`` (a leaf), ``subtotal`` or ``total``; ``level`` indents."""

    kind: str
    level: int
    unit_id: int | None
    code: str
    name: str
    labels: list[Any]
    numbers: list[int]
    key: dict[str, Any]


@functools.lru_cache(maxsize=1 << 14)
def _path_ids(path: str) -> tuple[int, ...]:
    """The unit ids of a path, the root's first. Memoised (a pure parse): a county's report
    parses the same 500 paths on every page load, twice."""
    return tuple(int(p) for p in path.strip("/").split("/") if p)


class _Unit(NamedTuple):
    id: int
    code: str
    name: str
    path: str


def visible_ancestors(
    viewer: User, capability: str, leaves: Sequence[Leaf], root_path: str | None, *, leaves_in_scope: bool = False
) -> dict[int, Any]:
    """Units above the leaves (or the leaves' own units) inside the scope and under ``root_path``.

    ``leaves_in_scope``: the caller's query already kept only leaves whose unit is in the
    viewer's scope and under ``root_path``, so their units are taken from the leaves and
    only the units above them are looked up. A county's hours table has 500 leaf units
    above which stand a dozen: an ``IN`` of 500 parameters cost 11 ms of CPU to build
    and send, one of a dozen next to nothing.
    """
    known: dict[int, Any] = {}
    if leaves_in_scope:
        known = {leaf.unit_id: _Unit(leaf.unit_id, leaf.code, leaf.name, leaf.path) for leaf in leaves}
    ids = {i for leaf in leaves for i in _path_ids(leaf.path)} - known.keys()
    if not ids:
        return known
    stmt = select(OrgUnit.id, OrgUnit.code, OrgUnit.name, OrgUnit.path).where(
        OrgUnit.id.in_(sorted(ids)), scope_condition(viewer, capability, OrgUnit.path)
    )
    if root_path:
        stmt = stmt.where(OrgUnit.path.startswith(root_path, autoescape=True))
    return {**known, **{row.id: row for row in db.session.execute(stmt)}}


def roll_up(
    leaves: Sequence[Leaf], ancestors: dict[int, Any], blank_labels: list[Any], *, with_total: bool = True
) -> list[Rolled]:
    """Leaves in tree order, a subtotal before every unit that has rows below it, and a total.

    One pass per distinct leaf unit (a unit's leaves, e.g. its rank bands, are summed
    first), sums added with ``map`` and flat sort keys: a county's hours table has 500
    leaves of 12 figures under a few levels of units, and the per-figure loops and
    nested keys were most of its roll-up.
    """
    width = len(leaves[0].numbers) if leaves else 0
    chains: dict[str, tuple[int, ...]] = {}
    own: dict[str, list[int]] = {}  # a leaf unit's path -> the sum of its leaves
    for leaf in leaves:
        if leaf.path not in chains:
            chains[leaf.path] = _path_ids(leaf.path)
        acc = own.get(leaf.path)
        own[leaf.path] = list(leaf.numbers) if acc is None else list(map(add, acc, leaf.numbers))
    below: dict[int, list[int]] = {}  # unit id -> sum of every leaf at or under it
    has_descendant_rows: set[int] = set()
    for path, sums in own.items():
        chain = chains[path]
        last = len(chain) - 1
        for depth, uid in enumerate(chain):
            if uid not in ancestors:
                continue
            acc = below.get(uid)
            below[uid] = list(sums) if acc is None else list(map(add, acc, sums))
            if depth < last:
                has_descendant_rows.add(uid)

    prefixes: dict[tuple[int, ...], tuple[Any, ...]] = {}

    def above(path: str) -> tuple[Any, ...]:
        """Sort key of the units strictly above a unit that carry a subtotal row: (code, 2) each, flat.

        Kept per parent chain: the leaves under one township share theirs.
        """
        parents = _path_ids(path)[:-1]
        found = prefixes.get(parents)
        if found is None:
            found = prefixes[parents] = tuple(
                part for i in parents if i in has_descendant_rows for part in (ancestors[i].code, 2)
            )
        return found

    # Sort keys, flat: (code, 2) per subtotalled ancestor; then the row itself: (code, 0)
    # for a subtotal, before (code, 1, n) for the unit's own rows, before its children.
    out: list[tuple[tuple[Any, ...], Rolled]] = []
    for uid in has_descendant_rows:
        a = ancestors[uid]
        prefix = above(a.path)
        out.append(
            (
                (*prefix, a.code, 0),
                Rolled(
                    "subtotal",
                    len(prefix) // 2,
                    uid,
                    a.code,
                    _("%(unit)s (incl. subunits)", unit=a.name),
                    list(blank_labels),
                    below[uid],
                    {"unit": uid, "subtree": uid},
                ),
            )
        )
    for index, leaf in enumerate(leaves):
        prefix = above(leaf.path)
        level = len(prefix) // 2 + (1 if leaf.unit_id in has_descendant_rows else 0)
        out.append(
            (
                (*prefix, leaf.code, 1, index),
                Rolled("unit", level, leaf.unit_id, leaf.code, leaf.name, leaf.labels, leaf.numbers, dict(leaf.key)),
            )
        )
    out.sort(key=itemgetter(0))
    rows = [r for _key, r in out]
    if with_total and leaves:
        totals = [0] * width
        for sums in own.values():
            totals = list(map(add, totals, sums))
        rows.append(Rolled("total", 0, None, "", _("Total"), list(blank_labels), totals, {}))
    return rows


def fill(table: Any, rows: Sequence[Rolled], finish: Callable[[list[int]], list[Any]]) -> None:
    """Append ``rows`` to a :class:`~lms_core.reports.tables.Table`: name, code, labels, figures."""
    for r in rows:
        table.rows.append([r.name, r.code, *r.labels, *finish(r.numbers)])
        table.keys.append({**r.key, "kind": r.kind, "level": r.level})
