"""Integers from requests never reach the database unbounded (no 500 for huge pages or ids)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as hst

from lms_core.accounts.models import Role
from lms_core.bounded import MAX_INT32, MAX_PAGE, parse_int
from lms_core.courses.models import Course
from lms_core.extensions import db
from tests.conftest import login
from tests.factories import UserFactory, grant

HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("7", 7),
        (" 12 ", 12),
        ("0", 1),
        ("-3", 1),
        (HUGE, 1000),
        ("9" * 5000, 1000),
        ("-" + HUGE, 1),
        ("x", None),
        ("", None),
        ("1.5", None),
        ("²", None),
        ("١٢", None),
        (None, None),
        ("0000000000000000000000042", 42),
    ],
)
def test_parse_int_clamps_and_refuses_junk(raw, expected):
    assert parse_int(raw, minimum=1, maximum=1000) == expected


@given(hst.text(max_size=30))
def test_parse_int_never_raises_and_stays_in_range(raw):
    value = parse_int(raw, minimum=1, maximum=MAX_PAGE)
    assert value is None or 1 <= value <= MAX_PAGE


@pytest.fixture
def admin_client(client, tree):
    admin = UserFactory(username="site_admin", org_unit=tree.city)
    grant(admin, Role.SITE_ADMIN, tree.city)
    db.session.commit()
    login(client, "site_admin")
    return client


@pytest.mark.parametrize(
    "path",
    [
        f"/admin/users?page={HUGE}",
        f"/admin/users?page=-{HUGE}",
        f"/admin/users?page={'9' * 5000}",
        f"/audit/events?page={HUGE}",
        f"/courses/?page={HUGE}",
        f"/courses/?topic={HUGE}&page=2",
        f"/admin/orgs?unit={HUGE}",
    ],
)
def test_huge_page_and_id_parameters_are_not_500(admin_client, path):
    r = admin_client.get(path)
    assert r.status_code in (200, 404), r.status_code
    assert "Traceback" not in r.get_data(as_text=True)


def test_a_page_past_the_end_is_empty_but_keeps_the_total(admin_client, tree):
    page = admin_client.get(f"/admin/users?page={HUGE}").get_data(as_text=True)
    assert "site_admin" not in page  # the only user sits on page 1
    assert "site_admin" in admin_client.get("/admin/users?page=1").get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    [
        f"/admin/users/{HUGE}",
        f"/courses/{HUGE}",
        f"/courses/{MAX_INT32 + 1}",
        f"/admin/users/{'9' * 5000}",
        f"/learn/lessons/{HUGE}",
    ],
)
def test_huge_ids_in_urls_are_404(admin_client, path):
    assert admin_client.get(path).status_code == 404


def test_largest_32_bit_id_is_an_ordinary_unknown_id(admin_client):
    assert db.session.get(Course, MAX_INT32) is None
    assert admin_client.get(f"/courses/{MAX_INT32}").status_code == 404
