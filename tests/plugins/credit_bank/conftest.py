"""Fixtures for the credit bank: every test here runs with the ``credit_bank`` plugin enabled."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/plugins/credit_bank/" in str(item.fspath) and not item.get_closest_marker("app_config"):
            item.add_marker(pytest.mark.app_config(LMS_PLUGINS=["credit_bank"]))
