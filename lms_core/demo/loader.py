"""A believable demo city: org tree, cadres, instructors, auditors and admins.

Idempotent: units are keyed by code and people by username, so running it again
adds only what is missing. Demo passwords are published in README.md; they are for
a local demo database only.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from sqlalchemy import func, select

from lms_core.accounts.models import RankBand, Role, RoleAssignment, User
from lms_core.accounts.passwords import hash_password
from lms_core.extensions import db
from lms_core.orgs.models import OrgKind, OrgUnit

DEMO_PASSWORD = "Demo-2026"  # noqa: S105 - published demo credential, local demo database only

CITY = ("3601", "江州市")
COUNTIES = [("360102", "东湖区"), ("360121", "南岭县"), ("360122", "青山县"), ("360123", "安义县")]
TOWNSHIPS = ["城关镇", "石岗镇", "莲塘镇", "白沙乡", "梅岭街道", "高桥乡"]
VILLAGES = ["红星村", "新塘村", "东山社区", "桃源村", "柏林村"]
#: City departments: codes in the 9xx range, like a county's 委组织部 (``<county>900``); a
#: two-digit suffix made 市委党校 ``360102``, the code of 东湖区, which then was never created
#: and whose townships were filed under the 党校.
DEPARTMENTS = [("901", "市委组织部"), ("902", "市委党校"), ("903", "市人力资源和社会保障局")]

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红玉兰晓东海燕文斌春梅永辉"
POSITIONS = ["科员", "副科长", "科长", "副主任", "主任", "村党支部书记", "镇长", "副镇长", "局长", "副局长"]

#: Accounts printed by ``make run``: (username, full name, org code, roles, description).
ACCOUNTS = [
    ("admin", "系统管理员", CITY[0], [Role.SITE_ADMIN], "site admin"),
    ("zzb_admin", "组织部管理员", CITY[0], [Role.ORG_ADMIN, Role.AUDITOR], "city org admin + auditor"),
    ("nanling_admin", "南岭县管理员", "360121", [Role.ORG_ADMIN], "county org admin (南岭县)"),
    ("nanling_audit", "南岭县审计员", "360121", [Role.AUDITOR], "county auditor (南岭县 only)"),
    ("teacher", "党校讲师", CITY[0] + "902", [Role.INSTRUCTOR], "instructor"),
    ("learner", "李明", "360121001001", [], "cadre (learner)"),
]


def _unit(code: str, name: str, kind: OrgKind, parent: OrgUnit | None) -> OrgUnit:
    unit = db.session.execute(select(OrgUnit).filter_by(code=code)).scalar_one_or_none()
    if unit is not None:
        return unit
    unit = OrgUnit(code=code, name=name, kind=kind, parent=parent, depth=(parent.depth + 1) if parent else 0)
    db.session.add(unit)
    db.session.flush()
    unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    return unit


def build_tree() -> tuple[OrgUnit, list[OrgUnit]]:
    """The city, its departments, counties, townships and villages; returns (city, leaves)."""
    city = _unit(CITY[0], CITY[1], OrgKind.CITY, None)
    for code, name in DEPARTMENTS:
        _unit(CITY[0] + code, name, OrgKind.DEPARTMENT, city)
    leaves = []
    for c_code, c_name in COUNTIES:
        county = _unit(c_code, c_name, OrgKind.COUNTY, city)
        _unit(c_code + "900", f"{c_name}委组织部", OrgKind.DEPARTMENT, county)
        for t_index, t_name in enumerate(TOWNSHIPS[:4], start=1):
            township = _unit(f"{c_code}{t_index:03d}", t_name, OrgKind.TOWNSHIP, county)
            leaves.append(township)
            for v_index, v_name in enumerate(VILLAGES[:3], start=1):
                leaves.append(_unit(f"{c_code}{t_index:03d}{v_index:03d}", v_name, OrgKind.VILLAGE, township))
    return city, leaves


def load_demo(cadres: int = 300, echo: Callable[[str], object] = print) -> list[str]:
    """Create what is missing and commit; returns lines describing the accounts."""
    rng = random.Random(2026)  # same names on every machine
    city, leaves = build_tree()
    db.session.flush()
    shared_hash = hash_password(DEMO_PASSWORD)  # one scrypt for all demo accounts
    existing = set(db.session.execute(select(User.username)).scalars())
    units_by_code = {u.code: u for u in db.session.execute(select(OrgUnit)).scalars()}
    for username, full_name, code, roles, _desc in ACCOUNTS:
        if username in existing:
            continue
        unit = units_by_code[code]
        user = User(
            username=username,
            full_name=full_name,
            org_unit=unit,
            password_hash=shared_hash,
            rank_band=RankBand.TOWNSHIP if roles else RankBand.GENERAL,
            party_member=True,
            position="科员",
        )
        db.session.add(user)
        for role in roles:
            db.session.add(RoleAssignment(user=user, role=role, org_unit=unit))
    created = 0
    for i in range(1, cadres + 1):
        username = f"cadre{i:04d}"
        if username in existing:
            continue
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        db.session.add(
            User(
                username=username,
                full_name=name,
                org_unit=rng.choice(leaves),
                password_hash=shared_hash,
                rank_band=rng.choices(list(RankBand), weights=(1, 4, 10))[0],
                party_member=rng.random() < 0.8,
                position=rng.choice(POSITIONS),
            )
        )
        created += 1
    db.session.commit()
    from lms_core.demo.courses import load_demo_courses

    new_courses = load_demo_courses(echo=echo)
    from lms_core.demo.feedback import load_demo_feedback
    from lms_core.jobs.services import commit

    load_demo_feedback(echo=echo)
    commit()
    total = db.session.execute(select(func.count()).select_from(User)).scalar_one()
    echo(
        f"demo data ready: {total} users, {len(units_by_code)} org units ({created} cadres, "
        f"{new_courses} courses added now)"
    )
    lines = [f"  {u:<14} / {DEMO_PASSWORD}   {d}" for u, _n, _c, _r, d in ACCOUNTS]
    return ["Demo accounts (username / password):", *lines, f"  cadre0001..cadre{cadres:04d} / {DEMO_PASSWORD}"]
