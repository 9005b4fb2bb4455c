"""The org tree, stored with a materialised path for cheap subtree queries."""

from __future__ import annotations

import datetime as dt
import enum

from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms_core.db import Base, UTCDateTime, str_enum, utcnow
from lms_core.i18n import enum_labels


class OrgKind(enum.StrEnum):
    """Levels of the administrative tree, plus departments at any level."""

    PROVINCE = "province"  # 省
    CITY = "city"  # 市
    COUNTY = "county"  # 县(区)
    TOWNSHIP = "township"  # 乡(镇、街道)
    VILLAGE = "village"  # 村(社区)
    DEPARTMENT = "department"  # 部门 / 单位


enum_labels(
    OrgKind,
    {
        OrgKind.PROVINCE: _l("Province"),
        OrgKind.CITY: _l("City"),
        OrgKind.COUNTY: _l("County / district"),
        OrgKind.TOWNSHIP: _l("Township / street"),
        OrgKind.VILLAGE: _l("Village / community"),
        OrgKind.DEPARTMENT: _l("Department"),
    },
)


#: Which kinds may sit directly under which: a village under a county is a data error.
ALLOWED_CHILDREN: dict[OrgKind | None, set[OrgKind]] = {
    None: {OrgKind.PROVINCE, OrgKind.CITY, OrgKind.COUNTY},
    OrgKind.PROVINCE: {OrgKind.CITY, OrgKind.DEPARTMENT},
    OrgKind.CITY: {OrgKind.COUNTY, OrgKind.DEPARTMENT},
    OrgKind.COUNTY: {OrgKind.TOWNSHIP, OrgKind.DEPARTMENT},
    OrgKind.TOWNSHIP: {OrgKind.VILLAGE, OrgKind.DEPARTMENT},
    OrgKind.VILLAGE: set(),
    OrgKind.DEPARTMENT: {OrgKind.DEPARTMENT},
}


class OrgUnit(Base):
    """A node of the org tree.

    ``path`` is ``/<id>/<id>/.../`` from the root down to this node, so "the
    subtree of X" is ``path LIKE X.path || '%'``: one indexed range scan on both
    databases, which every scoped query (auditors, reports) relies on.
    """

    __tablename__ = "org_units"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Official code (e.g. 行政区划代码 or the HR system's unit code); unique, used by imports.
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[OrgKind] = mapped_column(str_enum(OrgKind, 20))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"))
    path: Mapped[str] = mapped_column(String(512), default="")
    depth: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    parent: Mapped[OrgUnit | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[OrgUnit]] = relationship(back_populates="parent", order_by="OrgUnit.code")

    __table_args__ = (
        Index("ix_org_units_path", "path"),
        Index("ix_org_units_parent_id", "parent_id"),
    )

    def is_within(self, ancestor: OrgUnit) -> bool:
        """True if this unit is ``ancestor`` or lies below it."""
        return self.path.startswith(ancestor.path)

    def ancestor_ids(self) -> list[int]:
        """Ids from the root down to this unit, inclusive."""
        return [int(part) for part in self.path.strip("/").split("/") if part]
