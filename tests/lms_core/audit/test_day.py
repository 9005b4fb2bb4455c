"""A learner's day as a picture: the core's lanes, the anti-idle and credit layers, scope and view logging."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from lms_core.accounts.models import Role
from lms_core.events.models import Event
from lms_core.extensions import db
from tests.conftest import login
from tests.factories import UserFactory, grant
from tests.lms_core.learning.fixtures import build_course
from tests.plugins.anti_idle.harness import T0, S, make_learner

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle", "credit_bank"])
M = 60 * S
URL = "/audit/users/{id}/days/2026-05-10"


@pytest.fixture
def kit(app, tree):
    return build_course(tree)


@pytest.fixture
def me(kit, tree):
    learner = make_learner(tree, kit, name="李明")
    learner.user.username = "liming"
    a = UserFactory(username="audit_a", org_unit=tree.county_a, full_name="南岭审核员")
    grant(a, Role.AUDITOR, tree.county_a)
    b = UserFactory(username="audit_b", org_unit=tree.county_b, full_name="青山审核员")
    grant(b, Role.AUDITOR, tree.county_b)
    db.session.commit()
    tab = learner.open(deliver=3_600_000)
    at = learner.play(tab, T0, 300)  # 09:00-09:05 watched
    learner.beat(tab, at + 5 * S, [[300, 305]], event="pause")
    at = learner.play(tab, at + 2 * M, 120, from_pos=305, event_first="play")  # paused 2 min
    at = learner.play(tab, at, 240, client={"visibility": "hidden"})  # hidden 4 min
    at = learner.play(tab, at, 60)
    check = learner.issue_check(tab, at - 30 * S)
    learner.answer(check, at - 20 * S)
    return learner


def _lanes(page: str) -> str:
    return page.split('id="day-lanes"', 1)[1].split("</figure>", 1)[0]


def test_auditor_sees_the_day_with_every_layer(client, me):
    login(client, "audit_a")
    r = client.get(URL.format(id=me.user.id))
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    lanes = _lanes(page)
    assert "会话 1 · 专题讲座" in lanes
    for kind in ("k-session", "k-credited", "k-paused", "k-hidden", "k-check-passed"):
        assert kind in lanes, kind
    assert "<script" not in lanes
    table = page.split('id="day-table"', 1)[1].split("</table>", 1)[0]
    assert "09:00:00" in table and "页面隐藏" in table and "已暂停" in table
    assert 'id="day-evidence"' in page and 'id="day-ledger"' in page
    assert "防挂机判定" in page


def test_the_header_names_the_person_and_unit_with_the_username_secondary(client, me, tree):
    """As the review queue names a person: the name and unit in the title, the username
    only in the small line below it (and not at all on the learner's own page)."""
    login(client, "audit_a")
    page = client.get(URL.format(id=me.user.id)).get_data(as_text=True)
    title = page.split("<h1>", 1)[1].split("</h1>", 1)[0]
    assert "李明" in title and tree.village_a.name in title and "liming" not in title
    below = page.split("</h1>", 1)[1].split("</p>", 1)[0]
    assert "用户名：liming" in below
    client.post("/logout")
    login(client, "liming")
    own = client.get("/record/days/2026-05-10").get_data(as_text=True)
    assert tree.village_a.name in own.split("<h1>", 1)[1].split("</h1>", 1)[0]
    assert "用户名：" not in own


def test_each_row_names_its_kind_once(client, me):
    """The table's "what" is the kind's name, then only what the kind does not say: it
    read "课程页面打开：课程页面打开（专题讲座…）", "页面隐藏：页面处于隐藏状态"."""
    import re

    login(client, "audit_a")
    page = client.get(URL.format(id=me.user.id)).get_data(as_text=True)
    table = page.split('id="day-table"', 1)[1].split("</table>", 1)[0]
    cells = dict(re.findall(r'<tr class="row-([\w-]+)">(?:<td[^>]*>[^<]*</td>){3}<td>([^<]*)</td>', table))
    assert {"session", "credited", "paused", "hidden", "check-passed"} <= set(cells)
    assert cells["session"] == "课程页面打开"
    assert cells["paused"] == "已暂停" and cells["hidden"] == "页面隐藏"
    assert re.fullmatch(r"已观看，已计入：上报 \d+ 秒，计入 \d+ 秒", cells["credited"]), cells["credited"]
    for what in cells.values():
        name, _sep, rest = what.partition("：")
        assert name not in rest, what
    # The bars' tooltips say the same as the rows.
    assert "<title>课程页面打开</title>" in _lanes(page)
    assert "<title>课程页面打开（" not in page


def test_day_picture_is_scoped_and_logged(client, me):
    login(client, "audit_b")
    assert client.get(URL.format(id=me.user.id)).status_code == 403
    assert db.session.query(Event).filter_by(name="record.viewed").count() == 0
    client.post("/logout")
    login(client, "audit_a")
    assert client.get(URL.format(id=me.user.id)).status_code == 200
    logged = db.session.query(Event).filter_by(name="record.viewed").one()
    assert logged.object_id == str(me.user.id) and logged.payload["what"] == "day"
    assert logged.payload["detail"] == "2026-05-10" and logged.payload["roles"] == ["auditor"]
    client.post("/logout")
    login(client, "liming")
    record = client.get("/record").get_data(as_text=True)
    views = record.split('id="record-views"', 1)[1]
    assert "南岭审核员" in views and "审核员" in views and "某一天的学习（时间线）" in views
    assert "青山审核员" not in views


def test_learner_sees_their_own_day_unlogged(client, me):
    login(client, "liming")
    r = client.get("/record/days/2026-05-10")
    assert r.status_code == 200 and "k-credited" in r.get_data(as_text=True)
    assert "/record/days/2026-05-10" in client.get("/record?year=2026").get_data(as_text=True)
    assert db.session.query(Event).filter_by(name="record.viewed").count() == 0
    assert client.get(URL.format(id=me.user.id)).status_code == 403


@pytest.mark.parametrize("day", ["2026-13-01", "x" * 4000, "2026-05-10%00", "1999-12-31", "2999-01-01", "١٠٢٦-05-10"])
def test_bad_days_are_404(client, me, day):
    login(client, "audit_a")
    assert client.get(f"/audit/users/{me.user.id}/days/{day}").status_code == 404
    login(client, "liming")
    assert client.get(f"/record/days/{day}").status_code == 404


def test_an_empty_day_says_so(client, me):
    login(client, "audit_a")
    page = client.get(f"/audit/users/{me.user.id}/days/2026-05-11").get_data(as_text=True)
    assert "这一天没有学习记录" in page


def test_parallel_streams_show_as_lanes_a_fact_and_their_evidence(client, kit, tree, monkeypatch):
    """Two lessons playing at once: one lane each, the count among the facts, the R04 line beside."""
    from plugins.anti_idle import policy

    monkeypatch.setitem(policy.DEFAULTS, "checks_follow_claims", 0)  # no attention check in this day
    me = make_learner(tree, kit, name="张伟")
    auditor = UserFactory(username="audit_a", org_unit=tree.county_a, full_name="南岭审核员")
    grant(auditor, Role.AUDITOR, tree.county_a)
    db.session.commit()
    tabs = [me.open(deliver=3_600_000), me.open(me.short, deliver=1000)]
    for i in range(1, 61):  # 10 minutes of two lessons at once, from 09:00 Beijing
        me.beat(tabs[0], T0 + 10 * i * S, [[10 * (i - 1), 10 * i]])
        me.beat(
            tabs[1],
            T0 + 10 * i * S + dt.timedelta(milliseconds=300),
            [[(10 * (i - 1)) % 100, (10 * (i - 1)) % 100 + 10]],
            event="seeked",
        )
    login(client, "audit_a")
    page = client.get(URL.format(id=me.user.id)).get_data(as_text=True)
    lanes = _lanes(page)
    assert "会话 1 · " in lanes and "会话 2 · " in lanes
    assert "同时播放的数量：2" in page.split('class="day-facts', 1)[1].split("</ul>", 1)[0]
    evidence = page.split('id="day-evidence"', 1)[1].split("</table>", 1)[0]
    assert "同时播放 2 个课程" in evidence


def test_a_time_on_another_day_shows_its_date(client, kit, tree, monkeypatch):
    """A check left open at 09:05 and answered the next morning: its times name that day,
    and the table's columns are times (开始/结束), not dates."""
    from lms_core.audit.day import hhmm
    from plugins.anti_idle import policy

    monkeypatch.setitem(policy.DEFAULTS, "checks_follow_claims", 0)  # only the check below
    me = make_learner(tree, kit, name="张伟")
    auditor = UserFactory(username="audit_a", org_unit=tree.county_a, full_name="南岭审核员")
    grant(auditor, Role.AUDITOR, tree.county_a)
    db.session.commit()
    tab = me.open(deliver=3_600_000)
    at = me.play(tab, T0, 300)
    check = me.issue_check(tab, at, window=15)
    me.answer(check, at + dt.timedelta(days=1, seconds=41))
    login(client, "audit_a")
    page = client.get(URL.format(id=me.user.id)).get_data(as_text=True)
    table = page.split('id="day-table"', 1)[1].split("</table>", 1)[0]
    assert "<th>开始</th><th>结束</th>" in table and "日期" not in table
    assert "<td>09:05:15</td><td>2026-05-11 09:05:41</td>" in table  # no credit till it was answered
    # right, but a day after its 15 s window: not a passed check
    assert "注意力检查未通过或未作答：09:05:00 弹出，2026-05-11 09:05:41 作答（回答正确，但已超过作答时限）" in table
    assert "注意力检查已通过" not in table
    day = dt.date(2026, 5, 10)
    assert hhmm(T0, day) == hhmm(T0) == "09:00:00"
    assert hhmm(T0 - dt.timedelta(hours=10), day) == "2026-05-09 23:00:00"


@pytest.mark.parametrize("answered", [True, False])
def test_a_check_of_the_previous_evening_is_drawn_from_midnight(client, kit, tree, monkeypatch, answered):
    """A check shown at 23:50 and owed past midnight cost the next day credit (R07): the next
    day's picture draws its mark and its no-credit span clipped at 00:00, the table keeps
    their true times (with the date); a check answered in time that evening is not drawn."""
    from plugins.anti_idle import policy
    from plugins.anti_idle.models import Evidence

    monkeypatch.setitem(policy.DEFAULTS, "checks_follow_claims", 0)  # only the checks below
    me = make_learner(tree, kit, name="张伟")
    auditor = UserFactory(username="audit_a", org_unit=tree.county_a, full_name="南岭审核员")
    grant(auditor, Role.AUDITOR, tree.county_a)
    db.session.commit()
    evening = dt.datetime(2026, 5, 10, 15, 40, tzinfo=dt.UTC)  # 23:40 Beijing
    tab = me.open(at=evening, deliver=3_600_000)
    at = me.play(tab, evening, 600)  # to 23:50
    me.answer(me.issue_check(tab, at - 5 * M, window=60), at - 5 * M + 5 * S)  # 23:45, answered in time
    check = me.issue_check(tab, at, window=60)  # due 23:51
    at = me.play(tab, at, 900)  # to 00:05, nothing credited after 23:51
    if answered:
        me.answer(check, at + 5 * S)
    me.play(tab, at + 5 * S, 120)
    verdict = me.verdict(dt.date(2026, 5, 11))
    assert db.session.query(Evidence).filter_by(day_verdict_id=verdict.id, rule="R07").count()
    login(client, "audit_a")
    page = client.get(f"/audit/users/{me.user.id}/days/2026-05-11").get_data(as_text=True)
    lanes = _lanes(page)
    table = page.split('id="day-table"', 1)[1].split("</table>", 1)[0]
    if answered:
        # right, but 14 minutes after its window: drawn as missed, and it says so
        mark, stop = (
            "注意力检查未通过或未作答：2026-05-10 23:50:00 弹出，00:05:05 作答（回答正确，但已超过作答时限）",
            "00:05:05",
        )
    else:
        mark, stop = "注意力检查未通过或未作答：2026-05-10 23:50:00 弹出，未作答（超时）", "00:51:00"
    kind = "check-failed"
    assert f'<rect class="k-{kind}" x="0.0" width="6.0" y="3" height="14"><title>{mark}</title>' in lanes
    no_credit = "<title>注意力检查未通过或未作答：检查未作答期间不计学时</title>"
    assert re.search(r'<rect class="k-check-failed" x="0.0" width="[1-9][\d.]*" y="3" height="14">' + no_credit, lanes)
    assert f'<tr class="row-{kind}"><td>2026-05-10 23:50:00</td><td></td>' in table
    assert f'<tr class="row-check-failed"><td>2026-05-10 23:51:00</td><td>{stop}</td>' in table
    assert "23:45:00 弹出" not in page  # answered in time, the evening before: not this day's
