"""Fuzzed calls to the JSON API (/api/v1/...): never a 5xx, nothing written (issue 10, item 12)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from lms_core.accounts.models import ApiToken, User
from lms_core.events.models import Event
from lms_core.extensions import db
from tests.conftest import login
from tests.factories import UserFactory
from tests.strategies import fuzz_examples

FUZZ = settings(
    max_examples=fuzz_examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: What a WSGI header value can carry (latin-1, no line breaks).
HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=255, blacklist_characters="\r\n"), max_size=80
)
QUERY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)  # sendable text


def _written() -> tuple[int, ...]:
    db.session.expire_all()
    return tuple(db.session.execute(select(func.count()).select_from(t)).scalar_one() for t in (ApiToken, Event, User))


@FUZZ
@given(
    auth=st.one_of(
        st.none(),
        HEADER_TEXT,
        HEADER_TEXT.map(lambda t: "Bearer " + t),
        st.sampled_from(["Bearer lms_", "Bearer lms_\u0000", "Bearer " + "9" * 5000, "Basic Og=="]),
    ),
    params=st.dictionaries(st.sampled_from(["page", "id", "q", "fields", "format"]), QUERY_TEXT, max_size=3),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]),
    signed_in=st.booleans(),
)
def test_fuzzed_api_calls_are_never_5xx(app, client, tree, auth, params, method, signed_in):
    if not hasattr(app, "_fuzz_user"):
        app._fuzz_user = UserFactory(username="zhouqi", org_unit=tree.town_a)
        db.session.commit()
    if signed_in:
        login(client, "zhouqi")
    else:
        client.post("/logout")
    before = _written()
    headers = {"Authorization": auth} if auth is not None else {}
    r = client.open("/api/v1/me", method=method, headers=headers, query_string=params)
    assert r.status_code < 500, r.get_data(as_text=True)[:300]
    assert r.status_code in (200, 401, 405) or r.status_code == 400
    if method != "HEAD":
        assert r.is_json
    assert _written() == before  # reading "me" writes nothing, whatever the request carried
