"""Fixtures for the credit bank: every test here runs with the ``credit_bank`` plugin enabled."""

from __future__ import annotations

import pytest
from flask import Flask

from lms_core.accounts.models import Role
from lms_core.extensions import db
from tests.factories import UserFactory, grant


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/plugins/credit_bank/" in str(item.fspath) and not item.get_closest_marker("app_config"):
            item.add_marker(pytest.mark.app_config(LMS_PLUGINS=["credit_bank"]))


@pytest.fixture
def site(app: Flask, tree):  # type: ignore[no-untyped-def]
    """The site admin "site", who edits the policy pages, and "admin_a", a county admin who may not."""
    site = UserFactory(org_unit=tree.city, username="site")
    grant(site, Role.SITE_ADMIN, tree.city)
    admin = UserFactory(org_unit=tree.county_a, username="admin_a")
    grant(admin, Role.ORG_ADMIN, tree.county_a)
    db.session.commit()
    return site
