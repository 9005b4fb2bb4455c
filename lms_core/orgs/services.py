"""Create, rename and move org units, keeping materialised paths consistent."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import func, select, update

from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.i18n import label
from lms_core.orgs.models import ALLOWED_CHILDREN, OrgKind, OrgUnit
from lms_core.unit_of_work import ServiceError


class OrgError(ServiceError):
    """Invalid org-tree change; the message is shown to the user."""


def by_code(code: str) -> OrgUnit | None:
    return db.session.execute(select(OrgUnit).filter_by(code=code)).scalar_one_or_none()


def check_child_kind(parent: OrgUnit | None, kind: OrgKind) -> None:
    allowed = ALLOWED_CHILDREN[parent.kind if parent else None]
    if kind not in allowed:
        if parent is None:
            raise OrgError(_("a %(kind)s cannot be a top-level unit", kind=label(kind)))
        raise OrgError(_("a %(kind)s cannot be placed under a %(where)s", kind=label(kind), where=label(parent.kind)))


def create_unit(
    *, code: str, name: str, kind: OrgKind, parent: OrgUnit | None, actor: object = None, emit_event: bool = True
) -> OrgUnit:
    """Add a unit (flushes, does not commit)."""
    code = code.strip()
    name = name.strip()
    if not code or not name:
        raise OrgError(_("code and name are required"))
    if by_code(code) is not None:
        raise OrgError(_("org code %(code)s already exists", code=code))
    check_child_kind(parent, kind)
    unit = OrgUnit(code=code, name=name, kind=kind, parent=parent, depth=(parent.depth + 1) if parent else 0)
    db.session.add(unit)
    db.session.flush()
    unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    if emit_event:
        emit(
            "org.created",
            actor=actor,
            obj=unit,
            org_unit_id=unit.id,
            payload={"code": code, "name": name, "kind": kind.value},
        )
    return unit


def update_unit(unit: OrgUnit, *, name: str, code: str, actor: object = None) -> None:
    name, code = name.strip(), code.strip()
    if not name or not code:
        raise OrgError(_("code and name are required"))
    other = by_code(code)
    if other is not None and other.id != unit.id:
        raise OrgError(_("org code %(code)s already exists", code=code))
    before = {"name": unit.name, "code": unit.code}
    unit.name, unit.code = name, code
    emit(
        "org.updated",
        actor=actor,
        obj=unit,
        org_unit_id=unit.id,
        payload={"before": before, "after": {"name": name, "code": code}},
    )


def move_unit(unit: OrgUnit, new_parent: OrgUnit, actor: object = None) -> None:
    """Re-parent a unit and rewrite the paths of its whole subtree in one statement."""
    if new_parent.path.startswith(unit.path):
        raise OrgError(_("a unit cannot be moved below itself"))
    check_child_kind(new_parent, unit.kind)
    old_path = unit.path
    new_path = f"{new_parent.path}{unit.id}/"
    depth_delta = new_parent.depth + 1 - unit.depth
    db.session.execute(
        update(OrgUnit)
        .where(OrgUnit.path.startswith(old_path, autoescape=True))
        .values(path=new_path + func.substr(OrgUnit.path, len(old_path) + 1), depth=OrgUnit.depth + depth_delta)
        .execution_options(synchronize_session=False)
    )
    unit.parent_id = new_parent.id
    db.session.flush()
    db.session.expire_all()
    emit("org.moved", actor=actor, obj=unit, org_unit_id=unit.id, payload={"from": old_path, "to": new_path})


def subtree_count(unit: OrgUnit) -> int:
    return db.session.execute(
        select(func.count()).select_from(OrgUnit).where(OrgUnit.path.startswith(unit.path, autoescape=True))
    ).scalar_one()
