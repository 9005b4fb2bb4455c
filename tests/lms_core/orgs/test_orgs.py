"""The org tree: create, update and move services, kind rules, and the admin pages."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from lms_core.accounts.models import Role
from lms_core.events.models import Event
from lms_core.extensions import db
from lms_core.orgs import services
from lms_core.orgs.models import OrgKind, OrgUnit
from tests.conftest import login
from tests.factories import UserFactory, grant


def _path_of(unit: OrgUnit) -> str:
    """The path recomputed from the parent chain (what the stored path must equal)."""
    ids = []
    node = unit
    while node is not None:
        ids.append(node.id)
        node = node.parent
    return "/" + "".join(f"{i}/" for i in reversed(ids))


def _assert_paths_consistent() -> None:
    db.session.expire_all()
    for unit in db.session.execute(select(OrgUnit)).scalars():
        assert unit.path == _path_of(unit), unit.code
        assert unit.depth == unit.path.count("/") - 2, unit.code


def test_create_sets_path_depth_and_event(tree):
    unit = services.create_unit(code="360121001002", name="新村", kind=OrgKind.VILLAGE, parent=tree.town_a)
    db.session.commit()
    assert unit.path == f"{tree.town_a.path}{unit.id}/"
    assert unit.depth == 3
    assert unit.is_within(tree.county_a) and not unit.is_within(tree.county_b)
    assert unit.ancestor_ids() == [tree.city.id, tree.county_a.id, tree.town_a.id, unit.id]
    event = db.session.execute(select(Event).filter_by(name="org.created")).scalar_one()
    assert event.object_id == str(unit.id) and event.payload["code"] == "360121001002"


@pytest.mark.parametrize(
    ("parent_attr", "kind"),
    [
        ("village_a", OrgKind.VILLAGE),  # nothing under a village
        ("county_a", OrgKind.VILLAGE),  # a village directly under a county
        ("city", OrgKind.TOWNSHIP),
        ("town_a", OrgKind.PROVINCE),
        (None, OrgKind.TOWNSHIP),  # roots are province, city or county only
    ],
)
def test_kind_rules(tree, parent_attr, kind):
    parent = getattr(tree, parent_attr) if parent_attr else None
    with pytest.raises(services.OrgError):
        services.create_unit(code="K1", name="x", kind=kind, parent=parent)


def test_departments_may_sit_anywhere_but_under_villages(tree):
    dept = services.create_unit(code="D1", name="组织部", kind=OrgKind.DEPARTMENT, parent=tree.city)
    sub = services.create_unit(code="D2", name="干部科", kind=OrgKind.DEPARTMENT, parent=dept)
    assert sub.depth == 2
    with pytest.raises(services.OrgError):
        services.create_unit(code="D3", name="x", kind=OrgKind.DEPARTMENT, parent=tree.village_a)


def test_create_rejects_duplicate_code_and_blanks(tree):
    with pytest.raises(services.OrgError, match="已存在"):
        services.create_unit(code="360121", name="x", kind=OrgKind.COUNTY, parent=tree.city)
    with pytest.raises(services.OrgError):
        services.create_unit(code="  ", name="x", kind=OrgKind.COUNTY, parent=tree.city)


def test_update_renames_and_rejects_taken_code(tree):
    services.update_unit(tree.town_a, name="城关街道", code="360121001")
    db.session.commit()
    assert db.session.get(OrgUnit, tree.town_a.id).name == "城关街道"
    with pytest.raises(services.OrgError):
        services.update_unit(tree.town_a, name="x", code="360122")


def test_move_rewrites_the_whole_subtree(tree):
    extra = services.create_unit(code="V2", name="二村", kind=OrgKind.VILLAGE, parent=tree.town_a)
    db.session.commit()
    services.move_unit(tree.town_a, tree.county_b)
    db.session.commit()
    _assert_paths_consistent()
    town = db.session.get(OrgUnit, tree.town_a.id)
    assert town.parent_id == tree.county_b.id
    village = db.session.get(OrgUnit, tree.village_a.id)
    assert village.is_within(tree.county_b) and not village.is_within(tree.county_a)
    assert db.session.get(OrgUnit, extra.id).path.startswith(tree.county_b.path)
    assert services.subtree_count(tree.county_b) == 5  # county, two towns, two villages
    assert services.subtree_count(tree.county_a) == 1


def test_move_does_not_touch_siblings_with_a_common_path_prefix(tree):
    # ids 1 and 11 share the text prefix "/1" but not "/1/": the move must not touch others.
    for n in range(12):
        services.create_unit(code=f"T{n}", name=f"t{n}", kind=OrgKind.TOWNSHIP, parent=tree.county_a)
    db.session.commit()
    services.move_unit(tree.town_b, tree.county_a)
    db.session.commit()
    _assert_paths_consistent()


def test_cannot_move_under_itself_or_break_kind_rules(tree):
    with pytest.raises(services.OrgError, match="自身之下"):
        services.move_unit(tree.county_a, tree.village_a)
    with pytest.raises(services.OrgError, match="自身之下"):
        services.move_unit(tree.county_a, tree.county_a)
    with pytest.raises(services.OrgError):
        services.move_unit(tree.village_a, tree.county_b)  # a village under a county
    db.session.rollback()
    _assert_paths_consistent()


# admin pages ------------------------------------------------------------------


@pytest.fixture
def city_admin(tree):
    admin = UserFactory(username="city_admin", org_unit=tree.city)
    grant(admin, Role.ORG_ADMIN, tree.city)
    db.session.commit()
    return admin


def _count_units() -> int:
    return db.session.execute(select(func.count()).select_from(OrgUnit)).scalar_one()


def test_admin_browses_tree_with_breadcrumb(client, tree, city_admin):
    login(client, "city_admin")
    top = client.get("/admin/orgs")
    assert top.status_code == 200 and "江州市" in top.get_data(as_text=True)
    page = client.get(f"/admin/orgs?unit={tree.town_a.id}").get_data(as_text=True)
    assert "红星村" in page and "南岭县" in page  # child and breadcrumb
    assert client.get("/admin/orgs?unit=99999").status_code == 404


def test_admin_creates_edits_and_moves(client, tree, city_admin):
    login(client, "city_admin")
    r = client.post(
        f"/admin/orgs/{tree.county_a.id}/children", data={"code": "360121002", "name": "东乡", "kind": "township"}
    )
    assert r.status_code == 302
    new = services.by_code("360121002")
    assert new is not None and new.parent_id == tree.county_a.id
    r = client.post(f"/admin/orgs/{new.id}/edit", data={"code": "360121002", "name": "东乡镇", "kind": "township"})
    assert r.status_code == 302
    r = client.post(f"/admin/orgs/{new.id}/move", data={"parent_code": "360122"})
    assert r.status_code == 302
    db.session.expire_all()
    moved = services.by_code("360121002")
    assert moved.name == "东乡镇" and moved.parent_id == tree.county_b.id
    assert moved.path == f"{tree.county_b.path}{moved.id}/"


@pytest.mark.parametrize(
    "data",
    [
        {"code": "", "name": "x", "kind": "township"},  # missing code
        {"code": "N1", "name": "", "kind": "township"},  # missing name
        {"code": "N1", "name": "x", "kind": "castle"},  # not a kind
        {"code": "N1" * 40, "name": "x", "kind": "township"},  # too long
        {"code": "N1", "name": "x", "kind": "village"},  # kind rule: no village under a county
        {"code": "360122", "name": "x", "kind": "township"},  # code taken
    ],
)
def test_admin_create_bad_input_is_400_and_changes_nothing(client, tree, city_admin, data):
    login(client, "city_admin")
    before = _count_units()
    r = client.post(f"/admin/orgs/{tree.county_a.id}/children", data=data)
    assert r.status_code == 400
    assert 'class="flash flash-error"' in r.get_data(as_text=True)
    assert _count_units() == before


def test_admin_move_bad_input_is_400(client, tree, city_admin):
    login(client, "city_admin")
    for parent_code in ("nope", "360121001001", ""):  # unknown, below itself, empty
        r = client.post(f"/admin/orgs/{tree.county_a.id}/move", data={"parent_code": parent_code})
        assert r.status_code == 400, parent_code
    db.session.expire_all()
    assert db.session.get(OrgUnit, tree.county_a.id).parent_id == tree.city.id
    _assert_paths_consistent()


def test_county_admin_cannot_move_a_unit_out_of_scope(client, tree):
    admin = UserFactory(username="county_admin", org_unit=tree.county_a)
    grant(admin, Role.ORG_ADMIN, tree.county_a)
    db.session.commit()
    login(client, "county_admin")
    r = client.post(f"/admin/orgs/{tree.town_a.id}/move", data={"parent_code": "360122"})
    assert r.status_code == 403
    r = client.post(f"/admin/orgs/{tree.town_b.id}/edit", data={"code": "360122001", "name": "x", "kind": "township"})
    assert r.status_code == 403
    db.session.expire_all()
    assert db.session.get(OrgUnit, tree.town_a.id).parent_id == tree.county_a.id
    assert db.session.get(OrgUnit, tree.town_b.id).name == "石岗镇"


def test_top_of_the_tree_starts_from_each_grant(client, tree):
    mixed = UserFactory(username="mixed", org_unit=tree.county_a)
    grant(mixed, Role.AUDITOR, tree.county_a)
    grant(mixed, Role.ORG_ADMIN, tree.town_b)  # deeper, in the other county
    grant(mixed, Role.ORG_ADMIN, tree.village_a)  # nested in the county grant: not a start
    db.session.commit()
    login(client, "mixed")
    html = client.get("/admin/orgs").get_data(as_text=True)
    assert "南岭县" in html and "石岗镇" in html
    assert "红星村" not in html and "江州市" not in html and "青山县" not in html


def test_site_admin_starts_from_the_roots(client, tree):
    root = UserFactory(username="root", org_unit=tree.village_a)
    grant(root, Role.SITE_ADMIN, tree.village_a)
    db.session.commit()
    login(client, "root")
    html = client.get("/admin/orgs").get_data(as_text=True)
    assert "江州市" in html and "南岭县" not in html


def test_scopes_follow_a_moved_subtree(tree):
    from lms_core.authz import can

    auditor = UserFactory(username="town_auditor", org_unit=tree.town_a)
    grant(auditor, Role.AUDITOR, tree.town_a)
    db.session.commit()
    assert can(auditor, "user.view", tree.village_a)
    services.move_unit(tree.town_a, tree.county_b)
    db.session.commit()
    village = db.session.get(OrgUnit, tree.village_a.id)
    assert village.is_within(tree.county_b)
    assert can(auditor, "user.view", village)  # the grant moved with its unit
    assert not can(auditor, "user.view", tree.county_a)
