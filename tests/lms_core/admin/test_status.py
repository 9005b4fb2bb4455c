"""The system status page: plugins, jobs and failures, the xAPI backlog, migrations, the database."""

from __future__ import annotations

import datetime as dt

import pytest

from lms_core.accounts.models import Role
from lms_core.extensions import db
from lms_core.jobs.models import Job, JobStatus
from tests.conftest import login
from tests.factories import UserFactory, grant


@pytest.fixture
def site_admin(tree):
    user = UserFactory(username="root", org_unit=tree.city)
    grant(user, Role.SITE_ADMIN, tree.city)
    county = UserFactory(username="county_admin", org_unit=tree.county_a)
    grant(county, Role.ORG_ADMIN, tree.county_a)
    db.session.commit()
    return user


def _section(html: str, name: str) -> str:
    return html.split(f'id="status-{name}"', 1)[1].split("</section>", 1)[0]


@pytest.mark.app_config(LMS_PLUGINS=["demo_panel"])
def test_status_shows_plugins_jobs_backlog_migrations_and_database(app, client, site_admin, db_backend):
    now = dt.datetime.now(dt.UTC)
    db.session.add_all(
        [
            Job(
                kind="accounts.import",
                payload={},
                status=JobStatus.FAILED,
                attempts=5,
                finished_at=now,
                last_error="Traceback (most recent call last):\nValueError: 第 3 行无法解析",
            ),
            Job(kind="events.dispatch", payload={}, status=JobStatus.QUEUED, run_after=now - dt.timedelta(hours=1)),
            Job(kind="events.dispatch", payload={}, status=JobStatus.DONE),
        ]
    )
    db.session.commit()
    login(client, "root")
    r = client.get("/admin/status")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "系统状态" in html
    database = _section(html, "database")
    assert ("PostgreSQL" if db_backend == "postgresql" else "SQLite") in database
    plugins = _section(html, "plugins")
    assert "demo_panel" in plugins and "0.1.0" in plugins
    jobs = _section(html, "jobs")
    assert "失败 <strong>1</strong>" in jobs and "等待中" not in jobs
    assert 'id="stale-jobs"' in jobs and "1 个任务已等待超过 10 分钟" in jobs
    assert "accounts.import" in jobs and "ValueError: 第 3 行无法解析" in jobs and "Traceback" not in jobs
    assert "等待中 <strong>0</strong>" in _section(html, "xapi")
    migrations = _section(html, "migrations")
    assert "核心" in migrations and "已是最新" in migrations and "flask db upgrade heads" not in migrations


def test_status_is_for_site_admins_only(app, client, site_admin):
    login(client, "county_admin")
    assert client.get("/admin/status").status_code == 403
    assert "/admin/status" not in client.get("/admin/orgs").get_data(as_text=True)


def test_status_names_a_branch_that_is_behind(app, client, site_admin, monkeypatch):
    from lms_core.admin import status

    real = status.migrations

    def behind():
        lines = real()
        lines[0].current = "0001core"
        return lines

    monkeypatch.setattr(status, "migrations", behind)
    login(client, "root")
    migrations = _section(client.get("/admin/status").get_data(as_text=True), "migrations")
    assert "0001core" in migrations and "请运行“flask db upgrade heads”" in migrations
