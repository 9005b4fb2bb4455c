"""Who a 调训 assignment reaches: the unit picker's tree, head counts and completion.

Read-only queries for the assignment page; :mod:`lms_core.enrolments.services`
writes. Counts are of active people, as :func:`services.materialize` enrols them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select

from lms_core.accounts.models import RankBand, User, UserStatus
from lms_core.courses.models import Course
from lms_core.enrolments.models import Assignment, Enrolment
from lms_core.extensions import db
from lms_core.orgs.models import OrgUnit

#: Levels of the tree shown below the top units; deeper units are reached by
#: re-rooting the picker at a unit (a link), so a province stays a short page.
TREE_DEPTH = 3


@dataclass
class Node:
    unit: OrgUnit
    people: int = 0
    children: list[Node] = field(default_factory=list)
    #: Has children below the shown depth (offer "open this unit").
    deeper: bool = False

    def contains(self, unit_id: int | None) -> bool:
        return unit_id is not None and (self.unit.id == unit_id or any(c.contains(unit_id) for c in self.children))


def unit_tree(roots: list[OrgUnit]) -> list[Node]:
    """``roots`` and their units down to :data:`TREE_DEPTH` levels, with subtree head counts.

    Two queries whatever the size: the units, and the people per unit (summed up
    the tree here).
    """
    if not roots:
        return []
    within = or_(
        *(and_(OrgUnit.path.startswith(r.path, autoescape=True), OrgUnit.depth <= r.depth + TREE_DEPTH) for r in roots)
    )
    units = list(db.session.execute(select(OrgUnit).where(within).order_by(OrgUnit.depth, OrgUnit.code)).scalars())
    subtree = or_(*(OrgUnit.path.startswith(r.path, autoescape=True) for r in roots))
    per_path = db.session.execute(
        select(OrgUnit.path, OrgUnit.depth, func.count(User.id))
        .join(User, User.org_unit_id == OrgUnit.id)
        .where(subtree, User.status == UserStatus.ACTIVE)
        .group_by(OrgUnit.path, OrgUnit.depth)
    ).all()
    nodes = {u.id: Node(u) for u in units}
    by_path = {u.path: nodes[u.id] for u in units}
    for path, _depth, count in per_path:
        # credit every shown ancestor (and the unit itself when shown)
        ids = [part for part in path.strip("/").split("/") if part]
        for i in range(1, len(ids) + 1):
            node = by_path.get("/" + "/".join(ids[:i]) + "/")
            if node is not None:
                node.people += count
    deepest = {r.id: r.depth + TREE_DEPTH for r in roots}
    top: list[Node] = []
    root_ids = set(deepest)
    for unit in units:
        node = nodes[unit.id]
        parent = nodes.get(unit.parent_id) if unit.parent_id is not None else None
        if unit.id in root_ids or parent is None:
            top.append(node)
        else:
            parent.children.append(node)
    limit_depths = {u.id: min(deepest[r.id] for r in roots if u.path.startswith(r.path)) for u in units}
    edge = [u.id for u in units if u.depth == limit_depths[u.id]]
    if edge:
        with_children = set(
            db.session.execute(select(OrgUnit.parent_id).where(OrgUnit.parent_id.in_(edge)).distinct()).scalars()
        )
        for unit_id in with_children:
            if unit_id is not None:
                nodes[unit_id].deeper = True
    return top


def _targets(unit: OrgUnit, rank_band: RankBand | None) -> Select[Any]:
    stmt = (
        select(User.id)
        .join(OrgUnit, OrgUnit.id == User.org_unit_id)
        .where(OrgUnit.path.startswith(unit.path, autoescape=True), User.status == UserStatus.ACTIVE)
    )
    if rank_band is not None:
        stmt = stmt.where(User.rank_band == rank_band)
    return stmt


def reach(unit: OrgUnit, rank_band: RankBand | None) -> int:
    """How many active people an assignment of ``unit`` (and band) would reach now."""
    return db.session.execute(select(func.count()).select_from(_targets(unit, rank_band).subquery())).scalar_one()


@dataclass
class AssignmentLine:
    assignment: Assignment
    reached: int  # people the assignment covers today
    enrolled: int  # of them, enrolled in the course
    completed: int  # of them, who completed it


def assignment_lines(course: Course, scope: ColumnElement[bool]) -> list[AssignmentLine]:
    """The course's assignments over units in ``scope`` (an SQL condition on ``OrgUnit.path``), newest first."""
    assignments = list(
        db.session.execute(
            select(Assignment)
            .join(OrgUnit, OrgUnit.id == Assignment.org_unit_id)
            .where(Assignment.course_id == course.id, scope)
            .order_by(Assignment.id.desc())
            .limit(50)
        ).scalars()
    )
    lines = []
    for a in assignments:
        targets = _targets(a.org_unit, a.rank_band).subquery()
        reached, enrolled, completed = db.session.execute(
            select(func.count(targets.c.id), func.count(Enrolment.id), func.count(Enrolment.completed_at))
            .select_from(targets)
            .outerjoin(Enrolment, and_(Enrolment.user_id == targets.c.id, Enrolment.course_id == course.id))
        ).one()
        lines.append(AssignmentLine(a, reached, enrolled, completed))
    return lines
