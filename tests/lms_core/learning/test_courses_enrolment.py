"""Authoring rules, the catalogue query, self-enrolment and assigned training."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from lms_core.accounts.models import RankBand, Role
from lms_core.authz import AccessDenied
from lms_core.courses import services as courses
from lms_core.courses.models import LessonKind
from lms_core.enrolments import services as enrolments
from lms_core.enrolments.models import Enrolment, EnrolmentSource
from lms_core.events.models import Event
from lms_core.extensions import db
from lms_core.jobs.services import commit
from tests.factories import UserFactory, grant
from tests.lms_core.learning.fixtures import build_course, media_row

NOW = dt.datetime(2026, 4, 1, 2, 0, tzinfo=dt.UTC)


def test_learner_cannot_author(tree, app):
    learner = UserFactory(org_unit=tree.village_a)
    with pytest.raises(AccessDenied):
        courses.create_course(learner, code="X1", title="t")


def test_publish_requires_lessons_with_files(tree, app):
    author = UserFactory(org_unit=tree.city)
    grant(author, Role.INSTRUCTOR, tree.city)
    course = courses.create_course(author, code="X2", title="空课程")
    with pytest.raises(courses.CourseError, match="课程还没有课时"):
        courses.set_published(author, course, True)
    section = courses.add_section(author, course, "一")
    courses.add_lesson(author, section, title="测验", kind=LessonKind.QUIZ)
    with pytest.raises(courses.CourseError, match="还没有题目"):
        courses.set_published(author, course, True)


def test_lesson_kind_must_match_media(tree, app):
    author = UserFactory(org_unit=tree.city)
    grant(author, Role.INSTRUCTOR, tree.city)
    course = courses.create_course(author, code="X3", title="t")
    section = courses.add_section(author, course, "一")
    pdf = media_row(kind=__import__("lms_core.media.models", fromlist=["MediaKind"]).MediaKind.DOCUMENT, sha="f")
    with pytest.raises(courses.CourseError):
        courses.add_lesson(author, section, title="v", kind=LessonKind.VIDEO, media=pdf)


def test_other_instructor_cannot_edit(kit, tree):
    stranger = UserFactory(org_unit=tree.county_b)
    grant(stranger, Role.INSTRUCTOR, tree.county_b)
    assert not courses.can_edit(stranger, kit.course)
    with pytest.raises(AccessDenied):
        courses.update_course(stranger, kit.course, title="改")


def test_catalogue_filters(kit, tree):
    q = courses.CatalogueQuery(text="新时代")
    assert [c.id for c in q.run()[0]] == [kit.course.id]
    assert courses.CatalogueQuery(text="不存在").run() == ([], 0)
    assert courses.CatalogueQuery(required=False).run()[1] == 0
    assert courses.CatalogueQuery(instructor="党校").run()[1] == 1
    topic_id = kit.course.topic_id
    assert courses.CatalogueQuery(topic_id=topic_id).run()[1] == 1
    assert courses.CatalogueQuery(page=5).run() == ([], 1)  # past the last page: the total still comes back


def test_catalogue_search_folds_width_and_case_and_keeps_wildcards_literal(kit, tree):
    course = kit.course
    course.code, course.description = "Dj-2026_01", "学习 100% 掌握"
    db.session.commit()
    found = [
        courses.CatalogueQuery(text=t).run()[1]
        for t in ("ｄｊ－２０２６", "DJ-2026", "dj-2026_01", "100%", "新时代\n中国")
    ]
    assert found == [1, 1, 1, 1, 0]
    # LIKE wildcards typed by a user match themselves only.
    assert courses.CatalogueQuery(text="10_%").run()[1] == 0
    assert courses.CatalogueQuery(text="掌%握").run()[1] == 0  # as a wildcard it would match 掌握
    assert courses.CatalogueQuery(text="0%").run()[1] == 1  # the description has a literal percent sign
    assert courses.CatalogueQuery(text="_").run()[1] == 1  # the code has a literal underscore
    # Title edits reach the folded search text on the next flush.
    course.title = "Ｐａｒｔｙ　History"
    db.session.commit()
    assert courses.CatalogueQuery(text="party history").run()[1] == 1
    assert courses.CatalogueQuery(text="新时代").run()[1] == 0


def test_catalogue_marks_the_viewers_enrolments(kit, tree):
    learner = UserFactory(org_unit=tree.village_a)
    other = UserFactory(org_unit=tree.village_a)
    enrolments.enrol(learner, kit.course)
    db.session.commit()
    (mine,), _total = courses.CatalogueQuery(viewer_id=learner.id).run()
    (theirs,), _total = courses.CatalogueQuery(viewer_id=other.id).run()
    assert (mine.enrolled, theirs.enrolled) == (True, False)


def test_unpublished_course_not_in_catalogue_and_not_enrollable(tree, app):
    kit = build_course(tree, code="C002", publish=False)
    assert courses.CatalogueQuery().run()[1] == 0
    learner = UserFactory(org_unit=tree.village_a)
    with pytest.raises(enrolments.EnrolmentError):
        enrolments.enrol(learner, kit.course)


def test_self_enrol_is_idempotent_and_emits_once(kit, tree):
    learner = UserFactory(org_unit=tree.village_a)
    first = enrolments.enrol(learner, kit.course)
    again = enrolments.enrol(learner, kit.course)
    db.session.commit()
    assert first.id == again.id and first.source == EnrolmentSource.SELF
    assert db.session.query(Event).filter_by(name="course.enrolled").count() == 1


def test_assignment_reaches_subtree_and_rank_only(kit, tree):
    admin = UserFactory(org_unit=tree.county_a)
    grant(admin, Role.ORG_ADMIN, tree.county_a)
    inside = UserFactory(org_unit=tree.village_a, rank_band=RankBand.TOWNSHIP)
    other_rank = UserFactory(org_unit=tree.village_a, rank_band=RankBand.GENERAL)
    outside = UserFactory(org_unit=tree.county_b, rank_band=RankBand.TOWNSHIP)
    db.session.commit()
    with time_machine.travel(NOW, tick=False):
        enrolments.assign(
            admin, kit.course, tree.county_a, deadline=NOW + dt.timedelta(days=30), rank_band=RankBand.TOWNSHIP
        )
        commit()  # the materialise job runs inline after commit
    rows = {e.user_id: e for e in db.session.query(Enrolment)}
    assert set(rows) == {inside.id}
    assert rows[inside.id].source == EnrolmentSource.ASSIGNED
    assert rows[inside.id].deadline == NOW + dt.timedelta(days=30)
    assert other_rank.id not in rows and outside.id not in rows
    # running the job again changes nothing
    assert enrolments.materialize(rows[inside.id].assignment_id) == 0


def test_assignment_outside_scope_denied(kit, tree):
    admin = UserFactory(org_unit=tree.county_a)
    grant(admin, Role.ORG_ADMIN, tree.county_a)
    with pytest.raises(AccessDenied):
        enrolments.assign(admin, kit.course, tree.county_b, deadline=dt.datetime.now(dt.UTC) + dt.timedelta(days=3))


def test_past_deadline_rejected(kit, tree):
    admin = UserFactory(org_unit=tree.city)
    grant(admin, Role.SITE_ADMIN, tree.city)
    with pytest.raises(enrolments.EnrolmentError):
        enrolments.assign(admin, kit.course, tree.city, deadline=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))


def test_new_hire_sees_existing_assignment(kit, tree):
    admin = UserFactory(org_unit=tree.city)
    grant(admin, Role.SITE_ADMIN, tree.city)
    enrolments.assign(admin, kit.course, tree.county_a, deadline=dt.datetime.now(dt.UTC) + dt.timedelta(days=3))
    commit()
    newcomer = UserFactory(org_unit=tree.town_a)
    db.session.commit()
    assert enrolments.ensure_assigned(newcomer) == 1
    db.session.commit()
    assert enrolments.my_enrolments(newcomer)[0].source == EnrolmentSource.ASSIGNED
    assert enrolments.ensure_assigned(newcomer) == 0


def test_assignment_upgrades_self_enrolment_and_keeps_earliest_deadline(kit, tree):
    admin = UserFactory(org_unit=tree.city)
    grant(admin, Role.SITE_ADMIN, tree.city)
    learner = UserFactory(org_unit=tree.village_a)
    enrolments.enrol(learner, kit.course)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=5)
    enrolments.assign(admin, kit.course, tree.county_a, deadline=soon + dt.timedelta(days=20))
    commit()
    enrolments.assign(admin, kit.course, tree.town_a, deadline=soon)
    commit()
    enrolment = db.session.query(Enrolment).filter_by(user_id=learner.id).one()
    assert enrolment.source == EnrolmentSource.ASSIGNED
    assert abs((enrolment.deadline - soon).total_seconds()) < 1


def test_course_lines_carry_progress_and_the_year_total(kit, tree):
    from lms_core.learning.models import DailyTotal

    learner = UserFactory(org_unit=tree.village_a)
    db.session.commit()
    assert enrolments.course_lines(learner, 2026) == ([], None)  # no row to carry the year
    enrolments.enrol(learner, kit.course)
    db.session.add_all(
        [
            DailyTotal(user_id=learner.id, day=dt.date(2026, 3, 1), credited_ms=60_000),
            DailyTotal(user_id=learner.id, day=dt.date(2025, 12, 31), credited_ms=5_000),
        ]
    )
    db.session.commit()
    lines, year_ms = enrolments.course_lines(learner, 2026)
    assert year_ms == 60_000
    assert [(line.title, line.assigned, line.done, line.total) for line in lines] == [(kit.course.title, False, 0, 3)]
