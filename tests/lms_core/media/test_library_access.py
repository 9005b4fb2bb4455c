"""The media library shows one's own uploads and those of courses one may edit; preview too."""

from __future__ import annotations

import io

import pytest

from lms_core.accounts.models import Role
from lms_core.courses import services as courses
from lms_core.courses.models import LessonKind
from lms_core.extensions import db
from lms_core.media import services
from tests.conftest import login
from tests.factories import UserFactory, grant


@pytest.fixture
def world(app, tree, samples):
    a = UserFactory(username="teacher_a", org_unit=tree.city)
    grant(a, Role.INSTRUCTOR, tree.city)
    b = UserFactory(username="teacher_b", org_unit=tree.city)
    grant(b, Role.INSTRUCTOR, tree.city)
    admin = UserFactory(username="county_admin", org_unit=tree.county_a)
    grant(admin, Role.ORG_ADMIN, tree.county_a)
    site = UserFactory(username="root", org_unit=tree.city)
    grant(site, Role.SITE_ADMIN, tree.city)
    db.session.commit()
    files = {
        "a": services.store_upload(io.BytesIO(samples.png.read_bytes()), "a-own.png", a),
        "b": services.store_upload(io.BytesIO(samples.jpeg.read_bytes()), "b-draft.jpg", b),
        "c": services.store_upload(io.BytesIO(samples.pdf.read_bytes()), "c-county.pdf", b),
    }
    # An unpublished county course using B's PDF, owned by the admin's county.
    grant(b, Role.INSTRUCTOR, tree.county_a)
    course = courses.create_course(b, code="C-1", title="县课程", owner_unit=tree.county_a)
    section = courses.add_section(b, course, "第一章")
    courses.add_lesson(b, section, title="读本", kind=LessonKind.DOCUMENT, media=files["c"])
    db.session.commit()
    return {"a": a, "b": b, "admin": admin, "site": site, "files": files, "course": course}


def _listed(client) -> set[str]:
    page = client.get("/media/").get_data(as_text=True)
    return {name for name in ("a-own.png", "b-draft.jpg", "c-county.pdf") if name in page}


def _previews(client, files) -> set[str]:
    return {key for key, media in files.items() if client.get(f"/media/{media.id}/preview").status_code == 302}


def test_an_instructor_sees_only_their_own_uploads(client, world):
    login(client, "teacher_a")
    assert _listed(client) == {"a-own.png"}
    assert _previews(client, world["files"]) == {"a"}
    assert client.get(f"/media/{world['files']['b'].id}/preview").status_code == 404


def test_uploads_of_a_course_one_may_edit_are_visible(client, world):
    login(client, "teacher_b")
    assert _listed(client) == {"b-draft.jpg", "c-county.pdf"}
    courses.add_instructor(world["b"], world["course"], world["a"])
    db.session.commit()
    client.post("/logout")
    login(client, "teacher_a")  # now a co-instructor of the county course
    assert _listed(client) == {"a-own.png", "c-county.pdf"}
    assert _previews(client, world["files"]) == {"a", "c"}


def test_an_org_admin_granting_themselves_instructor_reaches_only_their_units_courses(client, world, tree):
    grant(world["admin"], Role.INSTRUCTOR, tree.county_a)
    db.session.commit()
    login(client, "county_admin")
    # The county course is theirs to edit (admin over its unit); the city teachers' files are not.
    assert _listed(client) == {"c-county.pdf"}
    assert _previews(client, world["files"]) == {"c"}


def test_an_org_admin_of_another_county_with_instructor_sees_nothing(client, world, tree):
    other = UserFactory(username="other_admin", org_unit=tree.county_b)
    grant(other, Role.ORG_ADMIN, tree.county_b)
    grant(other, Role.INSTRUCTOR, tree.county_b)
    db.session.commit()
    login(client, "other_admin")
    assert _listed(client) == set()
    assert _previews(client, world["files"]) == set()


def test_a_deduplicated_upload_counts_as_ones_own(client, world, samples):
    login(client, "teacher_a")
    r = client.put(
        "/api/media?name=same-bytes.jpg",
        data=samples.jpeg.read_bytes(),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 200  # already stored by B
    assert client.get(r.get_json()["preview_url"]).status_code == 302
    assert _listed(client) == {"a-own.png", "b-draft.jpg"}


def test_a_site_admin_sees_everything(client, world):
    login(client, "root")
    assert _listed(client) == {"a-own.png", "b-draft.jpg", "c-county.pdf"}
