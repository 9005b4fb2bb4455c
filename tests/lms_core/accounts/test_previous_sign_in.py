"""上次登录 on the dashboard is the sign-in before the current one."""

from __future__ import annotations

import datetime as dt

import time_machine

from lms_core.accounts.models import User
from lms_core.extensions import db
from tests.conftest import login
from tests.factories import UserFactory


def test_dashboard_shows_the_previous_sign_in_not_the_current_one(app, tree):
    user = UserFactory(username="liming", full_name="李明", org_unit=tree.village_a)
    db.session.commit()
    first = dt.datetime(2026, 3, 1, 1, 5, tzinfo=dt.UTC)  # 09:05 in Shanghai
    second = dt.datetime(2026, 3, 2, 6, 30, tzinfo=dt.UTC)  # 14:30 in Shanghai

    with time_machine.travel(first, tick=False):
        client = app.test_client()
        assert login(client, "liming").status_code == 302
        html = client.get("/dashboard").get_data(as_text=True)
        assert 'id="previous-sign-in"' not in html  # the first sign-in has no "last time"

    with time_machine.travel(second, tick=False):
        client = app.test_client()
        assert login(client, "liming").status_code == 302
        html = client.get("/dashboard").get_data(as_text=True)
    assert 'id="previous-sign-in"' in html
    line = html.split('id="previous-sign-in">', 1)[1].split("</p>", 1)[0]
    assert "上次登录" in line
    assert "09:05" in line and "3月1日" in line
    assert "14:30" not in line

    db.session.expire_all()
    stored = db.session.get(User, user.id)
    assert stored is not None
    assert (stored.previous_login_at, stored.last_login_at) == (first, second)
