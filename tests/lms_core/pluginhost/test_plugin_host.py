"""The plugin host: every hookspec is honoured, discovery and start-up failures."""

from __future__ import annotations

import importlib.metadata
import inspect
import uuid

import click
import pluggy
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy import inspect as sa_inspect

from lms_core.accounts.models import Role
from lms_core.authz import can
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.jobs.services import commit, enqueue
from lms_core.pluginhost import hookimpl, hookspecs
from lms_core.pluginhost.manager import PluginLoadError
from lms_core.settings import services as settings
from tests.conftest import login
from tests.factories import UserFactory, grant
from tests.lms_core.apps import build_app, running_app
from tests.plugins.hookprobe import CAPABILITY, HERE, HookProbe

SPEC_NAMES = sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("lms_"))


@pytest.fixture
def probe() -> HookProbe:
    return HookProbe()


@pytest.fixture
def app_settings(probe):
    return {"LMS_PLUGIN_OBJECTS": {"hookprobe": probe}}


@pytest.fixture
def person(tree):
    user = UserFactory(username="probe_user", full_name="探针", org_unit=tree.town_a)
    db.session.commit()
    return user


def test_hookprobe_implements_every_hookspec(app):
    pm = app.extensions["lms_plugins"]
    assert len(SPEC_NAMES) >= 13
    for name in SPEC_NAMES:
        impls = [impl.plugin_name for impl in getattr(pm.hook, name).get_hookimpls()]
        assert "hookprobe" in impls, name


def test_blueprint_template_static_and_translation(app, client, person):
    login(client, "probe_user")
    page = client.get("/hookprobe/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="hookprobe-page"' in html  # the plugin's own template
    assert "探针问候" in html  # the plugin's own catalogue, Chinese by default
    assert "[probe:hello]" in html  # a filter added in lms_app_created, a setting default
    assert '<div id="hookprobe-body-end">hookprobe slot</div>' in html  # template slot, unescaped
    with client.get("/hookprobe/static/hookprobe.css") as css:
        assert css.status_code == 200 and b"#hookprobe-page" in css.data
    client.get("/lang/en")
    assert "Probe greeting" in client.get("/hookprobe/").get_data(as_text=True)


def test_event_labels_come_from_the_plugin(app):
    from lms_core.events.names import event_label, known_events, object_label

    with app.test_request_context():
        assert event_label("hookprobe.pinged") == "探针事件"
        assert "hookprobe.pinged" in known_events()
        assert object_label("hookprobe_things", "7") == "探针对象 #7"
        assert event_label("course.enrolled") == "选课"
        assert event_label("nobody.emits_this") == "其他事件"


def test_blueprint_view_requires_login(client):
    r = client.get("/hookprobe/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_cli_group_runs_under_flask_lms(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["lms", "hookprobe", "ping", "--name", "江州"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "hello 江州"
    settings.set_value("hookprobe", "greeting", "你好")
    db.session.commit()
    result = runner.invoke(args=["lms", "hookprobe", "ping"])
    assert result.output.strip() == "你好 world"


def test_declared_settings_and_defaults(app):
    assert app.extensions["lms_settings"] == {"hookprobe.greeting": "hello", "hookprobe.limit": 3}
    assert settings.get("hookprobe", "limit") == 3


def test_plugin_capability_follows_roles_and_scope(app, tree, person):
    teacher = UserFactory(org_unit=tree.county_a)
    grant(teacher, Role.INSTRUCTOR, tree.county_a)
    db.session.commit()
    assert CAPABILITY in app.extensions["lms_capabilities"]
    assert can(teacher, CAPABILITY, tree.village_a)
    assert not can(teacher, CAPABILITY, tree.town_b)  # other county
    assert not can(person, CAPABILITY, tree.town_a)  # learners do not hold it


def test_dashboard_panel_and_slot(app, client, person):
    login(client, "probe_user")
    html = client.get("/dashboard").get_data(as_text=True)
    assert 'id="panel-hookprobe"' in html and "probe for probe_user" in html
    assert "hookprobe-body-end" in html


def test_credit_summary_replaces_the_dashboard_year_figure(app, client, person, probe):
    from lms_core.pluginhost import CreditSummary

    login(client, "probe_user")
    html = client.get("/dashboard").get_data(as_text=True)
    assert "hours (credited viewing and reading)" in html or "按有效观看和阅读计入" in html
    probe.credit_summary = CreditSummary(posted_centi=250, pending_centi=125, overflow_centi=5, required_centi=9000)
    html = client.get("/dashboard").get_data(as_text=True)
    assert '<span id="year-hours">2.50</span> / 90' in html
    assert 'id="year-pending">1.25<' in html and 'id="year-overflow">0.05<' in html


def test_report_charts_reach_the_dashboard_in_order(app, client, person, probe):
    from lms_core.accounts.models import Role
    from lms_core.extensions import db
    from lms_core.reports.charts import Chart, Series
    from tests.factories import grant

    grant(person, Role.ORG_ADMIN, person.org_unit)
    db.session.commit()
    probe.charts = [
        Chart("probe", "探针图表", "bar", "单位", ["甲"], [Series("数值", [7.5])], "学时", "探针说明", order=1)
    ]
    login(client, "probe_user")
    html = client.get("/reports/dashboard?year=2026").get_data(as_text=True)
    assert 'id="chart-probe-data"' in html and "探针说明" in html
    assert html.index('id="chart-probe"') < html.index('id="chart-completion"')  # order=1 comes first
    scope = probe.chart_scopes[-1]
    assert scope.year == 2026 and scope.viewer.username == "probe_user"


def test_player_overlay_slot_sits_inside_the_player(app, client, tree, person):
    from lms_core.learning.models import LearningSession
    from tests.lms_core.learning.fixtures import build_course

    kit = build_course(tree)
    login(client, "probe_user")
    client.post(f"/courses/{kit.course.id}/enrol")
    for lesson in (kit.video, kit.document):
        html = client.get(f"/learn/lessons/{lesson.id}").get_data(as_text=True)
        session = db.session.query(LearningSession).filter_by(lesson_id=lesson.id).one()
        wrap = html.index('class="video-wrap"' if lesson is kit.video else 'class="doc-wrap"')
        slot = html.index(f'<div id="hookprobe-overlay" data-session="{session.id}">')
        assert wrap < slot < html.index("</div>", slot + 40)  # inside the player's positioned box


def test_has_capability_override(app, probe, tree, person):
    assert not can(person, "user.view", tree.town_a)
    probe.verdicts[("probe_user", "user.view")] = True
    assert can(person, "user.view", tree.town_b)  # the plugin grants, even outside the scope
    admin = UserFactory(username="probe_admin", org_unit=tree.city)
    grant(admin, Role.SITE_ADMIN, tree.city)
    db.session.commit()
    assert can(admin, "org.manage", tree.county_a)
    probe.verdicts[("probe_admin", "org.manage")] = False
    assert not can(admin, "org.manage", tree.county_a)  # and denies even a site admin


def test_handle_event_receives_committed_events(app, probe, tree):
    event = emit("probe.tested", payload={"n": 1})
    commit()
    assert probe.events == [event.id]


def test_job_handler_runs(app, probe):
    enqueue("hookprobe.echo", {"text": "你好"})
    commit()
    assert probe.jobs == [{"text": "你好"}]


def test_app_created_runs_last(app, probe):
    assert probe.created_app is app
    # every other hook had been applied when it ran
    assert "hookprobe" in app.blueprints and "hookprobe" in app.cli.commands["lms"].commands


def test_migration_branch_upgrades_and_downgrades(db_backend, request, tmp_path):
    """``flask db upgrade heads`` on an empty database applies core *and* the plugin branch."""
    if db_backend == "postgresql":
        url = request.getfixturevalue("pg_cluster").create_database(f"probe_{uuid.uuid4().hex[:8]}")
    else:
        url = f"sqlite:///{tmp_path / 'probe.sqlite3'}"
    app = build_app(url, tmp_path, LMS_PLUGIN_OBJECTS={"hookprobe": HookProbe()})
    assert str(HERE / "migrations" / "versions") in app.extensions["lms_migration_dirs"]
    runner = app.test_cli_runner()
    engine = create_engine(url)
    try:
        result = runner.invoke(args=["db", "upgrade", "heads"])
        assert result.exit_code == 0, result.output
        tables = set(sa_inspect(engine).get_table_names())
        assert {"hookprobe_notes", "users", "event_log"} <= tables
        with engine.connect() as conn:
            heads = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        assert "0001hookprobe" in heads and len(heads) >= 2
        result = runner.invoke(args=["db", "downgrade", "hookprobe@base"])
        assert result.exit_code == 0, result.output
        tables = set(sa_inspect(engine).get_table_names())
        assert "hookprobe_notes" not in tables and "users" in tables  # core untouched
    finally:
        engine.dispose()
        with app.app_context():
            db.engine.dispose()


# discovery and start-up failures ------------------------------------------------


def test_entry_point_discovery_loads_demo_panel(database_url, tmp_path):
    assert "demo_panel" in {ep.name for ep in importlib.metadata.entry_points(group="lms.plugins")}
    with running_app(
        database_url, tmp_path, LMS_PLUGINS=["demo_panel"], LMS_PLUGIN_OBJECTS={"hookprobe": HookProbe()}
    ) as app:
        pm = app.extensions["lms_plugins"]
        assert pm.get_plugin("demo_panel") is not None
        from tests.factories import build_tree

        tree = build_tree()
        UserFactory(username="ep_user", org_unit=tree.town_a)
        db.session.commit()
        client = app.test_client()
        login(client, "ep_user")
        html = client.get("/dashboard").get_data(as_text=True)
        assert 'id="panel-demo_panel"' in html and "360121001" in html
        # panels are sorted by order: hookprobe (1) before demo_panel (900)
        assert html.index('id="panel-hookprobe"') < html.index('id="panel-demo_panel"')


def test_plugins_not_listed_are_not_loaded(app):
    assert app.extensions["lms_plugins"].get_plugin("demo_panel") is None


def _config(tmp_path, **extra):
    return {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite3'}", **extra}


def test_missing_plugin_fails_start_up(tmp_path):
    with pytest.raises(PluginLoadError, match="no_such_plugin"):
        build_app(_config(tmp_path)["SQLALCHEMY_DATABASE_URI"], tmp_path, LMS_PLUGINS=["no_such_plugin"])


def test_plugin_that_fails_to_import_fails_start_up(tmp_path, monkeypatch):
    from lms_core.pluginhost import manager

    broken = importlib.metadata.EntryPoint(name="broken", value="no_such_module_xyz:plugin", group="lms.plugins")
    monkeypatch.setattr(manager, "_entry_points", lambda: {"broken": broken})
    with pytest.raises(PluginLoadError, match="failed to load"):
        build_app(_config(tmp_path)["SQLALCHEMY_DATABASE_URI"], tmp_path, LMS_PLUGINS=["broken"])


class _Typo:
    @hookimpl
    def lms_handle_evnt(self, event):  # a misspelt hook must not be silently ignored
        pass


class _CoreCapability:
    @hookimpl
    def lms_capabilities(self):
        return {"user.view": {"learner"}}


class _CliClash:
    @hookimpl
    def lms_cli_commands(self):
        return [click.Command("users")]


@pytest.mark.parametrize(
    ("plugin", "error"),
    [
        (_Typo(), pluggy.PluginValidationError),
        (_CoreCapability(), RuntimeError),
        (_CliClash(), RuntimeError),
    ],
)
def test_invalid_plugins_fail_start_up(tmp_path, plugin, error):
    with pytest.raises(error):
        build_app(_config(tmp_path)["SQLALCHEMY_DATABASE_URI"], tmp_path, LMS_PLUGIN_OBJECTS={"bad": plugin})


def test_each_app_has_its_own_plugin_manager(tmp_path):
    url = _config(tmp_path)["SQLALCHEMY_DATABASE_URI"]
    with_probe = build_app(url, tmp_path, LMS_PLUGIN_OBJECTS={"hookprobe": HookProbe()})
    without = build_app(url, tmp_path)
    assert with_probe.extensions["lms_plugins"] is not without.extensions["lms_plugins"]
    assert "hookprobe" not in without.blueprints
    assert "hookprobe" not in without.cli.commands["lms"].commands
