"""Administrators in scope revoke and re-issue transcripts in the UI, with a reason and a
confirmation step; the verification page and the event log show it."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from lms_core.accounts.models import Role
from lms_core.events.models import Event
from lms_core.extensions import db
from plugins.credit_bank.transcripts import services
from tests import factories
from tests.conftest import login
from tests.plugins.credit_bank.transcripts.conftest import ISSUER_PUBLIC
from tests.plugins.credit_bank.transcripts.helpers import history


@pytest.fixture
def cast(app: Flask, tree):  # type: ignore[no-untyped-def]
    cadre = factories.UserFactory(org_unit=tree.town_a, username="cadre", full_name="赵敏")
    admin_a = factories.UserFactory(org_unit=tree.county_a, username="admin_a")
    factories.grant(admin_a, Role.ORG_ADMIN, tree.county_a)
    admin_b = factories.UserFactory(org_unit=tree.county_b, username="admin_b")
    factories.grant(admin_b, Role.ORG_ADMIN, tree.county_b)
    auditor = factories.UserFactory(org_unit=tree.county_a, username="auditor_a")
    factories.grant(auditor, Role.AUDITOR, tree.county_a)
    history(cadre)
    db.session.commit()
    cred = services.issue_transcript(cadre, 2025)
    return cadre, cred


def _revoke_url(cadre, cred) -> str:  # type: ignore[no-untyped-def]
    return f"/credit/users/{cadre.id}/transcripts/{cred.id}/revoke"


def test_admin_in_scope_revokes_with_a_reason_after_confirming(client: FlaskClient, cast) -> None:  # type: ignore[no-untyped-def]
    cadre, cred = cast
    login(client, "admin_a")
    listing = client.get(f"/credit/users/{cadre.id}/transcripts")
    html = listing.get_data(as_text=True)
    assert listing.status_code == 200 and "赵敏" in html and _revoke_url(cadre, cred) in html
    confirm = client.get(_revoke_url(cadre, cred))
    page = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and cred.id in page and "data-confirm" in page
    assert services.status_of(cred).state == "valid"  # the confirmation page changes nothing

    empty = client.post(_revoke_url(cadre, cred), data={"reason": "  \x00 "})
    assert empty.status_code == 400 and "撤销学时证明必须填写原因" in empty.get_data(as_text=True)
    assert services.status_of(cred).state == "valid"

    done = client.post(_revoke_url(cadre, cred), data={"reason": "发现代学代考"})
    assert done.status_code == 302
    st = services.status_of(cred)
    assert st.state == "revoked" and st.record is not None and st.record.reason == "发现代学代考"
    event = db.session.execute(db.select(Event).where(Event.name == "credit.transcript_revoked")).scalar_one()
    assert event.actor_id is not None and event.payload["reason"] == "发现代学代考"
    assert event.org_unit_id == cadre.org_unit_id

    public = client.get(f"/credit/verify/{cred.id}").get_data(as_text=True)
    assert 'data-verdict="revoked"' in public and "发现代学代考" in public
    again = client.get(_revoke_url(cadre, cred), follow_redirects=True)
    assert "已撤销" in again.get_data(as_text=True)
    # The event log names the event in Chinese.
    from lms_core.events.names import event_label

    assert event_label("credit.transcript_revoked") == "学时证明已撤销"


def test_reissue_supersedes_and_the_old_one_links_to_the_new(client: FlaskClient, cast) -> None:  # type: ignore[no-untyped-def]
    cadre, cred = cast
    login(client, "admin_a")
    assert client.post(f"/credit/users/{cadre.id}/transcripts/reissue", data={"year": "2025"}).status_code == 400
    res = client.post(f"/credit/users/{cadre.id}/transcripts/reissue", data={"year": "2025", "reason": "姓名更正"})
    assert res.status_code == 302
    new = services.current(cadre.id, 2025)
    assert new is not None and new.id != cred.id and new.supersedes_id == cred.id
    old_page = client.get(f"/credit/verify/{cred.id}").get_data(as_text=True)
    assert 'data-verdict="superseded"' in old_page and new.id in old_page
    event = db.session.execute(
        db.select(Event).where(Event.name == "credit.transcript_issued").order_by(Event.id.desc()).limit(1)
    ).scalar_one()
    assert event.payload["reason"] == "姓名更正" and event.payload["supersedes"] == cred.id
    # Revoking the old one later still points the verifier to the current transcript.
    client.post(_revoke_url(cadre, cred), data={"reason": "作废"})
    page = client.get(f"/credit/verify/{cred.id}").get_data(as_text=True)
    assert 'data-verdict="revoked"' in page and new.id in page
    # An administrator may download the cadre's transcript to hand it over.
    pdf = client.get(f"/credit/transcripts/{new.id}.pdf")
    assert pdf.status_code == 200 and pdf.data == new.pdf


@pytest.mark.parametrize("who", ["admin_b", "auditor_a", "cadre"])
def test_out_of_scope_or_without_the_capability_cannot_revoke(client: FlaskClient, cast, who: str) -> None:  # type: ignore[no-untyped-def]
    cadre, cred = cast
    login(client, who)
    assert client.get(f"/credit/users/{cadre.id}/transcripts").status_code == 403
    assert client.post(_revoke_url(cadre, cred), data={"reason": "x"}).status_code == 403
    assert (
        client.post(f"/credit/users/{cadre.id}/transcripts/reissue", data={"year": "2025", "reason": "x"}).status_code
        == 403
    )
    assert services.status_of(cred).state == "valid"
    assert services.current(cadre.id, 2025).id == cred.id  # type: ignore[union-attr]


def test_a_credential_of_someone_else_is_not_found(client: FlaskClient, cast, tree) -> None:  # type: ignore[no-untyped-def]
    cadre, cred = cast
    other = factories.UserFactory(org_unit=tree.town_a, username="other")
    db.session.commit()
    assert login(client, "admin_a").status_code == 302
    r = client.get(f"/credit/users/{other.id}/transcripts/{cred.id}/revoke")
    assert r.status_code == 404, r.headers
    assert client.get(f"/credit/users/{cadre.id}/transcripts/not-a-uuid/revoke").status_code == 404
    assert client.get("/credit/users/999999/transcripts").status_code == 404


def test_offline_verify_of_a_revoked_transcript_points_online(
    app: Flask, client: FlaskClient, cast, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The CLI checks the file with no database: it stays authentic, and says where revocation shows."""
    cadre, cred = cast
    login(client, "admin_a")
    client.post(_revoke_url(cadre, cred), data={"reason": "发现代学代考"})
    out = tmp_path / "t.pdf"
    out.write_bytes(cred.pdf)
    res = app.test_cli_runner().invoke(args=["lms", "credit", "verify", str(out), "--key", ISSUER_PUBLIC])
    assert res.exit_code == 0 and f"/credit/verify/{cred.id}" in res.output
