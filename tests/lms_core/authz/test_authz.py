"""Authorisation: every role x object kind x place in the tree x core capability.

The expected table below is written out by hand rather than derived from
``CORE_CAPABILITIES``, so a change to who holds what shows up here as a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from lms_core.accounts.models import Role, RoleAssignment, User, UserStatus
from lms_core.authz import can, scope_condition
from lms_core.events.models import Event
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.orgs.models import OrgUnit
from lms_core.pluginhost import hookimpl
from tests.conftest import login
from tests.factories import UserFactory, grant
from tests.lms_core.apps import running_app
from tests.plugins.hookprobe import HookProbe

#: The platform's own capabilities (packages and plugins add more; not tested here).
CAPABILITIES = (
    "admin.access",
    "org.view",
    "org.manage",
    "user.view",
    "user.manage",
    "user.import",
    "role.assign",
    "events.view",
    "learning.view",
    "learning.participate",
    "course.author",
    "course.assign",
    "site.manage",
)
#: What a role granted on a county allows *within that county's subtree*. Every role
#: keeps the implicit learner role on the holder's own unit (here: the county).
WITHIN: dict[Role, set[str]] = {
    Role.LEARNER: {"learning.participate"},
    Role.INSTRUCTOR: {"learning.participate", "course.author"},
    Role.AUDITOR: {"learning.participate", "admin.access", "org.view", "user.view", "events.view", "learning.view"},
    Role.ORG_ADMIN: {
        "learning.participate",
        "admin.access",
        "org.view",
        "org.manage",
        "user.view",
        "user.manage",
        "user.import",
        "role.assign",
        "events.view",
        "learning.view",
        "course.assign",
    },
    Role.SITE_ADMIN: set(CAPABILITIES),
}
#: Outside the subtree only a site admin acts; learning happens in one's own unit only.
OUTSIDE: dict[Role, set[str]] = {role: set() for role in Role}
OUTSIDE[Role.SITE_ADMIN] = set(CAPABILITIES) - {"learning.participate"}

PLACES = ("same_county", "other_county", "parent_city")
KINDS = ("OrgUnit", "User", "Event", "RoleAssignment")


def expected(role: Role, capability: str, place: str) -> bool:
    table = WITHIN if place == "same_county" else OUTSIDE
    return capability in table[role]


@dataclass
class World:
    tree: Any
    objects: dict[tuple[str, str], Any]


def _place_units(tree: Any) -> dict[str, OrgUnit]:
    # A village deep in the county, the other county's township, and the city above both.
    return {"same_county": tree.village_a, "other_county": tree.town_b, "parent_city": tree.city}


@pytest.fixture
def world(tree) -> World:
    objects: dict[tuple[str, str], Any] = {}
    holder_role = UserFactory(username="someone_with_role", org_unit=tree.city)
    for place, unit in _place_units(tree).items():
        person = UserFactory(username=f"person_{place}", org_unit=unit)
        objects[("OrgUnit", place)] = unit
        objects[("User", place)] = person
        objects[("Event", place)] = emit("test.event", actor=person, obj=person, org_unit_id=unit.id)
        objects[("RoleAssignment", place)] = grant(holder_role, Role.INSTRUCTOR, unit)
    db.session.commit()
    return World(tree, objects)


def _actor(tree: Any, role: Role, username: str = "actor") -> User:
    actor = UserFactory(username=username, org_unit=tree.county_a)
    grant(actor, role, tree.county_a)
    db.session.commit()
    return actor


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_matrix(world, role):
    actor = _actor(world.tree, role)
    wrong = []
    checked = 0
    for kind in KINDS:
        for place in PLACES:
            obj = world.objects[(kind, place)]
            for capability in CAPABILITIES:
                got = can(actor, capability, obj)
                checked += 1
                if got != expected(role, capability, place):
                    wrong.append(f"{role.value} {capability} on {kind}@{place}: got {got}")
    assert checked == len(KINDS) * len(PLACES) * len(CAPABILITIES)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_capability_without_object_means_anywhere_in_scope(tree, role):
    actor = _actor(tree, role)
    for capability in CAPABILITIES:
        assert can(actor, capability) == (capability in WITHIN[role]), capability


def test_disabled_and_anonymous_users_can_nothing(world):
    actor = _actor(world.tree, Role.SITE_ADMIN)
    assert can(actor, "site.manage")
    actor.status = UserStatus.DISABLED
    db.session.commit()
    assert not any(can(actor, c, world.objects[("OrgUnit", "same_county")]) for c in CAPABILITIES)
    assert not can(None, "org.view")
    from flask_login import AnonymousUserMixin

    assert not can(AnonymousUserMixin(), "org.view")


def test_unknown_capability_is_an_error(tree):
    actor = _actor(tree, Role.ORG_ADMIN)
    with pytest.raises(KeyError, match="no.such"):
        can(actor, "no.such")


def test_several_grants_combine(tree):
    actor = _actor(tree, Role.AUDITOR)
    grant(actor, Role.ORG_ADMIN, tree.town_b)
    db.session.commit()
    assert can(actor, "user.manage", tree.town_b)
    assert not can(actor, "user.manage", tree.town_a)  # only audits county A
    assert can(actor, "user.view", tree.town_a)


def test_object_without_org_scope_is_refused_loudly(tree):
    actor = _actor(tree, Role.ORG_ADMIN)
    with pytest.raises(TypeError, match="scope resolver"):
        can(actor, "org.view", object())


def test_site_wide_event_is_for_site_admins_only(tree):
    event = emit("site.thing")
    db.session.commit()
    assert not can(_actor(tree, Role.ORG_ADMIN), "events.view", event)
    assert can(_actor(tree, Role.SITE_ADMIN, "root"), "events.view", event)


# lists ------------------------------------------------------------------------


def _visible_users(actor: User) -> set[str]:
    stmt = select(User.username).join(User.org_unit).where(scope_condition(actor, "user.view", OrgUnit.path))
    return set(db.session.execute(stmt).scalars())


def _visible_events(actor: User) -> set[str]:
    stmt = (
        select(Event.object_id)
        .join(OrgUnit, OrgUnit.id == Event.org_unit_id)
        .where(scope_condition(actor, "events.view", OrgUnit.path))
    )
    return set(db.session.execute(stmt).scalars())


def test_county_auditor_lists_only_the_county(world):
    auditor = _actor(world.tree, Role.AUDITOR)
    people = world.objects
    users = _visible_users(auditor)
    assert "person_same_county" in users and "actor" in users
    assert "person_other_county" not in users and "person_parent_city" not in users
    assert _visible_events(auditor) == {str(people[("User", "same_county")].id)}


def test_site_admin_lists_everything_and_learner_nothing(world):
    admin = _actor(world.tree, Role.SITE_ADMIN)
    assert _visible_users(admin) == set(db.session.execute(select(User.username)).scalars())
    assert len(_visible_events(admin)) == 3
    learner = _actor(world.tree, Role.LEARNER, "plain")
    assert _visible_users(learner) == set()
    assert _visible_events(learner) == set()


def test_overlapping_grants_do_not_duplicate_rows(world):
    auditor = _actor(world.tree, Role.AUDITOR)
    grant(auditor, Role.AUDITOR, world.tree.town_a)  # inside the county grant
    db.session.commit()
    stmt = select(User.id).join(User.org_unit).where(scope_condition(auditor, "user.view", OrgUnit.path))
    ids = list(db.session.execute(stmt).scalars())
    assert len(ids) == len(set(ids))


# HTTP -------------------------------------------------------------------------


@pytest.fixture
def county_people(world):
    for role, name in ((Role.AUDITOR, "county_auditor"), (Role.ORG_ADMIN, "county_admin")):
        _actor(world.tree, role, name)
    return world


@pytest.mark.parametrize("username", ["county_auditor", "county_admin"])
def test_county_staff_cannot_open_another_county(client, county_people, username):
    objs = county_people.objects
    login(client, username)
    assert client.get(f"/admin/users/{objs[('User', 'same_county')].id}").status_code == 200
    assert client.get(f"/admin/users/{objs[('User', 'other_county')].id}").status_code == 403
    assert client.get(f"/admin/users/{objs[('User', 'parent_city')].id}").status_code == 403
    assert client.get("/admin/users/987654").status_code == 404
    assert client.get(f"/admin/orgs?unit={county_people.tree.county_a.id}").status_code == 200
    assert client.get(f"/admin/orgs?unit={county_people.tree.county_b.id}").status_code == 403
    assert client.get(f"/admin/orgs?unit={county_people.tree.city.id}").status_code == 403
    listing = client.get("/admin/users").get_data(as_text=True)
    assert "person_same_county" in listing
    assert "person_other_county" not in listing and "person_parent_city" not in listing
    top = client.get("/admin/orgs").get_data(as_text=True)
    assert "南岭县" in top and "青山县" not in top


def test_auditor_is_read_only(client, county_people):
    person = county_people.objects[("User", "same_county")]
    login(client, "county_auditor")
    r = client.post(
        f"/admin/users/{person.id}",
        data={"username": person.username, "full_name": "改名", "org_code": "360121001001", "rank_band": "general"},
    )
    assert r.status_code == 403
    assert client.post(f"/admin/users/{person.id}/reset-password").status_code == 403
    assert client.post(f"/admin/users/{person.id}/status", data={"status": "disabled"}).status_code == 403
    assert (
        client.post(f"/admin/users/{person.id}/roles", data={"role": "auditor", "org_code": "360121001"}).status_code
        == 403
    )
    assert client.get("/admin/users/new").status_code == 403
    assert client.get("/admin/import").status_code == 403
    assert (
        client.post(
            f"/admin/orgs/{county_people.tree.town_a.id}/children", data={"code": "X1", "name": "新", "kind": "village"}
        ).status_code
        == 403
    )
    db.session.expire_all()
    fresh = db.session.get(User, person.id)
    assert fresh.full_name != "改名" and fresh.status == UserStatus.ACTIVE
    assert db.session.execute(select(OrgUnit).filter_by(code="X1")).first() is None


def _assignments() -> int:
    return len(db.session.execute(select(RoleAssignment.id)).all())


def test_county_admin_grants_only_inside_scope_and_never_site_admin(client, county_people):
    person = county_people.objects[("User", "same_county")]
    login(client, "county_admin")
    before = _assignments()
    r = client.post(f"/admin/users/{person.id}/roles", data={"role": "auditor", "org_code": "360122"})
    assert r.status_code == 403  # the other county
    r = client.post(f"/admin/users/{person.id}/roles", data={"role": "org_admin", "org_code": "3601"})
    assert r.status_code == 403  # the city above
    r = client.post(f"/admin/users/{person.id}/roles", data={"role": "site_admin", "org_code": "360121"})
    assert r.status_code == 403  # never site admin, even in scope
    assert _assignments() == before
    r = client.post(f"/admin/users/{person.id}/roles", data={"role": "auditor", "org_code": "360121001"})
    assert r.status_code == 302
    assert _assignments() == before + 1
    other = county_people.objects[("User", "other_county")]
    assert (
        client.post(f"/admin/users/{other.id}/roles", data={"role": "learner", "org_code": "360121"}).status_code == 403
    )
    outside = county_people.objects[("RoleAssignment", "other_county")]
    r = client.post(f"/admin/users/{outside.user_id}/roles/{outside.id}/revoke")
    assert r.status_code == 403
    assert db.session.get(RoleAssignment, outside.id) is not None


def test_county_admin_cannot_move_a_person_out_of_scope(client, county_people):
    person = county_people.objects[("User", "same_county")]
    login(client, "county_admin")
    r = client.post(
        f"/admin/users/{person.id}",
        data={
            "username": person.username,
            "full_name": person.full_name,
            "org_code": "360122001",
            "rank_band": "general",
        },
    )
    assert r.status_code == 400
    db.session.expire_all()
    assert db.session.get(User, person.id).org_unit.code == "360121001001"


def test_learner_has_no_admin_area(client, county_people):
    UserFactory(username="just_learner", org_unit=county_people.tree.town_a)
    db.session.commit()
    login(client, "just_learner")
    assert client.get("/admin/users").status_code == 403
    assert client.get("/admin/orgs").status_code == 403


# plugin override -------------------------------------------------------------


class Veto:
    """Denies one capability to everyone."""

    def __init__(self, capability: str) -> None:
        self.capability = capability

    @hookimpl
    def lms_has_capability(self, user, capability, obj):
        return False if capability == self.capability else None


def test_plugin_override_false_wins_over_true(database_url, tmp_path):
    probe = HookProbe()
    with running_app(database_url, tmp_path, LMS_PLUGIN_OBJECTS={"hookprobe": probe, "veto": Veto("user.manage")}):
        from tests.factories import build_tree

        tree = build_tree()
        learner = UserFactory(username="lucky", org_unit=tree.town_a)
        admin = _actor(tree, Role.SITE_ADMIN, "boss")
        probe.verdicts[("lucky", "user.view")] = True
        probe.verdicts[("lucky", "user.manage")] = True
        probe.verdicts[("boss", "user.manage")] = True
        assert can(learner, "user.view", tree.town_b)  # plugin True beats the role check
        assert not can(learner, "user.manage", tree.town_a)  # True from one plugin, False from another
        assert not can(admin, "user.manage", tree.town_a)  # even a site admin
        assert can(admin, "org.manage", tree.town_b)  # abstaining leaves the role check
        with pytest.raises(KeyError):
            probe.verdicts[("lucky", "made.up")] = True
            can(learner, "made.up")


# taking over accounts with wider roles -------------------------------------------


@pytest.fixture
def wider(county_people):
    """People living in county A whose roles reach beyond it."""
    tree = county_people.tree
    root = UserFactory(username="root_in_village", org_unit=tree.village_a)
    grant(root, Role.SITE_ADMIN, tree.village_a)
    city_auditor = UserFactory(username="city_auditor_in_town", org_unit=tree.town_a)
    grant(city_auditor, Role.AUDITOR, tree.city)
    local = UserFactory(username="local_auditor", org_unit=tree.town_a)
    grant(local, Role.AUDITOR, tree.town_a)
    db.session.commit()
    return root, city_auditor, local


def test_county_admin_cannot_manage_accounts_with_wider_roles(client, county_people, wider):
    root, city_auditor, local = wider
    admin = db.session.execute(select(User).filter_by(username="county_admin")).scalar_one()
    assert not can(admin, "user.manage", root)
    assert not can(admin, "user.manage", city_auditor)
    assert can(admin, "user.manage", local)
    assert can(admin, "user.view", root)  # reading is still fine
    login(client, "county_admin")
    for target in (root, city_auditor):
        before = target.password_hash
        assert client.post(f"/admin/users/{target.id}/reset-password").status_code == 403
        assert client.post(f"/admin/users/{target.id}/status", data={"status": "disabled"}).status_code == 403
        db.session.expire_all()
        fresh = db.session.get(User, target.id)
        assert fresh.password_hash == before and fresh.status == UserStatus.ACTIVE
    # In scope: the first post asks for confirmation, the confirmed one resets.
    assert client.post(f"/admin/users/{local.id}/reset-password").status_code == 200
    assert client.post(f"/admin/users/{local.id}/reset-password", data={"confirmed": "1"}).status_code == 302


def test_site_admin_role_is_revoked_only_by_a_site_admin(client, county_people, wider):
    root, _city_auditor, _local = wider
    (assignment,) = root.roles
    login(client, "county_admin")
    r = client.post(f"/admin/users/{root.id}/roles/{assignment.id}/revoke")
    assert r.status_code == 403
    assert db.session.get(RoleAssignment, assignment.id) is not None


# changes take effect at once ---------------------------------------------------


def test_role_and_unit_changes_take_effect_in_the_same_session(tree):
    """Grants must never be served from a stale cache (a worker or CLI keeps its session)."""
    from lms_core.accounts import services as accounts

    root = _actor(tree, Role.SITE_ADMIN, "root")
    actor = _actor(tree, Role.AUDITOR)
    assert can(actor, "user.view", tree.town_a) and not can(actor, "user.view", tree.town_b)
    (assignment,) = actor.roles
    accounts.revoke_role(root, assignment)
    accounts.grant_role(root, actor, Role.AUDITOR, tree.county_b)  # same number of roles
    db.session.commit()
    assert not can(actor, "user.view", tree.town_a)
    assert can(actor, "user.view", tree.town_b)
    # the implicit learner role follows the person's home unit
    assert can(actor, "learning.participate", tree.town_a)
    actor.org_unit = tree.county_b
    db.session.commit()
    assert not can(actor, "learning.participate", tree.town_a)
    assert can(actor, "learning.participate", tree.town_b)
