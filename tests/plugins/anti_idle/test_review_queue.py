"""The review queue: most suspicious first, filtered to a unit's subtree, linked to the day picture."""

from __future__ import annotations

import datetime as dt

import pytest

from lms_core.accounts.models import Role, User
from lms_core.extensions import db
from tests.conftest import login
from tests.factories import UserFactory, grant
from tests.lms_core.learning.fixtures import build_course
from tests.plugins.anti_idle.test_appeals import make_day

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle", "credit_bank"])


@pytest.fixture
def queue(app, tree):
    build_course(tree)
    a = UserFactory(username="audit_city", org_unit=tree.city, full_name="市审核员")
    grant(a, Role.AUDITOR, tree.city)
    village = UserFactory(username="v1", org_unit=tree.village_a, full_name="村干部")
    town = UserFactory(username="t1", org_unit=tree.town_b, full_name="镇干部")
    db.session.commit()
    low = make_day(village, "held", held_ms=60_000)
    high = make_day(town, "held", held_ms=120_000, day=dt.date(2026, 5, 11))
    high.review_score = 90
    db.session.commit()
    return low, high


def _order(page: str) -> list[str]:
    return [c.split('"', 1)[0] for c in page.split('id="review-')[1:] if c[0].isdigit()]


def test_highest_score_first_with_day_links(client, queue, tree):
    low, high = queue
    login(client, "audit_city")
    page = client.get("/anti-idle/review").get_data(as_text=True)
    assert _order(page)[:2] == [str(high.id), str(low.id)]
    assert f"/audit/users/{high.user_id}/days/2026-05-11" in page
    assert "/credit/reversals/?username=t1&amp;year=2026" in page


def test_filter_by_unit_subtree_and_kind(client, queue, tree):
    low, high = queue
    login(client, "audit_city")
    page = client.get(f"/anti-idle/review?org={tree.county_a.code}").get_data(as_text=True)
    assert _order(page) == [str(low.id)]
    assert _order(client.get("/anti-idle/review?kind=appeals").get_data(as_text=True)) == []
    bad = client.get("/anti-idle/review?org=NOPE%00")
    assert bad.status_code == 400 and "单位代码 NOPE" in bad.get_data(as_text=True)
    assert client.get("/anti-idle/review?kind=%00").status_code == 200
    for cursor in ("99999999999999", "1~2026-13-40~1", "%00", "1~2026-05-01~x"):
        bad = client.get(f"/anti-idle/review?after={cursor}")
        assert bad.status_code == 400 and "页面链接无效" in bad.get_data(as_text=True)
    r = client.post(
        f"/anti-idle/review/days/{low.id}?org={tree.county_a.code}",
        data={"decision": "void", "reason": "证据充分，作废"},
    )
    assert r.status_code == 303 and f"org={tree.county_a.code}" in r.location


def test_keyset_pages_in_score_order_cover_every_item_once(client, queue, tree, monkeypatch):
    from plugins.anti_idle import appeals

    low, high = queue
    people = [UserFactory(org_unit=tree.village_a) for _ in range(4)]
    db.session.commit()
    more = []
    for n, (person, score) in enumerate(zip(people, (90, 70, 60, 10), strict=True)):
        day = make_day(person, "held", held_ms=60_000, day=dt.date(2026, 5, 1 + n))
        day.review_score = score
        more.append(day)
    db.session.commit()
    # high (90, 05-11) and low (60, 05-10) tie with new days on score: the older day comes first
    expected = [more[0].id, high.id, more[1].id, more[2].id, low.id, more[3].id]
    monkeypatch.setattr(appeals, "PAGE", 4)
    login(client, "audit_city")
    first = client.get("/anti-idle/review").get_data(as_text=True)
    link = first.split('id="next-page" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    second = client.get(link).get_data(as_text=True)
    assert [int(i) for i in _order(first) + _order(second)] == expected
    assert 'id="next-page"' not in second and "第一页" in second


def test_each_person_in_the_queue_is_a_logged_look_and_their_days_link_to_the_picture(client, queue, tree):
    from sqlalchemy import select

    from lms_core.events.models import Event

    low, high = queue
    make_day(db.session.get(User, low.user_id), "held", held_ms=60_000, day=dt.date(2026, 5, 9))
    db.session.commit()
    login(client, "audit_city")
    client.get(f"/anti-idle/review?org={tree.county_a.code}")
    seen = db.session.execute(select(Event).where(Event.name == "record.viewed")).scalars().all()
    assert [(e.object_id, e.payload["what"], e.payload["detail"]) for e in seen] == [
        (str(low.user_id), "review", "2026-05-09、2026-05-10")  # one line per person, naming the days shown
    ]
    client.post("/logout")
    login(client, "v1")
    mine = client.get("/anti-idle/my").get_data(as_text=True)
    assert 'href="/record/days/2026-05-10"' in mine
    assert "市审核员" in client.get("/record").get_data(as_text=True)  # who looked


def test_held_days_and_appeals_merge_into_one_ordered_queue(app, client, queue, tree, monkeypatch):
    """Held days and appealed days come from two queries: each waiting day once, in order."""
    from plugins.anti_idle import appeals
    from plugins.anti_idle.models import Appeal

    low, high = queue
    people = [UserFactory(org_unit=tree.village_a) for _ in range(4)]
    db.session.commit()
    appealed = make_day(people[0], "deducted", deducted_ms=60_000, day=dt.date(2026, 5, 2))  # score 0
    both = make_day(people[1], "held", held_ms=60_000, day=dt.date(2026, 5, 3))  # held and appealed
    both.review_score = 70
    decided = make_day(people[2], "held", held_ms=60_000, day=dt.date(2026, 5, 4))
    decided.review_score, decided.review_state = 99, "voided"  # decided: no longer waiting
    closed = make_day(people[3], "deducted", deducted_ms=60_000, day=dt.date(2026, 5, 5))
    for day, status in ((appealed, "open"), (both, "open"), (closed, "rejected")):
        db.session.add(Appeal(user_id=day.user_id, day_verdict_id=day.id, reason="我确实在学习", status=status))
    db.session.commit()
    expected = [high.id, both.id, low.id, appealed.id]  # scores 90, 70, 60, 0
    auditor = db.session.execute(db.select(User).where(User.username == "audit_city")).scalar_one()
    monkeypatch.setattr(appeals, "PAGE", 1)
    seen, after = [], None
    while True:
        items, cursor = appeals.review_list(auditor, after=appeals.parse_cursor(after or ""))
        seen += [item.day.id for item in items]
        if cursor is None:
            break
        after = cursor
    assert seen == expected
    monkeypatch.setattr(appeals, "PAGE", 50)
    assert [i.day.id for i in appeals.review_list(auditor, kind="appeals")[0]] == [both.id, appealed.id]
    assert [i.day.id for i in appeals.review_list(auditor, kind="held")[0]] == [high.id, both.id, low.id]


def test_each_item_shows_its_own_evidence_lines_read_for_the_page_at_once(app, client, queue, tree):
    from sqlalchemy import event, select

    from plugins.anti_idle import appeals
    from plugins.anti_idle.models import Evidence

    low, high = queue
    extra = make_day(db.session.get(User, low.user_id), "held", held_ms=60_000, day=dt.date(2026, 5, 9))
    lines = {
        d.id: [e.id for e in db.session.execute(select(Evidence).filter_by(day_verdict_id=d.id)).scalars()]
        for d in (low, high, extra)
    }
    db.session.commit()
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        statements.append(statement)

    login(client, "audit_city")
    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        page = client.get("/anti-idle/review").get_data(as_text=True)
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    sections = {int(c.split('"', 1)[0]): c for c in page.split('id="review-')[1:] if c[0].isdigit()}
    assert set(sections) == {low.id, high.id, extra.id}
    for day_id, ids in lines.items():
        others = [i for d, more in lines.items() if d != day_id for i in more]
        assert all(f'id="evidence-{i}"' in sections[day_id] for i in ids)
        assert not any(f'id="evidence-{i}"' in sections[day_id] for i in others)
    assert f'<small class="muted">{tree.town_b.name}</small>' in sections[high.id]  # the person's unit
    # The evidence of every item in one statement, whatever the number of items.
    assert sum("anti_idle_evidence" in s for s in statements) == 1
    # At most the newest ``limit`` lines per day, newest first.
    first = db.session.get(Evidence, lines[extra.id][0])
    later = Evidence(
        **{c: getattr(first, c) for c in ("day_verdict_id", "user_id", "day", "rule", "action", "severity", "message")},
        span_start=first.span_start + dt.timedelta(hours=1),
        span_end=first.span_end + dt.timedelta(hours=1),
        amount_ms=60_000,
        threshold={},
        params={},
        beat_ids=[],
    )
    db.session.add(later)
    db.session.commit()
    assert [e.id for e in appeals.lines_by_day([extra.id, low.id])[extra.id]] == [later.id, first.id]
    capped = appeals.lines_by_day([extra.id, low.id], limit=1)
    assert {d: [e.id for e in v] for d, v in capped.items()} == {extra.id: [later.id], low.id: lines[low.id]}


def test_the_looks_of_a_page_are_logged_with_the_auditors_name_unit_and_roles(client, queue, tree):
    from sqlalchemy import select

    from lms_core.events.models import Event

    low, high = queue
    login(client, "audit_city")
    client.get("/anti-idle/review")
    auditor = db.session.execute(select(User).filter_by(username="audit_city")).scalar_one()
    seen = db.session.execute(select(Event).where(Event.name == "record.viewed").order_by(Event.object_id)).scalars()
    rows = sorted((e.object_id, e.actor_id, e.org_unit_id, e.payload["roles"], e.ip is not None) for e in seen)
    assert rows == sorted(
        (str(d.user_id), auditor.id, tree.city.id, sorted({str(a.role) for a in auditor.roles}), True)
        for d in (low, high)
    )


def test_an_item_shows_its_figures_evidence_appeal_and_decisions_in_chinese(client, queue, tree):
    """What review_page.cards prepares for each day, as the page prints it."""
    from plugins.anti_idle.models import Appeal

    low, high = queue
    person = db.session.get(User, low.user_id)
    appealed = make_day(person, "deducted", deducted_ms=28 * 60_000, day=dt.date(2026, 5, 2))
    db.session.add(Appeal(user_id=person.id, day_verdict_id=appealed.id, reason="我一直在看<b>", status="open"))
    db.session.commit()
    login(client, "audit_city")
    page = client.get("/anti-idle/review").get_data(as_text=True)
    sections = {
        int(c.split('"', 1)[0]): c.split("</section>", 1)[0] for c in page.split('id="review-')[1:] if c[0].isdigit()
    }
    held = sections[low.id]
    assert '<h2>村干部 <small class="muted">' + tree.village_a.name + "</small> · 2026-05-10 ·" in held
    assert '<span class="ai-verdict-held">待审核</span>' in held
    assert "审核分 60 · 上报 60.0 分钟，计入 59.0 分钟 · 暂缓 1.0 分钟</p>" in held
    # The evidence line in Beijing time (06:02 UTC), with its amount.
    assert "14:02–14:31 课程在后台或最小化窗口中播放，超出 60 秒容忍时间，扣减 28 分钟</li>" in held
    assert f'action="/anti-idle/review/days/{low.id}?kind=all&amp;org="' in held
    assert 'value="post">计入暂缓学时</button>' in held and 'value="uphold"' not in held
    assert "申诉" not in held.split("<form", 1)[0]
    deducted = sections[appealed.id]
    assert '<span class="">部分扣减</span>' in deducted and " · 暂缓" not in deducted
    assert "<strong>申诉</strong>（待审核）：我一直在看&lt;b&gt;</p>" in deducted  # the learner's words escaped
    assert 'value="uphold">支持申诉</button>' in deducted and 'value="post"' not in deducted


def test_url_patterns_build_what_url_for_builds(app):
    """The page's links are built once with marks, then filled per day: same URLs."""
    from flask import url_for

    from plugins.anti_idle.review_page import links, url_pattern

    with app.test_request_context("/anti-idle/review"):
        args = {"kind": "held", "org": "县 & 镇/1?"}
        decide = url_pattern("anti_idle.review_decide", ids=("day_verdict_id",), **args)
        day = url_pattern("audit.person_day", ids=("user_id",), day="day")
        for n, iso in ((1, "2026-05-10"), (987_654_321_987_000, "2026-12-31"), (10**17, "1999-01-01")):
            assert decide.format(day_verdict_id=n) == url_for("anti_idle.review_decide", day_verdict_id=n, **args)
            assert day.format(user_id=n, day=iso) == url_for("audit.person_day", user_id=n, day=iso)
        assert "{x}" not in url_pattern("anti_idle.review_decide", ids=("day_verdict_id",), org="{x}")  # encoded
        with pytest.raises(ValueError):  # a value that looks like the mark: refused, not mixed up
            url_pattern("anti_idle.review_decide", ids=("day_verdict_id",), org="987654321987000")
        odd = links("anti_idle.review_decide", ids=("day_verdict_id",), org="987654321987000")
        assert odd(day_verdict_id=5) == url_for("anti_idle.review_decide", day_verdict_id=5, org="987654321987000")
