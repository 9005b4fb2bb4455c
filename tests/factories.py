"""Factories for test data (factory_boy, bound to the app's session)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import factory
from werkzeug.security import generate_password_hash

from lms_core.accounts.models import RankBand, Role, RoleAssignment, User
from lms_core.extensions import db
from lms_core.orgs.models import OrgKind, OrgUnit

PASSWORD = "Passw0rd!"  # noqa: S105
#: One hash for every factory user: scrypt per user would make the suite slow.
PASSWORD_HASH = generate_password_hash(PASSWORD)


class _Base(factory.alchemy.SQLAlchemyModelFactory):  # type: ignore[misc]
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "flush"


class OrgUnitFactory(_Base):
    class Meta:
        model = OrgUnit

    code = factory.Sequence(lambda n: f"U{n:05d}")
    name = factory.Sequence(lambda n: f"单位{n}")
    kind = OrgKind.CITY
    parent = None
    depth = factory.LazyAttribute(lambda o: (o.parent.depth + 1) if o.parent else 0)

    @factory.post_generation
    def _path(obj: OrgUnit, create: bool, extracted: Any, **kwargs: Any) -> None:  # noqa: N805
        db.session.flush()
        obj.path = f"{obj.parent.path if obj.parent else '/'}{obj.id}/"
        db.session.flush()


class UserFactory(_Base):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n:05d}")
    full_name = factory.Sequence(lambda n: f"张{n}")
    password_hash = PASSWORD_HASH
    org_unit = factory.SubFactory(OrgUnitFactory)
    rank_band = RankBand.GENERAL


def grant(user: User, role: Role, unit: OrgUnit) -> RoleAssignment:
    assignment = RoleAssignment(user=user, role=role, org_unit=unit)
    db.session.add(assignment)
    db.session.flush()
    db.session.refresh(user)
    return assignment


@dataclass
class Tree:
    city: OrgUnit
    county_a: OrgUnit
    county_b: OrgUnit
    town_a: OrgUnit
    town_b: OrgUnit
    village_a: OrgUnit


def build_tree() -> Tree:
    city = OrgUnitFactory(code="3601", name="江州市", kind=OrgKind.CITY)
    county_a = OrgUnitFactory(code="360121", name="南岭县", kind=OrgKind.COUNTY, parent=city)
    county_b = OrgUnitFactory(code="360122", name="青山县", kind=OrgKind.COUNTY, parent=city)
    town_a = OrgUnitFactory(code="360121001", name="城关镇", kind=OrgKind.TOWNSHIP, parent=county_a)
    town_b = OrgUnitFactory(code="360122001", name="石岗镇", kind=OrgKind.TOWNSHIP, parent=county_b)
    village_a = OrgUnitFactory(code="360121001001", name="红星村", kind=OrgKind.VILLAGE, parent=town_a)
    db.session.commit()
    return Tree(city, county_a, county_b, town_a, town_b, village_a)
